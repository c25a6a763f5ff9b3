"""A contacts ⇄ customers run end to end: the app's runner against both emulators."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sync import writer
from sync.locks import lock_key
from sync.runner import run_object
from sync.setup import set_up
from sync.store.models import QboCompany, RecordLink, SyncActivity, WebhookEvent
from tests.conftest import BOTH_DATABASES, stack_on_both_databases

# Every runner test runs on SQLite and on PostgreSQL.
stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)


@pytest.fixture
def synced(stack, installed):
    account, _users, _browser, company, _page = installed
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", filters={"hubspot": None})
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    return account["portalId"], company["realmId"], company_id


def _hubspot_sdk(stack):
    """The official SDK with the installation's current access token."""
    from sync.store.models import Installation
    from sync.tokens import TokenManager

    with stack.db() as session:
        installation_id = session.scalar(select(Installation)).id
    return stack.hubspot.sdk(TokenManager(stack.runtime).hubspot_access_token(installation_id))


def _spec(type_id: int):
    from hubspot.crm.associations.v4 import AssociationSpec

    return AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)


def hubspot_contacts(stack, portal):
    client = _hubspot_sdk(stack)
    return {
        c.properties["email"]: c
        for c in client.crm.contacts.get_all(
            properties=["email", "firstname", "lastname", "phone", "company", "ledgersync_qbo_customer_id"]
        )
    }


def qbo_customers(stack, realm):
    state = stack.qbo.state
    with state.lock:
        return {
            c.get("PrimaryEmailAddr", {}).get("Address"): dict(c)
            for c in state.companies[realm].table("Customer").values()
        }


def assert_settled(stack, company_id: int):
    """Run once more and check that neither emulator received a write: the sync has settled (no echo)."""
    stack.qbo.control("DELETE", "/requests")
    stack.hubspot.control("DELETE", "/requests")
    summary = run_object(stack.runtime, company_id, "contacts")
    assert writes_in(stack.qbo.control("GET", "/requests")) == {}
    assert writes_in(stack.hubspot.control("GET", "/requests")) == {}
    return summary


def qbo_edit(stack, realm, customer: dict, **fields) -> None:
    """A user's sparse edit of a customer in QuickBooks, against the SyncToken as read."""
    body = {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True, **fields}
    stack.qbo.control("POST", f"/companies/{realm}/customer", body, expect=200)


def writes_in(log: dict) -> dict:
    return {
        k: v
        for k, v in log["byEndpoint"].items()
        if k.startswith(("POST", "PATCH", "PUT", "DELETE"))
        and "search" not in k
        and "batch/read" not in k
        and "query" not in k
    }


def test_first_run_creates_both_ways_and_a_second_run_writes_nothing(stack, synced):
    portal, realm, company_id = synced
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "ana@example.com", "firstname": "Ana", "lastname": "Silva", "phone": "555"}},
        expect=201,
    )
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/seed",
        {
            "entity": "Customer",
            "records": [
                {
                    "DisplayName": "Bo Books",
                    "GivenName": "Bo",
                    "FamilyName": "Books",
                    "PrimaryEmailAddr": {"Address": "bo@example.com"},
                }
            ],
        },
        expect=201,
    )
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("create") == 2, summary
    customers = qbo_customers(stack, realm)
    assert customers["ana@example.com"]["DisplayName"] == "Ana Silva"
    assert customers["ana@example.com"]["PrimaryPhone"]["FreeFormNumber"] == "555"
    contacts = hubspot_contacts(stack, portal)
    assert contacts["bo@example.com"].properties["firstname"] == "Bo"
    with stack.db() as session:
        links = session.scalars(select(RecordLink)).all()
        assert sorted(link.state for link in links) == ["syncing", "syncing"]
        assert all(link.hubspot_id and link.qbo_id for link in links)
    stack.hubspot.control("DELETE", "/requests")
    stack.qbo.control("DELETE", "/requests")
    again = run_object(stack.runtime, company_id, "contacts")
    # An event's occurredAt can trail the record's version by a millisecond, so an echo may be
    # planned once more (as a skip); it never writes.
    assert "create" not in again.counts and "update" not in again.counts
    assert writes_in(stack.qbo.control("GET", "/requests")) == {}  # echo: our own writes plan nothing
    assert writes_in(stack.hubspot.control("GET", "/requests")) == {}


def test_edits_on_both_sides_cross_over(stack, synced):
    portal, realm, company_id = synced
    created = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "cy@example.com", "firstname": "Cy", "lastname": "Lee"}},
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    stack.hubspot.control("POST", "/clock", {"advanceSeconds": 5})
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{created['id']}", {"properties": {"phone": "777"}}, expect=200
    )
    customer = qbo_customers(stack, realm)["cy@example.com"]
    qbo_edit(stack, realm, customer, FamilyName="Lee-Park")
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("update") == 2, summary
    assert qbo_customers(stack, realm)["cy@example.com"]["PrimaryPhone"]["FreeFormNumber"] == "777"
    assert hubspot_contacts(stack, portal)["cy@example.com"].properties["lastname"] == "Lee-Park"


def test_a_crash_after_the_remote_create_leaves_no_duplicate(stack, synced, monkeypatch):
    portal, realm, company_id = synced
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "crash@example.com", "firstname": "Cras", "lastname": "Hed"}},
        expect=201,
    )
    from sync import runner

    original = runner.QuickBooksClient.batch_create

    def create_then_die(self, entity, bodies):
        original(self, entity, bodies)
        raise SystemExit("worker killed right after QuickBooks answered")

    monkeypatch.setattr(runner.QuickBooksClient, "batch_create", create_then_die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        (pending,) = session.scalars(select(RecordLink)).all()
        assert pending.pending_write is not None and pending.qbo_id is None
    monkeypatch.setattr(runner.QuickBooksClient, "batch_create", original)
    stack.runtime.jobs.connection.delete(lock_key(company_id, "contacts"))  # the dead worker's lock expires
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("resumed") == 1
    assert len([c for c in qbo_customers(stack, realm) if c == "crash@example.com"]) == 1
    assert len(qbo_customers(stack, realm)) == 1
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert link.qbo_id and link.pending_write is None and link.state == "syncing"


def test_a_display_name_clash_fails_with_its_category(stack, synced):
    portal, realm, company_id = synced
    stack.qbo.control("POST", f"/companies/{realm}/vendor", {"DisplayName": "Dana Vendor"})
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "dana@example.com", "firstname": "Dana", "lastname": "Vendor"}},
        expect=201,
    )
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("failed") == 1
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert link.state == "failed" and link.error_category == "duplicate display name"
        assert "Duplicate Name Exists" in link.error_message  # what QBO said
        assert "one billing contact per company" in link.error_message and "{company} ({email})" in link.error_message
        assert link.next_attempt_at is not None
        assert session.scalar(select(SyncActivity).where(SyncActivity.action == "failed")) is not None


