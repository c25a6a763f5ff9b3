"""A worker killed mid-sync: its run resumes once its lease runs out, without waiting for the sweep.

Real processes: `rq worker` (with its scheduler) and the clock (`rq cron sync.tasks.schedule`), started
as the Procfile starts them, against the test's Redis, database and both emulators. The first worker
is SIGKILLed — its whole process group, so its work horse dies with it — while it writes the first
page of a multi-page first sync; a second worker then finishes the sync. Processes are ended by the
process groups this test started, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sync.setup import set_up
from sync.store.models import QboCompany, RecordLink, SyncBacklog
from sync.tasks.syncing import enqueue_run

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
CONTACTS = 700  # records of each object type: two pages of 500, the kill lands in the first
INVOICES = 40  # HubSpot invoices for the invoices crash (each created alone, with its payment)
LEASE = 12  # seconds: the processes' run lease (production: 60); the clock looks for dead runs every 6


def settings_env(settings) -> dict[str, str]:
    """The environment a worker process needs to build the same Config as the test's stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        APP_ENV="development",
        INSTANCE_PATH=str(settings.instance_path),
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        SECRET_KEY=settings.secret_key,
        TOKEN_ENCRYPTION_KEY=settings.token_encryption_key,
        APP_BASE_URL=settings.app_base_url,
        LOG_FORMAT="text",
        HUBSPOT_APP_ID=settings.hubspot_app_id,
        HUBSPOT_CLIENT_ID=settings.hubspot_client_id,
        HUBSPOT_CLIENT_SECRET=settings.hubspot_client_secret,
        HUBSPOT_API_BASE_URL=settings.hubspot_api_base_url,
        HUBSPOT_AUTHORIZE_URL=settings.hubspot_authorize_url,
        INTUIT_CLIENT_ID=settings.intuit_client_id,
        INTUIT_CLIENT_SECRET=settings.intuit_client_secret,
        INTUIT_WEBHOOK_VERIFIER_TOKEN=settings.intuit_webhook_verifier_token,
        QBO_API_BASE_URL=settings.qbo_api_base_url,
        INTUIT_DISCOVERY_URL=settings.intuit_discovery_url,
        DOTENV_PATH=str(settings.instance_path / "no.env"),
        PYTHONUNBUFFERED="1",
        LEDGERSYNC_RUN_LEASE_SECONDS=str(LEASE),  # a short lease: the dead worker's run is free sooner
    )
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killing it takes its children too
    )


