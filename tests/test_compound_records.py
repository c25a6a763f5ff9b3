"""Compound records through the run path, end to end against both emulators, on SQLite and PostgreSQL.

A test-only object type (tests/compound_object.py: HubSpot invoices with line items ⇄ QBO sales
receipts with lines, tied to the deal's contact) proves what invoices will rely on: lines read on
both sides, planned line by line against the base kept on the link, written back (HubSpot line items
created, updated, archived and associated; QBO lines in a full update), line pairs remembered, an
association declared by the object type and written by the runner, and a record that waits for its
contact until the contacts sync links it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sync.objects import register, unregister
from sync.runner import run_object
from sync.setup import set_up
from sync.store.models import Installation, QboCompany, RecordLink, WebhookEvent
from tests.compound_object import InvoicesAsSalesReceipts
from tests.conftest import BOTH_DATABASES, assert_run_writes_nothing, hubspot_sdk, stack_on_both_databases

stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)


@pytest.fixture
def deals(stack, installed):
    """Contacts and the test-only deals type both set up two-way; QBO has one item to sell."""
    account, _users, _browser, company, _page = installed
    portal, realm = account["portalId"], company["realmId"]
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    state = stack.qbo.state
    with state.lock:
        income = next(a for a in state.companies[realm].table("Account").values() if a["Name"] == "Services")
    item = stack.qbo.control(
        "POST",
        f"/companies/{realm}/item",
        {"Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": income["Id"]}},
    )["Item"]
    kind = register(InvoicesAsSalesReceipts(item_id=item["Id"]))
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", filters={"hubspot": None})
    set_up(stack.runtime, company_id, kind.name, "two-way", "hubspot")
    yield portal, realm, company_id
    unregister(kind.name)


def _create(stack, portal, object_type: str, properties: dict, associations=()) -> dict:
    body = {
        "properties": properties,
        "associations": [
            {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
            for to_id, type_id in associations
        ],
    }
    return stack.hubspot.control("POST", f"/accounts/{portal}/objects/{object_type}", body, expect=201)


def _patch(stack, portal, object_type: str, record_id: str, properties: dict) -> None:
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/{object_type}/{record_id}", {"properties": properties}, expect=200
    )


def _receipts(stack, realm) -> list[dict]:
    with stack.qbo.state.lock:
        return [dict(r) for r in stack.qbo.state.companies[realm].table("SalesReceipt").values()]


def _lines(receipt: dict) -> list[tuple[str, float, float, float]]:
    return [
        (
            line.get("Description"),
            line["SalesItemLineDetail"]["Qty"],
            line["SalesItemLineDetail"]["UnitPrice"],
            line["Amount"],
        )
        for line in receipt["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]


def _associated(stack, from_type: str, record_id: str, to_type: str) -> list[str]:
    page = hubspot_sdk(stack).crm.associations.v4.basic_api.get_page(from_type, record_id, to_type)
    return sorted((str(r.to_object_id) for r in page.results), key=int)


def _deal_lines(stack, portal, deal_id: str) -> list[tuple[str, str, str]]:
    """The invoice's live line items as HubSpot holds them: (name, quantity, price)."""
    ids = _associated(stack, "invoices", deal_id, "line_items")
    found = []
    for line_id in ids:
        record = hubspot_sdk(stack).crm.line_items.basic_api.get_by_id(
            line_id, properties=["name", "quantity", "price"]
        )
        found.append(tuple(record.properties.get(p) for p in ("name", "quantity", "price")))
    return found


def _line_item_named(stack, deal_id: str, name: str) -> str:
    for line_id in _associated(stack, "invoices", deal_id, "line_items"):
        if (
            hubspot_sdk(stack).crm.line_items.basic_api.get_by_id(line_id, properties=["name"]).properties["name"]
            == name
        ):
            return line_id
    raise AssertionError(f"no line item {name}")


def _link(stack, kind: str, **ids) -> RecordLink:
    with stack.db() as session:
        return session.scalar(select(RecordLink).filter_by(object_type=kind, **ids))