def test_a_failed_record_is_retried_only_when_due_or_changed_and_recorded_once(stack, synced):
    """No retry churn: an unchanged failed record is not planned again run after run (the overlap
    window and the webhooks would otherwise bring it back each time); when it is retried (due, or
    changed) and fails the same way, its activity keeps one row with a count."""
    portal, realm, company_id = synced
    stack.qbo.control("POST", f"/companies/{realm}/vendor", {"DisplayName": "Dana Vendor"})
    created = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "dana@example.com", "firstname": "Dana", "lastname": "Vendor"}},
        expect=201,
    )
    assert run_object(stack.runtime, company_id, "contacts").counts.get("failed") == 1
    stack.qbo.control("DELETE", "/requests")
    for _ in range(3):  # runs in quick succession: nothing changed, nothing due
        assert "failed" not in run_object(stack.runtime, company_id, "contacts").counts
    assert writes_in(stack.qbo.control("GET", "/requests")) == {}  # the write that cannot succeed is not repeated
    stack.hubspot.control(  # the contact changes (not its name): it is planned again, and fails again
        "PATCH", f"/accounts/{portal}/objects/contacts/{created['id']}", {"properties": {"phone": "1"}}, expect=200
    )
    assert run_object(stack.runtime, company_id, "contacts").counts.get("failed") == 1
    with stack.db() as session:
        link = session.scalar(select(RecordLink))
        link.next_attempt_at = link.next_attempt_at.replace(year=2000)  # its backoff is due
    assert run_object(stack.runtime, company_id, "contacts").counts.get("failed") == 1
    with stack.db() as session:
        (activity,) = session.scalars(select(SyncActivity).where(SyncActivity.action == "failed")).all()
        assert activity.details["repeats"] == 3 and activity.details["last_at"]
        assert session.scalar(select(RecordLink)).attempts == 3


def test_cli_setup_run_and_status(stack, installed):
    portal = installed[0]["portalId"]
    runner_cli = stack.app.test_cli_runner()
    result = runner_cli.invoke(args=["sync", "setup", "contacts", "--direction", "two-way", "--winner", "hubspot"])
    assert result.exit_code == 0, result.output
    assert "new hubspot records: only the billing contact" in result.output  # the recommended filter
    assert "new quickbooks records: all" in result.output
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "cli@example.com", "firstname": "Cli"}},
        expect=201,
    )
    result = runner_cli.invoke(args=["sync", "run", "contacts"])
    assert result.exit_code == 0, result.output
    assert "exclude 1" in result.output and "create" not in result.output
    # editing the filter puts the records it left out back in line
    result = runner_cli.invoke(args=["sync", "setup", "contacts", "--hubspot-filter", "none"])
    assert "new hubspot records: all" in result.output, result.output
    result = runner_cli.invoke(args=["sync", "status"])
    assert "contacts   queued    1" in result.output, result.output
    result = runner_cli.invoke(args=["sync", "run", "contacts"])
    assert result.exit_code == 0, result.output
    assert "create 1" in result.output
    result = runner_cli.invoke(args=["sync", "status"])
    assert "contacts   syncing   1" in result.output


def _drain(stack) -> None:
    from rq import SimpleWorker

    from sync.job_queue import QUEUE_NAMES
    from sync.runtime import use_runtime

    queues = [stack.runtime.jobs.queue(name) for name in QUEUE_NAMES]
    with use_runtime(stack.runtime):
        SimpleWorker(queues, connection=stack.runtime.jobs.connection).work(burst=True)


def test_a_webhook_queues_one_run_that_a_worker_carries_out(stack, synced):
    portal, realm, company_id = synced
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "hooked@example.com", "firstname": "Hoo", "lastname": "Ked"}},
        expect=201,
    )
    stack.hubspot.control("POST", "/webhooks/faults", {"action": "duplicate"})
    stack.hubspot.control("POST", "/webhooks/deliver")
    queue = stack.runtime.jobs.queue("default")
    assert queue.job_ids == [f"sync-{company_id}-contacts"]  # two deliveries, one queued run
    _drain(stack)
    assert "hooked@example.com" in qbo_customers(stack, realm)
    from sync.store.models import WebhookEvent

    with stack.db() as session:
        assert {e.status for e in session.scalars(select(WebhookEvent))} == {"processed"}


def test_the_sweep_alone_syncs_when_every_webhook_is_lost(stack, synced):
    from sync.runtime import use_runtime
    from sync.tasks.syncing import sweep

    portal, realm, _company_id = synced
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    stack.hubspot.control("POST", "/webhooks/faults", {"action": "drop", "count": 5})
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "lost@example.com", "firstname": "Lo", "lastname": "St"}},
        expect=201,
    )
    stack.hubspot.control("POST", "/webhooks/deliver")
    with use_runtime(stack.runtime):
        assert sweep() == 1
    _drain(stack)
    assert "lost@example.com" in qbo_customers(stack, realm)


def test_two_runs_of_one_object_never_overlap(stack, synced):
    from sync.locks import RunLock

    _portal, _realm, company_id = synced
    with stack.db() as session:
        installation_id = session.get(QboCompany, company_id).installation_id
    with RunLock(stack.runtime, installation_id, company_id, "contacts"):
        summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.skipped_run.startswith("another run is in progress") and not summary.counts


def test_a_run_that_finds_the_lock_held_asks_the_holder_for_a_follow_up(stack, synced):
    from sync.locks import RunLock

    _portal, _realm, company_id = synced
    with stack.db() as session:
        installation_id = session.get(QboCompany, company_id).installation_id
    with RunLock(stack.runtime, installation_id, company_id, "contacts") as holder:
        summary = run_object(stack.runtime, company_id, "contacts")
        assert summary.skipped_run.startswith("another run is in progress") and not summary.counts
        assert 0 < summary.retry_in <= 61  # when the holder's lease ends, in case it died
    assert holder.take_run_request()  # what the holder's run does after releasing: queue a follow-up
    assert not holder.take_run_request()  # once


def test_a_change_that_arrives_during_a_run_is_written_right_after_it(stack, synced, monkeypatch):
    """A webhook stored while a run works (after it read its events) must not wait for a later trigger:
    the run it queues finds the lock held and leaves a mark; the holder honours it when it releases."""
    import threading

    from sync.runtime import use_runtime
    from sync.tasks.syncing import run_sync

    portal, realm, company_id = synced
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    created = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "during@example.com", "firstname": "Dur", "lastname": "Ing"}},
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    assert qbo_customers(stack, realm)["during@example.com"]["FamilyName"] == "Ing"

    inside, release, held = threading.Event(), threading.Event(), []
    carry_out = writer.Writer.carry_out

    def carry_out_held_once(self, *args):  # the page's records are read and planned: hold before writing
        if not held:
            held.append(True)
            inside.set()
            assert release.wait(60)
        return carry_out(self, *args)

    monkeypatch.setattr(writer.Writer, "carry_out", carry_out_held_once)
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{created['id']}", {"properties": {"phone": "100"}}
    )
    stack.hubspot.control("POST", "/webhooks/deliver")
    stack.runtime.jobs.queue("default").empty()  # the run below is that change's run, started by hand
    answers = []

    def first_run():
        with use_runtime(stack.runtime):
            answers.append(run_sync(company_id, "contacts"))

    running = threading.Thread(target=first_run)
    running.start()
    assert inside.wait(60)  # the run has read its events and its page's records
    stack.hubspot.control(  # the change that arrives during the run
        "PATCH", f"/accounts/{portal}/objects/contacts/{created['id']}", {"properties": {"lastname": "Later"}}
    )
    stack.hubspot.control("POST", "/webhooks/deliver")  # stored, and a run queued for it
    _drain(stack)  # a worker takes that run: the lock is held, so it leaves its mark and stands aside
    assert qbo_customers(stack, realm)["during@example.com"]["FamilyName"] == "Ing"
    release.set()
    running.join(60)
    assert answers and answers[0]["counts"], answers
    _drain(stack)  # the follow-up the first run queued as it released its lock
    customer = qbo_customers(stack, realm)["during@example.com"]
    assert customer["FamilyName"] == "Later" and customer["PrimaryPhone"]["FreeFormNumber"] == "100"


def test_a_rate_limited_run_is_rescheduled_not_slept(stack, synced, monkeypatch):
    from sync.clients import errors
    from sync.runtime import use_runtime
    from sync.tasks import syncing

    _portal, _realm, company_id = synced

    def limited(*_args, **_kwargs):
        raise errors.RateLimited("quickbooks", "realm limit", retry_after=42)

    monkeypatch.setattr(syncing, "run_object", limited)
    with use_runtime(stack.runtime):
        answer = syncing.run_sync(company_id, "contacts")
    assert answer == {"rescheduled_in": 42}
    scheduled = stack.runtime.jobs.queue("default").scheduled_job_registry.get_job_ids()
    assert scheduled == [f"sync-{company_id}-contacts-later"]