def clock_and_worker(stack, tmp_path: Path):
    """The clock and a first worker, started as the Procfile starts them: (clock, first worker, a function
    that starts the second worker, the logs of all three)."""
    env = settings_env(stack.runtime.config)
    url = stack.runtime.config.redis_url
    worker = [str(BIN / "rq"), "worker", "--with-scheduler", "--url", url, "high", "default", "low"]
    logs = [tmp_path / "clock.log", tmp_path / "first-worker.log", tmp_path / "second-worker.log"]
    clock = start([str(BIN / "rq"), "cron", "sync.tasks.schedule", "--url", url], env, logs[0])
    return clock, start(worker, env, logs[1]), lambda: start(worker, env, logs[2]), logs


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process, its group, and its children: RQ's work horse (the forked child that runs
    the job) moves to a process group of its own, so it is found by its parent's id, as the kernel
    lists it, and killed by that id."""
    if process.poll() is None:
        for child in children_of(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found + [grandchild for child in found for grandchild in children_of(child)]


def counts(stack) -> tuple[int, int]:
    with stack.db() as session:
        links = session.scalar(select(func.count()).select_from(RecordLink).where(RecordLink.qbo_id.is_not(None)))
        backlog = session.scalar(select(func.count()).select_from(SyncBacklog))
    return links, backlog


def wait_until(predicate, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


# What each object type's crash run seeds in HubSpot (RECORDS of them), set up two-way from HubSpot.
SEEDS = {
    "contacts": {
        "setup": {"filters": {"hubspot": None}},
        "properties": {"email": "crash{n}@example.com", "firstname": "Crash", "lastname": "{n}"},
    },
    "products": {"setup": {}, "properties": {"name": "Crash part {n}", "hs_sku": "CRASH-{n}", "price": "{n}.5"}},
}


@pytest.mark.parametrize("object_type", sorted(SEEDS))
def test_a_worker_killed_mid_sync_is_resumed_well_before_the_sweep(stack, installed, tmp_path, object_type):
    account, *_ = installed
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    set_up(stack.runtime, company_id, object_type, "two-way", "hubspot", **SEEDS[object_type]["setup"])
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    stack.hubspot.control(
        "POST",
        f"/accounts/{account['portalId']}/seed",
        {"objectType": object_type, "count": CONTACTS, "properties": SEEDS[object_type]["properties"]},
        expect=201,
    )
    clock, first, start_second, logs = clock_and_worker(stack, tmp_path)
    second = None
    try:
        enqueue_run(stack.runtime, company_id, object_type)
        # Kill it while it writes the first page: some records linked, most not.
        wait_until(lambda: 0 < counts(stack)[0] < 500, 60, "the first page to be under way", logs)
        horses = children_of(first.pid)
        kill_group(first)
        killed_at = time.monotonic()
        linked_when_killed = counts(stack)[0]
        assert horses  # the work horse running the job (and the scheduler) …
        wait_until(lambda: not any(alive(pid) for pid in horses), 10, "the work horse to die", logs)  # … died too
        second = start_second()
        wait_until(lambda: counts(stack) == (CONTACTS, 0), 150, "the sync to finish after the kill", logs)
        # the watchdog (a lease, then its next look), not the 5-minute sweep; finishing takes the rest
        assert time.monotonic() - killed_at < 2 * LEASE + 60
        assert linked_when_killed < CONTACTS
        assert len(crash_records(stack, object_type)) == CONTACTS  # nothing lost, nothing created twice
    finally:
        for process in (first, second, clock):
            if process is not None:
                kill_group(process)


def crash_records(stack, object_type: str) -> list[dict]:
    """The QBO customers or items the crash run made (by their email or name)."""
    with stack.db() as session:
        realm = session.scalar(select(QboCompany)).realm_id
    with stack.qbo.state.lock:
        if object_type == "products":
            items = stack.qbo.state.companies[realm].table("Item").values()
            return [i for i in items if i["Name"].startswith("Crash part")]
        customers = stack.qbo.state.companies[realm].table("Customer").values()
        return [c for c in customers if (c.get("PrimaryEmailAddr") or {}).get("Address", "").startswith("crash")]


def test_a_worker_killed_while_it_writes_invoices_to_quickbooks_makes_no_second_invoice_or_payment(
    stack, installed, tmp_path
):
    """HubSpot invoices (each paid in HubSpot) going to QBO: the worker dies mid-page; the run resumes and
    every invoice and payment exists once in QBO (pending writes and QBO request ids)."""
    from sync.runner import run_object

    account, *_ = installed
    portal = account["portalId"]
    with stack.db() as session:
        company = session.scalar(select(QboCompany))
        company_id, realm = company.id, company.realm_id
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    stack.hubspot.control("PATCH", f"/accounts/{portal}", {"paymentsProcessor": "hubspot_payments"})
    contact = stack.hubspot.control(
        "POST", f"/accounts/{portal}/objects/contacts", {"properties": {"email": "crash-billing@example.com"}}
    )["id"]
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", filters={"hubspot": None})
    run_object(stack.runtime, company_id, "contacts")
    set_up(stack.runtime, company_id, "invoices", "two-way", "hubspot")

    def to(record_id: str, type_id: int) -> list[dict]:
        return [
            {
                "to": {"id": record_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }
        ]

    def seed(object_type: str, records: list[dict]) -> list[str]:
        body = {"objectType": object_type, "records": records}
        return stack.hubspot.control("POST", f"/accounts/{portal}/seed", body, expect=201)["ids"]

    invoices = seed("invoices", [{"properties": {"hs_currency": "USD"}, "associations": to(contact, 177)}] * INVOICES)
    seed("line_items", [{"properties": {"name": "Crash work", "quantity": "1", "price": "10"},
                         "associations": to(i, 410)} for i in invoices])  # fmt: skip
    for invoice in invoices:
        path = f"/accounts/{portal}/objects/invoices/{invoice}"
        stack.hubspot.control("PATCH", path, {"properties": {"hs_invoice_status": "open"}})
    seed("commerce_payments", [{"properties": {"hs_initial_amount": "10", "hs_initiated_date": "2026-12-01T00:00:00Z",
                                               "hs_latest_status": "succeeded", "hs_processor_type": "hs_payments"},
                                "associations": to(i, 542)} for i in invoices])  # fmt: skip

    def linked() -> int:
        with stack.db() as session:
            return session.scalar(
                select(func.count())
                .select_from(RecordLink)
                .where(RecordLink.object_type == "invoices", RecordLink.qbo_id.is_not(None))
            )

    clock, first, start_second, logs = clock_and_worker(stack, tmp_path)
    second = None
    try:
        enqueue_run(stack.runtime, company_id, "invoices")
        wait_until(lambda: 0 < linked() < INVOICES, 120, "the first invoices to be written", logs)
        kill_group(first)
        assert linked() < INVOICES
        second = start_second()
        wait_until(lambda: linked() == INVOICES, 150, "the invoices to be finished after the kill", logs)
        with stack.qbo.state.lock:
            tables = stack.qbo.state.companies[realm]
            made = list(tables.table("Invoice").values())
            ours = [
                p for p in tables.table("Payment").values() if "collected in HubSpot" in (p.get("PrivateNote") or "")
            ]
        assert len(made) == INVOICES  # nothing created twice …
        assert len(ours) == INVOICES and len({p["PaymentRefNum"] for p in ours}) == INVOICES  # … nor paid twice
    finally:
        for process in (first, second, clock):
            if process is not None:
                kill_group(process)