def test_lines_and_the_customer_sync_both_ways(stack, deals):
    portal, realm, company_id = deals
    contact = _create(
        stack, portal, "contacts", {"email": "buyer@example.com", "firstname": "Bea", "lastname": "Buyer"}
    )
    deal = _create(stack, portal, "invoices", {"hs_title": "Big order", "hs_currency": "USD"}, [(contact["id"], 177)])

    # The contact is not linked yet: the deal waits for it, saying so, and is freed by the contacts run.
    first = run_object(stack.runtime, company_id, "test_receipts")
    assert first.counts.get("wait") == 1 and not _receipts(stack, realm)
    waiting = _link(stack, "test_receipts", hubspot_id=deal["id"])
    assert waiting.state == "waiting" and waiting.waiting_for == [
        {"object_type": "contacts", "side": "hubspot", "id": contact["id"]}
    ]
    for name, quantity, price in (("Widget A", "2", "10"), ("Widget B", "1", "5.5")):
        _create(stack, portal, "line_items", {"name": name, "quantity": quantity, "price": price}, [(deal["id"], 410)])
    assert "test_receipts" in run_object(stack.runtime, company_id, "contacts").released
    customer_id = _link(stack, "contacts", hubspot_id=contact["id"]).qbo_id

    created = run_object(stack.runtime, company_id, "test_receipts")
    assert created.counts.get("create") == 1, created.counts
    (receipt,) = _receipts(stack, realm)
    assert receipt["PrivateNote"] == "Big order" and receipt["CustomerRef"]["value"] == customer_id
    assert sorted(_lines(receipt)) == [("Widget A", 2, 10, 20), ("Widget B", 1, 5.5, 5.5)]
    link = _link(stack, "test_receipts", hubspot_id=deal["id"])
    assert link.qbo_id == receipt["Id"] and len(link.line_pairs) == 2
    assert set(link.line_pairs.values()) == {line["Id"] for line in receipt["Line"] if "SalesItemLineDetail" in line}
    assert_run_writes_nothing(stack, company_id, "test_receipts")

    # In QBO: one line's quantity changes, the other is removed, a third is added (QBO replaces all lines).
    kept = next(line for line in receipt["Line"] if line.get("Description") == "Widget A")
    added = {"DetailType": "SalesItemLineDetail", "Description": "Widget C", "Amount": 10}
    added["SalesItemLineDetail"] = {"ItemRef": kept["SalesItemLineDetail"]["ItemRef"], "Qty": 4, "UnitPrice": 2.5}
    changed = {**kept, "Amount": 30, "SalesItemLineDetail": {**kept["SalesItemLineDetail"], "Qty": 3}}
    body = {"Id": receipt["Id"], "SyncToken": receipt["SyncToken"], "sparse": True, "Line": [changed, added]}
    stack.qbo.control("POST", f"/companies/{realm}/salesreceipt", body, expect=200)
    summary = run_object(stack.runtime, company_id, "test_receipts")
    assert summary.counts.get("update") == 1, summary.counts
    assert sorted(_deal_lines(stack, portal, deal["id"])) == [("Widget A", "3", "10"), ("Widget C", "4", "2.5")]
    link = _link(stack, "test_receipts", hubspot_id=deal["id"])
    assert len(link.line_pairs) == 2 and "Widget C" in str(link.base_values["lines"])
    assert_run_writes_nothing(stack, company_id, "test_receipts")

    # In HubSpot: a line item's price alone changes (found through its webhook: the object type
    # declares line items as a trigger of their deal) …
    widget_c = _line_item_named(stack, deal["id"], "Widget C")
    _patch(stack, portal, "line_items", widget_c, {"price": "3"})
    _line_item_event(stack, widget_c)
    run_object(stack.runtime, company_id, "test_receipts")
    (receipt,) = _receipts(stack, realm)
    assert sorted(_lines(receipt)) == [("Widget A", 3, 10, 30), ("Widget C", 4, 3, 12)]
    # … then the deal is renamed and gets a new line.
    _patch(stack, portal, "invoices", deal["id"], {"hs_title": "Bigger order"})
    _create(stack, portal, "line_items", {"name": "Widget D", "quantity": "1", "price": "7"}, [(deal["id"], 410)])
    run_object(stack.runtime, company_id, "test_receipts")
    (receipt,) = _receipts(stack, realm)
    assert receipt["PrivateNote"] == "Bigger order"
    assert sorted(_lines(receipt)) == [("Widget A", 3, 10, 30), ("Widget C", 4, 3, 12), ("Widget D", 1, 7, 7)]
    assert len(_link(stack, "test_receipts", hubspot_id=deal["id"]).line_pairs) == 3
    assert_run_writes_nothing(stack, company_id, "test_receipts")

    # A sales receipt born in QBO for the linked customer: a deal with its line item and its contact.
    line = {"DetailType": "SalesItemLineDetail", "Description": "Gadget", "Amount": 15}
    line["SalesItemLineDetail"] = {"ItemRef": kept["SalesItemLineDetail"]["ItemRef"], "Qty": 3, "UnitPrice": 5}
    born = stack.qbo.control(
        "POST",
        f"/companies/{realm}/salesreceipt",
        {"PrivateNote": "Counter sale", "CustomerRef": {"value": customer_id}, "Line": [line]},
        expect=200,
    )["SalesReceipt"]
    run_object(stack.runtime, company_id, "test_receipts")
    link = _link(stack, "test_receipts", qbo_id=born["Id"])
    assert link is not None and link.state == "syncing" and link.hubspot_id
    assert _deal_lines(stack, portal, link.hubspot_id) == [("Gadget", "3", "5")]
    new_invoice = hubspot_sdk(stack).crm.objects.basic_api.get_by_id(
        "invoices", link.hubspot_id, properties=["hs_title"]
    )
    assert new_invoice.properties["hs_title"] == "Counter sale"
    assert _associated(stack, "invoices", link.hubspot_id, "contacts") == [contact["id"]]
    assert_run_writes_nothing(stack, company_id, "test_receipts")