def test_a_stale_synctoken_means_read_again_plan_again(stack, synced, monkeypatch):
    from sync import runner

    portal, realm, company_id = synced
    created = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "race@example.com", "firstname": "Ra", "lastname": "Ce"}},
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    stack.hubspot.control("POST", "/clock", {"advanceSeconds": 5})
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{created['id']}", {"properties": {"phone": "111"}}, expect=200
    )
    original_write, raced = runner.QuickBooksClient.batch_write, []

    def someone_edits_then_write(self, entity, operation, bodies):
        if operation == "update" and not raced:  # a QuickBooks user saves the customer between our read and write
            raced.append(True)
            for body in bodies.values():
                qbo_edit(stack, realm, body, CompanyName="Race Inc")
        return original_write(self, entity, operation, bodies)

    monkeypatch.setattr(runner.QuickBooksClient, "batch_write", someone_edits_then_write)
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("stale") == 1
    customer = qbo_customers(stack, realm)["race@example.com"]
    assert customer["PrimaryPhone"]["FreeFormNumber"] == "111" and customer["CompanyName"] == "Race Inc"
    # The edit made in QuickBooks meanwhile was not lost: it crossed to HubSpot in the same run.
    contacts = hubspot_contacts(stack, portal)
    assert contacts["race@example.com"].properties["company"] == "Race Inc"


@pytest.mark.parametrize("crash_point", ["after the HubSpot id property", "before the link commit"])
def test_crash_points_after_the_remote_create_resume_without_duplicates(stack, synced, monkeypatch, crash_point):
    from sync import runner

    portal, realm, company_id = synced
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "point@example.com", "firstname": "Po", "lastname": "Int"}},
        expect=201,
    )
    if crash_point == "after the HubSpot id property":
        original = runner.HubSpotClient.batch_update

        def update_then_die(self, object_type, updates):
            original(self, object_type, updates)
            raise SystemExit(crash_point)

        monkeypatch.setattr(runner.HubSpotClient, "batch_update", update_then_die)
    else:

        def settle_then_die(self, link, base):
            raise SystemExit(crash_point)

        monkeypatch.setattr(writer.Writer, "_settled", settle_then_die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "contacts")
    monkeypatch.undo()
    stack.runtime.jobs.connection.delete(lock_key(company_id, "contacts"))  # the dead worker's lock
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("resumed") == 1
    assert list(qbo_customers(stack, realm)) == ["point@example.com"]
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert link.state == "syncing" and link.qbo_id and link.pending_write is None


def test_the_search_overlap_catches_a_record_the_index_showed_late(stack, synced):
    from datetime import timedelta

    from sync.store.models import SyncCursor

    portal, realm, company_id = synced
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:  # the watermark ran a minute ahead of what the search index had
        cursor = session.scalar(select(SyncCursor).where(SyncCursor.side == "hubspot"))
        cursor.watermark = cursor.watermark + timedelta(minutes=1)
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "late@example.com", "firstname": "La", "lastname": "Te"}},
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    assert "late@example.com" in qbo_customers(stack, realm)


def test_creates_go_in_batches_and_a_failure_stays_with_its_record(stack, synced):
    portal, realm, company_id = synced
    stack.qbo.control("POST", f"/companies/{realm}/vendor", {"DisplayName": "Person 7"})  # one name is taken
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/seed",
        {
            "objectType": "contacts",
            "count": 35,
            "properties": {"email": "p{n}@example.com", "firstname": "Person", "lastname": "{n}"},
        },
        expect=201,
    )
    stack.qbo.control("DELETE", "/requests")
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("create") == 35 and summary.counts.get("failed") == 1
    batches = stack.qbo.control("GET", "/requests")["byEndpoint"]["POST /v3/company/<realm_id>/batch"]
    assert batches == 2  # 30 + 5
    assert len(qbo_customers(stack, realm)) == 34
    with stack.db() as session:
        failed = session.scalar(select(RecordLink).where(RecordLink.state == "failed"))
        assert failed.error_category == "duplicate display name" and failed.qbo_id is None


def test_a_crash_in_the_middle_of_a_batch_resumes_without_duplicates(stack, synced, monkeypatch):

    portal, realm, company_id = synced
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/seed",
        {
            "objectType": "contacts",
            "count": 5,
            "properties": {"email": "m{n}@example.com", "firstname": "Mid", "lastname": "{n}"},
        },
        expect=201,
    )
    original, linked = writer.Writer._linked_after_create, []

    def link_some_then_die(self, link_id, target, target_id, read_back, *lines):
        if len(linked) == 2:
            raise SystemExit("worker killed half-way through recording the batch")
        linked.append(link_id)
        original(self, link_id, target, target_id, read_back, *lines)

    monkeypatch.setattr(writer.Writer, "_linked_after_create", link_some_then_die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "contacts")
    monkeypatch.undo()
    stack.runtime.jobs.connection.delete(lock_key(company_id, "contacts"))
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("resumed") == 3
    assert len(qbo_customers(stack, realm)) == 5
    with stack.db() as session:
        assert {link.state for link in session.scalars(select(RecordLink))} == {"syncing"}


@pytest.mark.parametrize("new_side", ["hubspot", "quickbooks"])
def test_a_new_record_links_to_an_unchanged_match_instead_of_creating_a_twin(stack, installed, new_side, monkeypatch):
    """The match is found by key on the other side even when that record did not change in this window."""
    import time
    from datetime import timedelta

    monkeypatch.setattr("sync.cursors.OVERLAP", timedelta(0))  # so the older record is outside the next window
    account, _users, _browser, company, _page = installed
    portal, realm = account["portalId"], company["realmId"]
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    direction = "hubspot_to_qbo" if new_side == "hubspot" else "qbo_to_hubspot"
    set_up(stack.runtime, company_id, "contacts", direction, "hubspot", filters={"hubspot": None})
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    # the older record sits on the side that does not flow, so the first run leaves it alone
    if new_side == "hubspot":
        old = {"DisplayName": "Dee Old Name", "PrimaryEmailAddr": {"Address": "dee@example.com"}}
        stack.qbo.control("POST", f"/companies/{realm}/seed", {"entity": "Customer", "records": [old]}, expect=201)
    else:
        stack.hubspot.control(
            "POST",
            f"/accounts/{portal}/objects/contacts",
            {"properties": {"email": "dee@example.com", "firstname": "Old"}},
            expect=201,
        )
    time.sleep(1.1)  # QBO's times have whole seconds
    first = run_object(stack.runtime, company_id, "contacts")
    assert "create" not in first.counts, first
    time.sleep(1.1)
    if new_side == "hubspot":
        stack.hubspot.control(
            "POST",
            f"/accounts/{portal}/objects/contacts",
            {"properties": {"email": "Dee@Example.com", "firstname": "Dee", "lastname": "New"}},
            expect=201,
        )
    else:
        new = {"DisplayName": "Dee New", "GivenName": "Dee", "PrimaryEmailAddr": {"Address": "DEE@example.com"}}
        stack.qbo.control("POST", f"/companies/{realm}/seed", {"entity": "Customer", "records": [new]}, expect=201)
    summary = run_object(stack.runtime, company_id, "contacts")
    assert "create" not in summary.counts, summary
    assert summary.counts.get("link") == 1, summary
    customers = [c for c in qbo_customers(stack, realm) if c and c.lower() == "dee@example.com"]
    contacts = [c for c in hubspot_contacts(stack, portal) if c and c.lower() == "dee@example.com"]
    assert len(customers) == 1 and len(contacts) == 1
    with stack.db() as session:
        link = session.scalar(select(RecordLink))
        assert link.hubspot_id and link.qbo_id and link.state == "syncing"


def _seed_people(stack, portal, count: int) -> None:
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/seed",
        {
            "objectType": "contacts",
            "count": count,
            "properties": {"email": "page{n}@example.com", "firstname": "Paged", "lastname": "{n}"},
        },
        expect=201,
    )


def _backlog(stack) -> int:
    from sync.store.models import SyncBacklog

    with stack.db() as session:
        return len(session.scalars(select(SyncBacklog)).all())


def _one_page(stack, company_id: int, pages: int):
    """What a job does, rate limits included: a job re-enqueued for later here just waits."""
    import time

    from sync.clients.errors import RateLimited

    while True:
        try:
            return run_object(stack.runtime, company_id, "contacts", pages=pages)
        except RateLimited as limited:
            time.sleep(limited.retry_after)


def test_work_goes_a_page_at_a_time_and_continues_where_it_left_off(stack, synced, monkeypatch):
    portal, realm, company_id = synced
    monkeypatch.setattr("sync.runner.PAGE_SIZE", 4)
    _seed_people(stack, portal, 10)
    seen = []
    for _ in range(3):
        _one_page(stack, company_id, 1)
        seen.append(len(qbo_customers(stack, realm)))
        if len(seen) == 1:  # the operator sees what is left
            status = stack.app.test_cli_runner().invoke(args=["sync", "status"]).output
            assert "contacts   queued    6" in status, status
    assert seen == [4, 8, 10]  # a page per job, oldest first, each job going on from the last
    run_object(stack.runtime, company_id, "contacts")  # the rest: at most our own writes' echoes
    assert _backlog(stack) == 0
    assert run_object(stack.runtime, company_id, "contacts").counts.get("create") is None
    # Settled: the overlap window re-finds all 20 records, but none of them is work again.
    assert _one_page(stack, company_id, 0).more_to_do is False
    assert _backlog(stack) == 0


MARKS: list[int] = []
WATCHED: dict = {}


def mark_customer_count() -> None:
    """A stand-in for another installation's job: notes how far the big sync had got when it ran."""
    MARKS.append(len(qbo_customers(WATCHED["stack"], WATCHED["realm"])))


def test_a_big_sync_takes_turns_with_other_jobs_on_the_queue(stack, synced, monkeypatch):
    from sync.tasks.syncing import enqueue_run

    portal, realm, company_id = synced
    monkeypatch.setattr("sync.runner.PAGE_SIZE", 4)
    # not a rate-limit test: a limited job would wait in the scheduler, which a burst worker skips
    monkeypatch.setattr("sync.clients.hubspot.HUBSPOT_LIMITS", {"api": [(1000, 10.0)], "search": [(1000, 1.0)]})
    monkeypatch.setattr("sync.clients.quickbooks.QBO_LIMITS", {"api": [(1000, 1.0)], "batch": [(1000, 1.0)]})
    _seed_people(stack, portal, 10)
    enqueue_run(stack.runtime, company_id, "contacts")
    MARKS.clear()
    WATCHED.update(stack=stack, realm=realm)
    stack.runtime.enqueue(mark_customer_count)
    _drain(stack)
    assert MARKS == [4]  # the other job ran after the first page, not after all three
    assert len(qbo_customers(stack, realm)) == 10 and _backlog(stack) == 0