def _line_item_event(stack, line_item_id: str) -> None:
    """A stored HubSpot webhook about a line item, as the webhook endpoint keeps it."""
    with stack.db() as session:
        installation = session.scalar(select(Installation))
        session.add(
            WebhookEvent(
                source="hubspot",
                account_id=str(installation.hub_id),
                installation_id=installation.id,
                event_type="object.propertyChange",
                object_type="line_items",
                object_id=line_item_id,
                dedupe_key=f"test-{line_item_id}",
                payload={},
            )
        )
        session.commit()


def test_a_line_written_before_a_crash_is_adopted_not_written_twice(stack, deals, monkeypatch):
    """The worker dies after new lines reached the other side but before their pairs were recorded: the
    next run finds each such line on both sides and pairs it, instead of copying it back a second time."""
    from sync import writer
    from sync.locks import lock_key

    portal, realm, company_id = deals
    contact = _create(stack, portal, "contacts", {"email": "crash@example.com", "firstname": "Cy"})
    invoice = _create(stack, portal, "invoices", {"hs_title": "Crash", "hs_currency": "USD"}, [(contact["id"], 177)])
    _create(stack, portal, "line_items", {"name": "One", "quantity": "1", "price": "10"}, [(invoice["id"], 410)])
    run_object(stack.runtime, company_id, "contacts")
    run_object(stack.runtime, company_id, "test_receipts")
    (receipt,) = _receipts(stack, realm)

    def die(*_args, **_kwargs):
        raise SystemExit("worker killed before the line pairs were recorded")

    # QBO → HubSpot: a line added in QBO; the HubSpot line item is made, then the worker dies.
    kept = next(line for line in receipt["Line"] if "SalesItemLineDetail" in line)
    added = {"DetailType": "SalesItemLineDetail", "Description": "Two", "Amount": 4}
    added["SalesItemLineDetail"] = {"ItemRef": kept["SalesItemLineDetail"]["ItemRef"], "Qty": 2, "UnitPrice": 2}
    body = {"Id": receipt["Id"], "SyncToken": receipt["SyncToken"], "sparse": True, "Line": [kept, added]}
    stack.qbo.control("POST", f"/companies/{realm}/salesreceipt", body, expect=200)
    monkeypatch.setattr(writer.Writer, "_store_lines", die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "test_receipts")
    monkeypatch.undo()
    stack.runtime.jobs.connection.delete(lock_key(company_id, "test_receipts"))
    assert len(_deal_lines(stack, portal, invoice["id"])) == 2  # the line item was made before the crash
    run_object(stack.runtime, company_id, "test_receipts")
    assert sorted(_deal_lines(stack, portal, invoice["id"])) == [("One", "1", "10"), ("Two", "2", "2")]
    assert len(_link(stack, "test_receipts", hubspot_id=invoice["id"]).line_pairs) == 2
    assert_run_writes_nothing(stack, company_id, "test_receipts")

    # HubSpot → QBO: a line item added in HubSpot; QBO's full update lands, then the worker dies.
    _create(stack, portal, "line_items", {"name": "Three", "quantity": "3", "price": "1"}, [(invoice["id"], 410)])
    _line_item_event(stack, _line_item_named(stack, invoice["id"], "Three"))
    monkeypatch.setattr(writer.Writer, "_store_lines", die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "test_receipts")
    monkeypatch.undo()
    stack.runtime.jobs.connection.delete(lock_key(company_id, "test_receipts"))
    run_object(stack.runtime, company_id, "test_receipts")
    (receipt,) = _receipts(stack, realm)
    assert sorted(_lines(receipt)) == [("One", 1, 10, 10), ("Three", 3, 1, 3), ("Two", 2, 2, 4)]
    assert len(_deal_lines(stack, portal, invoice["id"])) == 3
    assert len(_link(stack, "test_receipts", hubspot_id=invoice["id"]).line_pairs) == 3
    assert_run_writes_nothing(stack, company_id, "test_receipts")