@pytest.mark.parametrize("trigger", ["company renamed", "invoice changed"])
def test_a_related_change_replans_the_associated_contacts_and_only_those(stack, synced, monkeypatch, trigger):
    """Cross-object triggers: a company's or an invoice's webhook re-plans the contacts associated with it."""
    portal, realm, company_id = synced
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    firm = stack.hubspot.control(
        "POST", f"/accounts/{portal}/objects/companies", {"properties": {"name": "Acme"}}, expect=201
    )
    to_firm = [
        {"to": {"id": firm["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}
    ]
    member = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "member@example.com", "firstname": "Mem"}, "associations": to_firm},
        expect=201,
    )
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "loner@example.com", "firstname": "Lo"}},
        expect=201,
    )
    billed = [
        {"to": {"id": member["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 177}]}
    ]
    invoice = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/invoices",
        {"properties": {"hs_currency": "USD"}, "associations": billed},
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    run_object(stack.runtime, company_id, "contacts")  # settled
    stack.hubspot.control("POST", "/webhooks/deliver")  # what piled up so far (creations, associations)
    run_object(stack.runtime, company_id, "contacts")
    if trigger == "company renamed":
        stack.hubspot.control(
            "PATCH", f"/accounts/{portal}/objects/companies/{firm['id']}", {"properties": {"name": "Acme Ltd"}}
        )
    else:  # (opening it needs line items; any subscribed change of the invoice is the same trigger)
        stack.hubspot.control(
            "PATCH",
            f"/accounts/{portal}/objects/invoices/{invoice['id']}",
            {"properties": {"hs_due_date": "2026-12-31"}},
        )
    stack.hubspot.control("POST", "/webhooks/deliver")
    from sync.runner import _Run
    from sync.store.models import SyncBacklog

    replanned = []
    work = _Run._work

    def watch(self, page):  # which records the run planned again
        replanned.extend(record_id for _, side, record_id in page if side == "hubspot")
        return work(self, page)

    monkeypatch.setattr(_Run, "_work", watch)
    summary = run_object(stack.runtime, company_id, "contacts")
    assert replanned == [member["id"]], summary
    assert "create" not in summary.counts and "update" not in summary.counts
    with stack.db() as session:
        assert session.scalars(select(SyncBacklog)).all() == []


def test_reordered_webhooks_sync_the_latest_version(stack, synced):
    """Events only say *which* record changed; the run reads it whole, so their order cannot matter."""
    portal, realm, company_id = synced
    created = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "order@example.com", "firstname": "First"}},
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    for name in ("Second", "Third"):
        stack.hubspot.control("POST", "/clock", {"advanceSeconds": 1})
        stack.hubspot.control(
            "PATCH", f"/accounts/{portal}/objects/contacts/{created['id']}", {"properties": {"firstname": name}}
        )
    stack.hubspot.control("POST", "/webhooks/faults", {"action": "reorder", "count": 5})
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    assert qbo_customers(stack, realm)["order@example.com"]["GivenName"] == "Third"


def test_two_workers_on_one_installation_create_each_record_once(stack, synced):
    """Two jobs of one object at once (as two workers would run them): one works, the other stands aside."""
    import threading

    from sync.runtime import use_runtime
    from sync.tasks.syncing import run_sync

    portal, realm, company_id = synced
    _seed_people(stack, portal, 40)
    results, start = [], threading.Barrier(2)

    def worker():
        with use_runtime(stack.runtime):
            start.wait()
            results.append(run_sync(company_id, "contacts"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _drain(stack)  # whatever either of them queued (continuations, reschedules)
    customers = [c for c in qbo_customers(stack, realm) if c and c.startswith("page")]
    assert len(customers) == 40  # each once: QBO would have refused a second "Paged n" by name anyway,
    with stack.db() as session:  # so check our side too: one link per contact, all syncing
        links = session.scalars(select(RecordLink)).all()
        assert len(links) == 40 and {link.state for link in links} == {"syncing"}
    assert any((r.get("skipped") or "").startswith("another run is in progress") for r in results), results


def test_a_new_link_releases_the_records_of_other_objects_waiting_for_it(stack, synced):
    """An invoice waiting for its billing contact goes back in the invoices backlog once the contact links."""
    from sync.store.models import SyncBacklog

    portal, _realm, company_id = synced
    contact = stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {"properties": {"email": "payer@example.com", "firstname": "Pay", "lastname": "Er"}},
        expect=201,
    )
    with stack.db() as session:
        installation_id = session.get(QboCompany, company_id).installation_id
        for invoice_id, contact_id in (("5001", contact["id"]), ("5002", "999999")):
            session.add(
                RecordLink(
                    installation_id=installation_id,
                    qbo_company_id=company_id,
                    object_type="invoices",
                    origin="hubspot",
                    hubspot_id=invoice_id,
                    state="waiting",
                    waiting_for=[{"object_type": "contacts", "side": "hubspot", "id": contact_id}],
                )
            )
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("create") == 1 and summary.released == {"invoices"}
    with stack.db() as session:
        queued = {(b.object_type, b.side, b.record_id) for b in session.scalars(select(SyncBacklog))}
    assert queued == {("invoices", "hubspot", "5001")}  # 5002 still waits for a contact that is not linked


def test_detection_stopped_by_a_rate_limit_resumes_where_it_stopped(stack, synced, monkeypatch):
    """A first sync's listing is stored page by page (HubSpot search pages with their watermark, QBO
    query pages with their position), so a job re-enqueued after a rate limit does not start over."""
    from sync.clients import errors
    from sync.clients.hubspot import HubSpotClient
    from sync.clients.quickbooks import QuickBooksClient
    from sync.store.models import SyncBacklog, SyncCursor

    portal, realm, company_id = synced
    _seed_people(stack, portal, 250)  # two search pages of 200
    customers = [
        {"DisplayName": f"Listed {n}", "PrimaryEmailAddr": {"Address": f"l{n}@example.com"}} for n in range(1200)
    ]
    stack.qbo.control("POST", f"/companies/{realm}/seed", {"entity": "Customer", "records": customers}, expect=201)
    calls = {"search": 0, "query": []}
    search, query = HubSpotClient.search, QuickBooksClient.query

    def limited_search(self, object_type, request):
        calls["search"] += 1
        if calls["search"] == 2:
            raise errors.RateLimited("hubspot", "search limit", retry_after=0.1)
        return search(self, object_type, request)

    def limited_query(self, statement):
        calls["query"].append(statement)
        if "startposition 1001" in statement and len([q for q in calls["query"] if "1001" in q]) == 1:
            raise errors.RateLimited("quickbooks", "realm limit", retry_after=0.1)
        return query(self, statement)

    monkeypatch.setattr(HubSpotClient, "search", limited_search)
    with pytest.raises(errors.RateLimited):
        run_object(stack.runtime, company_id, "contacts", pages=1)
    with stack.db() as session:
        hub_cursor = session.scalar(select(SyncCursor).where(SyncCursor.side == "hubspot"))
        assert hub_cursor.watermark is not None  # the first page's watermark was kept
        assert len(session.scalars(select(SyncBacklog).where(SyncBacklog.side == "hubspot")).all()) == 200
    monkeypatch.setattr(HubSpotClient, "search", search)
    monkeypatch.setattr(QuickBooksClient, "query", limited_query)
    with pytest.raises(errors.RateLimited):
        run_object(stack.runtime, company_id, "contacts", pages=1)
    with stack.db() as session:
        qbo_cursor = session.scalar(select(SyncCursor).where(SyncCursor.side == "quickbooks"))
        assert qbo_cursor.position["listed"] == 1000 and qbo_cursor.watermark is None
    listings_before = [q for q in calls["query"] if "orderby Id" in q]
    run_object(stack.runtime, company_id, "contacts")
    listings = [q for q in calls["query"] if "orderby Id" in q][len(listings_before) :]
    assert listings and "startposition 1001" in listings[0]  # went on from the stored position
    assert len(qbo_customers(stack, realm)) == 1450 and _backlog(stack) == 0
    with stack.db() as session:
        links = session.scalars(select(RecordLink)).all()
        assert len(links) == 1450 and all(link.hubspot_id and link.qbo_id for link in links)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], "Acme Ltd"),  # the primary company's name
        (["--no-company-name"], "Dee Lane"),  # the person
        (["--name-template", "{company} ({email})"], "Acme Ltd (dee@example.com)"),
    ],
)
def test_a_new_customer_is_named_by_the_display_name_rule(stack, installed, options, expected):
    portal = installed[0]["portalId"]
    realm = installed[3]["realmId"]
    cli = stack.app.test_cli_runner()
    result = cli.invoke(args=["sync", "setup", "contacts", "--hubspot-filter", "none", *options])
    assert result.exit_code == 0, result.output
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    other = stack.hubspot.control("POST", f"/accounts/{portal}/objects/companies", {"properties": {"name": "Other"}})
    firm = stack.hubspot.control("POST", f"/accounts/{portal}/objects/companies", {"properties": {"name": "Acme Ltd"}})
    associations = [
        {"to": {"id": other["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]},
        {"to": {"id": firm["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]},
    ]
    stack.hubspot.control(
        "POST",
        f"/accounts/{portal}/objects/contacts",
        {
            "properties": {"email": "dee@example.com", "firstname": "Dee", "lastname": "Lane"},
            "associations": associations,
        },
        expect=201,
    )
    result = cli.invoke(args=["sync", "run", "contacts"])
    assert result.exit_code == 0, result.output
    assert qbo_customers(stack, realm)["dee@example.com"]["DisplayName"] == expected


def test_a_display_name_template_with_unknown_fields_is_refused(stack, installed):
    result = stack.app.test_cli_runner().invoke(args=["sync", "setup", "contacts", "--name-template", "{nickname}"])
    assert result.exit_code != 0 and "{company}" in result.output and "nickname" in result.output


def test_only_registered_object_types_can_be_set_up(stack, installed):
    """The database no longer lists object types (the registry does): setting up another is refused here."""
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    with pytest.raises(ValueError, match="unknown object type 'deals'"):
        set_up(stack.runtime, company_id, "deals")


def _association(to_id: str, type_id: int) -> list[dict]:
    return [{"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]


def _hubspot_record(stack, portal, object_type: str, properties: dict, associations=()) -> dict:
    body = {"properties": properties, "associations": [a for group in associations for a in group]}
    return stack.hubspot.control("POST", f"/accounts/{portal}/objects/{object_type}", body, expect=201)


def _invoice(stack, portal, contact_ids: list[str], opened: bool) -> dict:
    """An invoice billed to `contact_ids`, with one line item; opened (status "open") or left a draft."""
    invoice = _hubspot_record(
        stack, portal, "invoices", {"hs_currency": "USD"}, [_association(c, 177) for c in contact_ids]
    )
    _hubspot_record(
        stack,
        portal,
        "line_items",
        {"name": "Work", "quantity": "1", "price": "10"},
        [_association(invoice["id"], 410)],
    )
    if opened:
        _open(stack, portal, invoice["id"])
    return invoice


def _open(stack, portal, invoice_id: str) -> None:
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/invoices/{invoice_id}", {"properties": {"hs_invoice_status": "open"}}
    )


def test_recommended_filters_start_only_billing_contacts_and_every_customer(stack, installed):
    """HubSpot → QBO: only the one contact of an invoice that is not a draft, created in HubSpot after
    set-up; several contacts fail as ambiguous; QBO → HubSpot: every customer. Webhooks and a real
    worker carry a contact in once its invoice is opened."""
    from sync.store.models import SyncSettings

    portal, realm = installed[0]["portalId"], installed[3]["realmId"]
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    person = {}
    for name in ("early", "lone", "drafty", "brought", "pair1", "pair2", "billed"):
        person[name] = _hubspot_record(stack, portal, "contacts", {"email": f"{name}@example.com", "firstname": name})
    early = _invoice(stack, portal, [person["early"]["id"]], opened=True)  # before the sync was set up
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    settings = set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot")
    assert settings.filters == {"hubspot": "billing_contact"}
    with stack.db() as session:  # the set-up moment falls after the early invoice
        row = session.scalar(select(SyncSettings))
        assert row.set_up_at.replace(tzinfo=None) >= _created(early).replace(tzinfo=None)
    drafty = _invoice(stack, portal, [person["drafty"]["id"]], opened=False)
    brought = _invoice(stack, portal, [person["brought"]["id"]], opened=True)
    with stack.db() as session:  # as if our invoice sync had brought this one in from QBO
        session.add(
            RecordLink(
                installation_id=settings.installation_id,
                qbo_company_id=company_id,
                object_type="invoices",
                origin="quickbooks",
                hubspot_id=brought["id"],
                qbo_id="900",
                state="syncing",
            )
        )
    shared = _invoice(stack, portal, [person["pair1"]["id"]], opened=True)  # opening needs one contact;
    _hubspot_sdk(stack).crm.associations.v4.basic_api.create(  # a second one can be added afterwards
        "invoices", shared["id"], "contacts", person["pair2"]["id"], [_spec(177)]
    )
    _invoice(stack, portal, [person["billed"]["id"]], opened=True)
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/seed",
        {
            "entity": "Customer",
            "records": [{"DisplayName": "Qbo Born", "PrimaryEmailAddr": {"Address": "born@example.com"}}],
        },
        expect=201,
    )

    summary = run_object(stack.runtime, company_id, "contacts")
    customers = qbo_customers(stack, realm)
    assert set(customers) == {"billed@example.com", "born@example.com"}, summary
    assert "born@example.com" in hubspot_contacts(stack, portal)  # QBO → HubSpot: all
    with stack.db() as session:
        states = {
            link.hubspot_id: (link.state, link.error_category)
            for link in session.scalars(select(RecordLink).where(RecordLink.object_type == "contacts"))
        }
        pair = session.scalar(select(RecordLink).where(RecordLink.hubspot_id == person["pair1"]["id"]))
        assert "several contacts" in pair.error_message and "What to do" in pair.error_message
    for name in ("early", "lone", "drafty", "brought"):
        assert states[person[name]["id"]] == ("excluded", None), name
    for name in ("pair1", "pair2"):
        assert states[person[name]["id"]] == ("failed", "ambiguous billing contact"), name

    # the draft is opened: its webhook re-plans its contact, which now starts syncing
    stack.hubspot.control("POST", "/webhooks/deliver")  # what piled up so far
    _drain(stack)
    assert "drafty@example.com" not in qbo_customers(stack, realm)
    _open(stack, portal, drafty["id"])
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    assert "drafty@example.com" in qbo_customers(stack, realm)
    # filters decide what starts syncing: a linked contact keeps syncing without an invoice
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{person['billed']['id']}", {"properties": {"lastname": "Later"}}
    )
    run_object(stack.runtime, company_id, "contacts")
    assert qbo_customers(stack, realm)["billed@example.com"]["FamilyName"] == "Later"


def _created(record: dict):
    from sync.times import parse_time

    return parse_time(record["properties"].get("hs_createdate") or record["createdAt"])


def test_a_merge_in_hubspot_moves_the_link_to_the_survivor_without_a_new_customer(stack, synced):
    from hubspot.crm.contacts import PublicMergeInput

    portal, realm, company_id = synced
    old = _hubspot_record(stack, portal, "contacts", {"email": "old@example.com", "firstname": "Olga", "phone": "1"})
    run_object(stack.runtime, company_id, "contacts")
    (customer,) = qbo_customers(stack, realm).values()
    newer = _hubspot_record(stack, portal, "contacts", {"email": "olga@example.com", "firstname": "Olga"})
    _hubspot_sdk(stack).crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id=newer["id"], object_id_to_merge=old["id"])
    )
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("relink") == 1 and "create" not in summary.counts, summary
    (after,) = qbo_customers(stack, realm).values()  # the same customer, now with the survivor's email
    assert after["Id"] == customer["Id"] and after["PrimaryEmailAddr"]["Address"] == "olga@example.com"
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert (link.hubspot_id, link.qbo_id, link.state) == (newer["id"], customer["Id"], "syncing")
        assert "merged" in {a.action for a in session.scalars(select(SyncActivity))}
    assert run_object(stack.runtime, company_id, "contacts").counts.get("update") is None  # settled


def test_merging_two_linked_contacts_is_a_conflict_not_a_guess(stack, synced):
    from hubspot.crm.contacts import PublicMergeInput

    portal, realm, company_id = synced
    one = _hubspot_record(stack, portal, "contacts", {"email": "one@example.com", "firstname": "One"})
    two = _hubspot_record(stack, portal, "contacts", {"email": "two@example.com", "firstname": "Two"})
    run_object(stack.runtime, company_id, "contacts")
    _hubspot_sdk(stack).crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id=two["id"], object_id_to_merge=one["id"])
    )
    run_object(stack.runtime, company_id, "contacts")
    assert len(qbo_customers(stack, realm)) == 2  # nothing deleted or merged in QBO behind the user's back
    with stack.db() as session:
        failed = session.scalar(select(RecordLink).where(RecordLink.hubspot_id == one["id"]))
        assert failed.state == "failed" and failed.error_category == "merge conflict"


def test_a_privacy_deletion_tombstones_the_link_and_purges_our_copies(stack, synced):
    from hubspot.crm.contacts import PublicGdprDeleteInput

    portal, realm, company_id = synced
    person = _hubspot_record(stack, portal, "contacts", {"email": "gone@example.com", "firstname": "Gwen"})
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{person['id']}", {"properties": {"lastname": "Private"}}
    )
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    assert qbo_customers(stack, realm)["gone@example.com"]["FamilyName"] == "Private"
    _hubspot_sdk(stack).crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=person["id"]))
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert link.hubspot_deleted_at is not None and link.base_values == {}
        stored = " ".join(
            [str(e.payload) for e in session.scalars(select(WebhookEvent))]
            + [f"{a.message} {a.details}" for a in session.scalars(select(SyncActivity))]
            + [str(link.base_values), str(link.error_message)]
        )
        assert "Private" not in stored and "Gwen" not in stored and "gone@example.com" not in stored
        kinds = {e.event_type for e in session.scalars(select(WebhookEvent))}
        assert "contact.privacyDeletion" in kinds and "contact.propertyChange" in kinds
    # the books keep their customer (keep policy), and a later edit there never recreates the person
    customer = qbo_customers(stack, realm)["gone@example.com"]
    qbo_edit(stack, realm, customer, FamilyName="Edited")
    run_object(stack.runtime, company_id, "contacts")
    assert "gone@example.com" not in hubspot_contacts(stack, portal)


@pytest.mark.parametrize("rename", [True, False], ids=["rename on", "rename off"])
def test_a_company_rename_reaches_qbo_only_where_the_setting_allows(stack, synced, rename):
    """Customers we created follow their company's name when `rename` is on; one born in QBO never does."""
    portal, realm, company_id = synced
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", options={"rename": rename})
    firm = _hubspot_record(stack, portal, "companies", {"name": "Acme"})
    ours = _hubspot_record(
        stack, portal, "contacts", {"email": "ours@example.com", "firstname": "Ann"}, [_association(firm["id"], 1)]
    )
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/seed",
        {
            "entity": "Customer",
            "records": [{"DisplayName": "Bo Books", "PrimaryEmailAddr": {"Address": "bo@example.com"}}],
        },
        expect=201,
    )
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    assert qbo_customers(stack, realm)["ours@example.com"]["DisplayName"] == "Acme"
    born = hubspot_contacts(stack, portal)["bo@example.com"]  # created in HubSpot from QBO
    _hubspot_sdk(stack).crm.associations.v4.basic_api.create("contacts", born.id, "companies", firm["id"], [_spec(1)])
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/companies/{firm['id']}", {"properties": {"name": "Acme Ltd"}}
    )
    stack.hubspot.control("POST", "/webhooks/deliver")
    _drain(stack)
    customers = qbo_customers(stack, realm)
    assert customers["ours@example.com"]["DisplayName"] == ("Acme Ltd" if rename else "Acme")
    assert customers["bo@example.com"]["DisplayName"] == "Bo Books"  # born in QBO: never renamed
    assert ours["id"] in {c.id for c in hubspot_contacts(stack, portal).values()}
    assert_settled(stack, company_id)  # settled: the rename's echo is not a write