def test_a_create_resumed_after_a_crash_takes_the_line_items_it_had_already_made(stack, deals, monkeypatch):
    """A receipt born in QBO: the HubSpot invoice and its line items are made, then the worker dies before the
    link is recorded. The resumed create (a pending write) finds those line items and makes none again."""
    from sync import writer
    from sync.locks import lock_key

    portal, realm, company_id = deals
    contact = _create(stack, portal, "contacts", {"email": "resume@example.com", "firstname": "Res"})
    run_object(stack.runtime, company_id, "contacts")
    customer_id = _link(stack, "contacts", hubspot_id=contact["id"]).qbo_id
    with stack.qbo.state.lock:
        item_id = next(iter(stack.qbo.state.companies[realm].table("Item")))
    lines = [
        {"DetailType": "SalesItemLineDetail", "Description": name, "Amount": qty * 2,
         "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": 2}}
        for name, qty in (("First", 1), ("Second", 3))
    ]  # fmt: skip
    body = {"PrivateNote": "Resumed", "CustomerRef": {"value": customer_id}, "Line": lines}
    born = stack.qbo.control("POST", f"/companies/{realm}/salesreceipt", body, expect=200)["SalesReceipt"]

    def die(*_args, **_kwargs):
        raise SystemExit("worker killed before the link was recorded")

    monkeypatch.setattr(writer.Writer, "_linked_after_create", die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "test_receipts")
    monkeypatch.undo()
    stack.runtime.jobs.connection.delete(lock_key(company_id, "test_receipts"))
    summary = run_object(stack.runtime, company_id, "test_receipts")
    assert summary.counts.get("resumed") == 1, summary.counts
    link = _link(stack, "test_receipts", qbo_id=born["Id"])
    assert sorted(_deal_lines(stack, portal, link.hubspot_id)) == [("First", "1", "2"), ("Second", "3", "2")]
    assert len(link.line_pairs) == 2
    assert_run_writes_nothing(stack, company_id, "test_receipts")