def test_characters_qbo_refuses_in_names_are_cleaned_and_do_not_echo(stack, synced):
    portal, realm, company_id = synced
    firm = _hubspot_record(stack, portal, "companies", {"name": "Acme: West\tCoast"})
    _hubspot_record(
        stack,
        portal,
        "contacts",
        {"email": "jo@example.com", "firstname": "Jo:Ann", "lastname": "Lee\nSmith"},
        [_association(firm["id"], 1)],
    )
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("create") == 1 and "failed" not in summary.counts, summary
    customer = qbo_customers(stack, realm)["jo@example.com"]
    assert (customer["DisplayName"], customer["GivenName"], customer["FamilyName"]) == (
        "Acme- West Coast",
        "Jo-Ann",
        "Lee Smith",
    )
    assert_settled(stack, company_id)


@pytest.mark.parametrize("winner", ["hubspot", "quickbooks"])
def test_a_conflict_is_settled_by_the_winner_on_both_sides(stack, synced, winner):
    portal, realm, company_id = synced
    set_up(stack.runtime, company_id, "contacts", "two-way", winner)
    person = _hubspot_record(stack, portal, "contacts", {"email": "kim@example.com", "firstname": "Kim", "phone": "1"})
    run_object(stack.runtime, company_id, "contacts")
    stack.hubspot.control("POST", "/clock", {"advanceSeconds": 5})
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{person['id']}", {"properties": {"phone": "111"}}
    )
    customer = qbo_customers(stack, realm)["kim@example.com"]
    qbo_edit(stack, realm, customer, PrimaryPhone={"FreeFormNumber": "222"})
    run_object(stack.runtime, company_id, "contacts")
    expected = "111" if winner == "hubspot" else "222"
    assert qbo_customers(stack, realm)["kim@example.com"]["PrimaryPhone"]["FreeFormNumber"] == expected
    assert hubspot_contacts(stack, portal)["kim@example.com"].properties["phone"] == expected
    assert_settled(stack, company_id)  # settled: nothing bounces back


def test_an_email_change_on_either_side_keeps_the_pair_together(stack, synced):
    """The email is the matching key only for new records: a linked pair follows its link."""
    portal, realm, company_id = synced
    person = _hubspot_record(stack, portal, "contacts", {"email": "lou@example.com", "firstname": "Lou"})
    run_object(stack.runtime, company_id, "contacts")
    (customer,) = qbo_customers(stack, realm).values()
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/contacts/{person['id']}", {"properties": {"email": "lou@new.example"}}
    )
    run_object(stack.runtime, company_id, "contacts")
    (after,) = qbo_customers(stack, realm).values()  # the same customer, no second one
    assert after["Id"] == customer["Id"] and after["PrimaryEmailAddr"]["Address"] == "lou@new.example"
    qbo_edit(stack, realm, after, PrimaryEmailAddr={"Address": "lou@qbo.example"})
    run_object(stack.runtime, company_id, "contacts")
    contacts = hubspot_contacts(stack, portal)
    assert set(contacts) == {"lou@qbo.example"} and contacts["lou@qbo.example"].id == person["id"]
    assert len(qbo_customers(stack, realm)) == 1


@pytest.mark.parametrize("policy", ["keep", "propagate"])
@pytest.mark.parametrize("deleted_in", ["hubspot", "quickbooks"])
def test_a_delete_is_kept_or_propagated_and_never_recreated(stack, synced, policy, deleted_in):
    portal, realm, company_id = synced
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", policy)
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    person = _hubspot_record(stack, portal, "contacts", {"email": "del@example.com", "firstname": "Del"})
    run_object(stack.runtime, company_id, "contacts")
    customer = qbo_customers(stack, realm)["del@example.com"]
    if deleted_in == "hubspot":
        stack.hubspot.control("DELETE", f"/accounts/{portal}/objects/contacts/{person['id']}", expect=204)
        # an archived contact leaves HubSpot's search: its deletion webhook is how the run learns of it
        stack.hubspot.control("POST", "/webhooks/deliver")
    else:
        qbo_edit(stack, realm, customer, Active=False)
    run_object(stack.runtime, company_id, "contacts")
    still_in_hubspot = "del@example.com" in hubspot_contacts(stack, portal)
    active_in_qbo = qbo_customers(stack, realm)["del@example.com"].get("Active", True)
    if policy == "propagate":
        assert not still_in_hubspot and active_in_qbo is False
    else:
        assert still_in_hubspot == (deleted_in == "quickbooks") and active_in_qbo == (deleted_in == "hubspot")
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert (link.hubspot_deleted_at if deleted_in == "hubspot" else link.qbo_deleted_at) is not None
    # an edit of the survivor (keep) never recreates the deleted side
    if still_in_hubspot:
        stack.hubspot.control(
            "PATCH", f"/accounts/{portal}/objects/contacts/{person['id']}", {"properties": {"lastname": "Later"}}
        )
    run_object(stack.runtime, company_id, "contacts")
    assert len(qbo_customers(stack, realm)) == 1
    assert list(hubspot_contacts(stack, portal)) == (["del@example.com"] if still_in_hubspot else [])


def test_a_mapping_turned_off_is_left_alone_on_both_sides(stack, installed):
    portal, realm = installed[0]["portalId"], installed[3]["realmId"]
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    cli = stack.app.test_cli_runner()
    result = cli.invoke(args=["sync", "setup", "contacts", "--hubspot-filter", "none", "--field", "phone=off"])
    assert result.exit_code == 0 and "fields off: phone" in result.output, result.output
    bad = cli.invoke(args=["sync", "setup", "contacts", "--field", "shoe_size=off"])
    assert bad.exit_code != 0 and "unknown field shoe_size" in bad.output and "phone" in bad.output
    person = _hubspot_record(stack, portal, "contacts", {"email": "pat@example.com", "firstname": "Pat", "phone": "5"})
    assert cli.invoke(args=["sync", "run", "contacts"]).exit_code == 0
    customer = qbo_customers(stack, realm)["pat@example.com"]
    assert customer["GivenName"] == "Pat" and "PrimaryPhone" not in customer
    stack.hubspot.control("POST", "/clock", {"advanceSeconds": 5})
    stack.hubspot.control(
        "PATCH",
        f"/accounts/{portal}/objects/contacts/{person['id']}",
        {"properties": {"phone": "6", "firstname": "Patty"}},
    )
    assert cli.invoke(args=["sync", "run", "contacts"]).exit_code == 0
    customer = qbo_customers(stack, realm)["pat@example.com"]
    assert customer["GivenName"] == "Patty" and "PrimaryPhone" not in customer
    result = cli.invoke(args=["sync", "setup", "contacts", "--field", "phone=on"])
    assert "fields off: none" in result.output, result.output


def test_an_invoice_opened_while_every_webhook_is_lost_is_found_by_the_sweep(stack, installed):
    portal, realm = installed[0]["portalId"], installed[3]["realmId"]
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    stack.hubspot.control("POST", "/webhooks/faults", {"action": "drop", "count": 1000})
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot")  # the recommended filters
    person = _hubspot_record(stack, portal, "contacts", {"email": "late@example.com", "firstname": "Late"})
    invoice = _invoice(stack, portal, [person["id"]], opened=False)
    run_object(stack.runtime, company_id, "contacts")
    assert "late@example.com" not in qbo_customers(stack, realm)  # a draft does not count
    run_object(stack.runtime, company_id, "contacts")  # a later run: the contact is not new any more
    _open(stack, portal, invoice["id"])
    run_object(stack.runtime, company_id, "contacts")  # what the 5-minute sweep runs
    assert "late@example.com" in qbo_customers(stack, realm)


def test_a_pair_linked_by_email_settles_in_one_run(stack, synced):
    """The first run links and fills the blanks; the next run has nothing to write."""
    portal, realm, company_id = synced
    _hubspot_record(stack, portal, "contacts", {"email": "p1@example.com", "firstname": "First", "lastname": "Last"})
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/seed",
        {
            "entity": "Customer",
            "records": [{"DisplayName": "Customer 1", "PrimaryEmailAddr": {"Address": "p1@example.com"}}],
        },
        expect=201,
    )
    first = run_object(stack.runtime, company_id, "contacts")
    assert first.counts.get("link") == 1 and "create" not in first.counts, first
    customer = qbo_customers(stack, realm)["p1@example.com"]
    assert (customer["GivenName"], customer["FamilyName"], customer["DisplayName"]) == ("First", "Last", "Customer 1")
    second = assert_settled(stack, company_id)  # nothing written; at most our own write's webhook, as a skip
    assert set(second.counts) <= {"skip"}, second


def test_a_record_written_in_one_page_is_not_planned_from_its_stale_listing_in_a_later_page(stack, synced, monkeypatch):
    """The first QBO listing is kept for the pages that plan it; a page that writes a customer
    must replace that copy, or a later page sees the names it just filled as cleared in QBO
    (and would clear them in HubSpot)."""
    from sync import runner

    portal, realm, company_id = synced
    monkeypatch.setattr(runner, "PAGE_SIZE", 1)  # the contact, then the customer, each a page
    _hubspot_record(stack, portal, "contacts", {"email": "pg@example.com", "firstname": "Paige", "lastname": "Gray"})
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/seed",
        {
            "entity": "Customer",
            "records": [{"DisplayName": "Paige's Shop", "PrimaryEmailAddr": {"Address": "pg@example.com"}}],
        },
        expect=201,
    )
    run_object(stack.runtime, company_id, "contacts")
    contact = hubspot_contacts(stack, portal)["pg@example.com"].properties
    customer = qbo_customers(stack, realm)["pg@example.com"]
    assert (contact["firstname"], contact["lastname"]) == ("Paige", "Gray")
    assert (customer["GivenName"], customer["FamilyName"]) == ("Paige", "Gray")
    # No writes (assert_settled checks both emulators); a webhook of our own write that lands between the
    # runs may be planned once more as a skip (see the first test of this module), never as a write.
    assert set(assert_settled(stack, company_id).counts) <= {"skip"}


def test_a_link_takes_over_the_row_its_target_failed_on(stack, synced):
    """A customer whose creation in HubSpot failed, then a contact with its email: they link (the
    customer's failed row gives way to the link) instead of colliding on the customer's id."""
    portal, realm, company_id = synced
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/seed",
        {
            "entity": "Customer",
            "records": [{"DisplayName": "Rae Ink", "PrimaryEmailAddr": {"Address": "rae@example.com"}}],
        },
        expect=201,
    )
    stack.hubspot.control(
        "POST", "/faults", {"path": "/crm/v3/objects/contacts/batch/upsert", "status": 400, "count": 1}, expect=201
    )
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        (failed,) = session.scalars(select(RecordLink)).all()
        assert failed.state == "failed" and failed.hubspot_id is None
    person = _hubspot_record(stack, portal, "contacts", {"email": "rae@example.com", "firstname": "Rae"})
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("link") == 1, summary
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert (link.hubspot_id, link.qbo_id, link.state) == (person["id"], failed.qbo_id, "syncing")
    assert qbo_customers(stack, realm)["rae@example.com"]["GivenName"] == "Rae"


@pytest.mark.parametrize("sent", [False, True], ids=["our limiter stopped it", "QBO answered 429"])
def test_a_batch_stopped_by_a_rate_limit_is_planned_again_or_resumed(stack, synced, monkeypatch, sent):
    """Stopped by our own limiter, the batch never left: its staged writes go and the records are
    planned again (in a batch). Answered 429 by QBO, the writes stay pending and are resumed."""
    from sync.clients import errors
    from sync.clients.quickbooks import QuickBooksClient
    from sync.store.models import SyncBacklog

    portal, realm, company_id = synced
    for n in range(3):
        _hubspot_record(stack, portal, "contacts", {"email": f"rl{n}@example.com", "firstname": f"Rl{n}"})
    real = QuickBooksClient.batch_create
    calls = []

    def limited_once(self, entity, bodies):
        calls.append(len(bodies))
        if len(calls) == 1:
            raise errors.RateLimited("quickbooks", "realm limit", retry_after=5, **({"status": 429} if sent else {}))
        return real(self, entity, bodies)

    monkeypatch.setattr(QuickBooksClient, "batch_create", limited_once)
    with pytest.raises(errors.RateLimited):
        run_object(stack.runtime, company_id, "contacts", pages=1)  # a job's run: re-queued for later
    with stack.db() as session:
        staged = [link for link in session.scalars(select(RecordLink)) if link.pending_write]
        assert len(staged) == (3 if sent else 0)
        assert session.scalar(select(func.count()).select_from(SyncBacklog)) == 3  # the page is still to do
    summary = run_object(stack.runtime, company_id, "contacts")
    assert len(qbo_customers(stack, realm)) == 3
    assert summary.counts.get("resumed", 0) == (3 if sent else 0)
    assert calls == ([3] if sent else [3, 3])  # resumed one by one, or created again in one batch


def test_a_delete_whose_webhook_is_lost_is_found_by_the_hourly_archive_check(stack, synced):
    from sync.store.models import SyncCursor

    portal, realm, company_id = synced
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})  # and never delivered
    person = _hubspot_record(stack, portal, "contacts", {"email": "gone2@example.com", "firstname": "Gil"})
    run_object(stack.runtime, company_id, "contacts")
    stack.hubspot.control("DELETE", f"/accounts/{portal}/objects/contacts/{person['id']}", expect=204)
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert link.hubspot_deleted_at is None  # checked less than an hour ago: not yet noticed
        cursor = session.scalar(select(SyncCursor).where(SyncCursor.side == "hubspot"))
        cursor.position = {"archived_checked_at": "2020-01-01T00:00:00+00:00"}  # an hour has passed
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        (link,) = session.scalars(select(RecordLink)).all()
        assert link.hubspot_deleted_at is not None  # tombstoned (the keep policy): never recreated
    assert qbo_customers(stack, realm)["gone2@example.com"].get("Active", True) is True


def test_a_token_refused_before_its_time_is_refreshed_once_and_the_run_goes_on(stack, synced):
    """Both remotes' clocks run two hours ahead of ours: every access token we hold is expired there
    while we think it valid. The 401 makes the run refresh the token (once) and start over."""
    portal, realm, company_id = synced
    run_object(stack.runtime, company_id, "contacts")
    stack.qbo.control("POST", "/clock", {"advanceSeconds": 7200})
    stack.hubspot.control("POST", "/clock", {"advanceSeconds": 7200})
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/customer",
        {"DisplayName": "Late Clock", "PrimaryEmailAddr": {"Address": "clock@example.com"}},
        expect=200,
    )
    summary = run_object(stack.runtime, company_id, "contacts")
    assert summary.counts.get("create") == 1, summary.counts
    assert "clock@example.com" in hubspot_contacts(stack, portal)
