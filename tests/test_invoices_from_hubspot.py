"""Invoices from HubSpot into QuickBooks (issue 18, first part): an open HubSpot invoice becomes a QBO invoice
with its customer, its lines (linked item, SKU, else the Custom line item), non-taxable, numbered by the
company's rule; drafts wait; failures say what to do. End to end through the SDKs and both emulators."""

from __future__ import annotations

import pytest
from hubspot.crm.objects import PublicAssociationsForObject, PublicObjectId, SimplePublicObjectInput
from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput
from sqlalchemy import select

from sync.runner import run_object
from sync.setup import set_up
from sync.store.models import QboCompany, RecordLink, SyncSettings
from tests.conftest import BOTH_DATABASES, assert_run_writes_nothing, hubspot_sdk, stack_on_both_databases
from tests.test_invoices import _contact, _service_item

stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)


@pytest.fixture
def both_ways(stack, installed):
    """Contacts two-way (no filter) and invoices two-way; a QBO item with a SKU."""
    account, _users, _browser, company, _page = installed
    portal, realm = account["portalId"], company["realmId"]
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    item = _service_item(stack, realm, Name="Widget", Sku="W-1")
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", filters={"hubspot": None})
    settings = set_up(stack.runtime, company_id, "invoices", "two-way", "hubspot")
    assert settings.options["custom_item_income_account_id"]
    return portal, realm, company_id, item


def _to(record_id: str, type_id: int) -> list:
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]
    return [PublicAssociationsForObject(to=PublicObjectId(id=record_id), types=spec)]


def _draft(stack, contact_ids: list[str], lines: list[dict], **properties) -> str:
    """A HubSpot invoice with its contacts and line items, still a draft."""
    sdk = hubspot_sdk(stack).crm.objects.basic_api
    associations = [a for contact in contact_ids for a in _to(contact, 177)]
    invoice = sdk.create(
        "invoices", ObjectInput(properties={"hs_currency": "USD", **properties}, associations=associations)
    )
    for line in lines:
        sdk.create("line_items", ObjectInput(properties=line, associations=_to(invoice.id, 410)))
    return invoice.id


def _open(stack, invoice_id: str) -> None:
    hubspot_sdk(stack).crm.objects.basic_api.update(
        "invoices", invoice_id, SimplePublicObjectInput(properties={"hs_invoice_status": "open"})
    )


def _hubspot(stack, invoice_id: str, *names: str) -> dict:
    return hubspot_sdk(stack).crm.objects.basic_api.get_by_id("invoices", invoice_id, properties=list(names)).properties


def _qbo_invoice(stack, realm, hubspot_id: str) -> dict | None:
    with stack.db() as session:
        qbo_id = session.scalar(select(RecordLink.qbo_id).filter_by(object_type="invoices", hubspot_id=hubspot_id))
    if qbo_id is None:
        return None
    with stack.qbo.state.lock:
        return dict(stack.qbo.state.companies[realm].table("Invoice")[qbo_id])


def _row(stack, hubspot_id: str) -> RecordLink:
    with stack.db() as session:
        return session.scalar(select(RecordLink).filter_by(object_type="invoices", hubspot_id=hubspot_id))


def _qbo_line(item_id: str) -> dict:
    return {"DetailType": "SalesItemLineDetail", "Amount": 1, "SalesItemLineDetail": {"ItemRef": {"value": item_id}}}


def _items_named(stack, realm, name: str) -> list[str]:
    with stack.qbo.state.lock:
        return [i for i, item in stack.qbo.state.companies[realm].table("Item").items() if item["Name"] == name]


def test_an_open_hubspot_invoice_becomes_a_qbo_invoice_with_its_lines_customer_and_number(stack, both_ways):
    portal, realm, company_id, item = both_ways
    contact = _contact(stack, portal, "buyer@example.com")
    lines = [
        {"name": "Widget", "hs_sku": "w-1", "quantity": "3", "price": "19.99"},  # the item with that SKU
        {"name": "Rush fee", "quantity": "1", "price": "25.50", "description": "same day"},  # no product, no SKU
    ]
    invoice = _draft(stack, [contact["id"]], lines, hs_due_date="2027-01-15T00:00:00Z", hs_comments="Thanks!")
    run_object(stack.runtime, company_id, "contacts")
    run_object(stack.runtime, company_id, "invoices")
    assert _qbo_invoice(stack, realm, invoice) is None  # a draft waits
    assert _row(stack, invoice).state == "excluded"

    _open(stack, invoice)
    run_object(stack.runtime, company_id, "invoices")
    qbo = _qbo_invoice(stack, realm, invoice)
    with stack.db() as session:
        customer = session.scalar(select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=contact["id"]))
    assert qbo["CustomerRef"]["value"] == customer
    (custom,) = _items_named(stack, realm, "Custom line item")  # made on first need
    sales = [line for line in qbo["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert [
        (
            line["SalesItemLineDetail"]["ItemRef"]["value"],
            line["SalesItemLineDetail"]["Qty"],
            line["SalesItemLineDetail"]["UnitPrice"],
            line["Amount"],
            line["SalesItemLineDetail"]["TaxCodeRef"]["value"],
        )
        for line in sales
    ] == [(item["Id"], 3, 19.99, 59.97, "NON"), (custom, 1, 25.5, 25.5, "NON")]
    assert sales[1]["Description"] == "same day"
    assert (qbo["DueDate"], qbo["CustomerMemo"]["value"]) == ("2027-01-15", "Thanks!")
    billed = _hubspot(stack, invoice, "hs_amount_billed", "ledgersync_qbo_number", "ledgersync_qbo_balance_due")
    assert f"{qbo['TotalAmt']:.2f}" == billed["hs_amount_billed"] == "85.47"  # to the cent
    # custom transaction numbers are off: QBO numbered it, and HubSpot shows that number beside its own
    assert billed["ledgersync_qbo_number"] == qbo["DocNumber"] and billed["ledgersync_qbo_balance_due"] == "85.47"
    assert_run_writes_nothing(stack, company_id, "invoices")

    # a second invoice with a line QBO does not know takes the same Custom line item
    other = _draft(stack, [contact["id"]], [{"name": "Extra", "quantity": "2", "price": "5"}])
    _open(stack, other)
    run_object(stack.runtime, company_id, "invoices")
    assert len(_items_named(stack, realm, "Custom line item")) == 1
    assert _qbo_invoice(stack, realm, other)["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"] == custom

    # QBO users may add a note; changing a price in QBO is refused (the invoice is HubSpot's) until undone
    current = _qbo_invoice(stack, realm, invoice)
    noted = stack.qbo.control(
        "POST", f"/companies/{realm}/invoice",
        {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True, "PrivateNote": "called them"},
    )  # fmt: skip
    assert "Invoice" in noted, noted
    noted = noted["Invoice"]
    run_object(stack.runtime, company_id, "invoices")
    assert _row(stack, invoice).state == "syncing"
    noted = _qbo_invoice(stack, realm, invoice)
    assert noted["PrivateNote"] == "called them"  # kept
    repriced = [dict(line) for line in noted["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    original = [dict(line) for line in repriced]
    repriced[0] = {**repriced[0], "Amount": 60,
                   "SalesItemLineDetail": {**repriced[0]["SalesItemLineDetail"], "UnitPrice": 20}}  # fmt: skip
    edited = stack.qbo.control(
        "POST", f"/companies/{realm}/invoice", {**noted, "Line": repriced, "sparse": False}
    )  # fmt: skip
    assert "Invoice" in edited, edited
    edited = edited["Invoice"]
    run_object(stack.runtime, company_id, "invoices")
    row = _row(stack, invoice)
    assert (row.state, row.error_category) == ("failed", "edited in QuickBooks")
    assert "Undo the change in QuickBooks" in row.error_message
    assert _hubspot(stack, invoice, "hs_amount_billed")["hs_amount_billed"] == "85.47"  # HubSpot's stays
    stack.qbo.control("POST", f"/companies/{realm}/invoice", {**edited, "Line": original, "sparse": False})
    run_object(stack.runtime, company_id, "invoices")
    assert _row(stack, invoice).state == "syncing"

    # a payment entered in QBO reaches HubSpot as a HubSpot payment: both balances agree
    stack.hubspot.control("PATCH", f"/accounts/{portal}", {"paymentsProcessor": "hubspot_payments"})
    applied = [{"Amount": 4, "LinkedTxn": [{"TxnId": _qbo_invoice(stack, realm, other)["Id"], "TxnType": "Invoice"}]}]
    stack.qbo.control(
        "POST", f"/companies/{realm}/payment", {"CustomerRef": {"value": customer}, "TotalAmt": 4, "Line": applied}
    )
    run_object(stack.runtime, company_id, "invoices")
    balances = _hubspot(stack, other, "hs_balance_due", "ledgersync_qbo_balance_due")
    assert balances == {**balances, "hs_balance_due": "6.00", "ledgersync_qbo_balance_due": "6"}
    assert_run_writes_nothing(stack, company_id, "invoices")

    # a header change goes as a sparse update; a void in HubSpot voids the QBO invoice
    hubspot_sdk(stack).crm.objects.basic_api.update(
        "invoices", invoice, SimplePublicObjectInput(properties={"hs_due_date": "2027-02-01T00:00:00Z"})
    )
    run_object(stack.runtime, company_id, "invoices")
    assert _qbo_invoice(stack, realm, invoice)["DueDate"] == "2027-02-01"
    hubspot_sdk(stack).crm.objects.basic_api.update(
        "invoices", invoice, SimplePublicObjectInput(properties={"hs_invoice_status": "voided"})
    )
    run_object(stack.runtime, company_id, "invoices")
    voided = _qbo_invoice(stack, realm, invoice)
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    assert_run_writes_nothing(stack, company_id, "invoices")


def test_hubspot_invoices_that_quickbooks_refuses_fail_with_what_to_do(stack, both_ways):
    portal, realm, company_id, item = both_ways
    one, two = _contact(stack, portal, "one@example.com"), _contact(stack, portal, "two@example.com")
    run_object(stack.runtime, company_id, "contacts")
    line = [{"name": "Widget", "hs_sku": "W-1", "quantity": "1", "price": "10"}]
    # several contacts: the billing contact is not known
    shared = _draft(stack, [one["id"]], line)
    _open(stack, shared)
    hubspot_sdk(stack).crm.associations.v4.basic_api.create_default("invoices", shared, "contacts", two["id"])
    # custom transaction numbers on, and the number is taken in QBO
    with stack.qbo.state.lock:
        stack.qbo.state.companies[realm].preferences["SalesFormsPrefs"]["CustomTxnNumbers"] = True
    numbered = _draft(stack, [one["id"]], line)
    _open(stack, numbered)
    taken = _hubspot(stack, numbered, "hs_number")["hs_number"]
    with stack.db() as session:
        customer = session.scalar(select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=one["id"]))
    stack.qbo.control(  # a credit memo shares the invoices' numbers (an invoice of that number would be a match)
        "POST",
        f"/companies/{realm}/creditmemo",
        {"CustomerRef": {"value": customer}, "DocNumber": taken, "Line": [_qbo_line(item["Id"])]},
    )
    # in a currency the QBO company does not keep (multi-currency off)
    euros = _draft(stack, [one["id"]], line, hs_currency="EUR")
    _open(stack, euros)
    # dated in a closed period
    with stack.qbo.state.lock:
        stack.qbo.state.companies[realm].preferences.setdefault("AccountingInfoPrefs", {})["BookCloseDate"] = (
            "2026-06-30"
        )
    closed = _draft(stack, [one["id"]], line, hs_invoice_date="2026-06-01T00:00:00Z")
    _open(stack, closed)
    run_object(stack.runtime, company_id, "invoices")
    outcomes = {i: (_row(stack, i).state, _row(stack, i).error_category) for i in (shared, numbered, closed, euros)}
    assert outcomes == {
        shared: ("failed", "ambiguous billing contact"),
        numbered: ("failed", "duplicate document number"),
        closed: ("failed", "closed accounting period"),
        euros: ("failed", "currency not enabled in QuickBooks"),
    }
    assert "Turn custom transaction numbers off" in _row(stack, numbered).error_message
    assert "Close the books" in _row(stack, closed).error_message


def test_a_non_us_company_cannot_take_invoices_from_hubspot(stack):
    account, users = stack.portal()
    browser = stack.browser()
    stack.install(browser, users["admin"])
    company = stack.qbo.new_company(connect=False, name="Maple Books", country="CA")
    stack.connect_qbo(browser, company["realmId"])
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    for direction in ("two-way", "hubspot-to-qbo"):
        with pytest.raises(ValueError, match="outside the US: QuickBooks needs a tax code on every line"):
            set_up(stack.runtime, company_id, "invoices", direction)
    assert set_up(stack.runtime, company_id, "invoices").direction == "qbo_to_hubspot"


def test_payments_collected_in_hubspot_become_qbo_payments_and_never_come_back(stack, both_ways):
    portal, realm, company_id, item = both_ways
    stack.hubspot.control("PATCH", f"/accounts/{portal}", {"paymentsProcessor": "hubspot_payments"})
    contact = _contact(stack, portal, "payer@example.com")
    run_object(stack.runtime, company_id, "contacts")
    invoice = _draft(stack, [contact["id"]], [{"name": "Widget", "hs_sku": "W-1", "quantity": "5", "price": "20"}])
    _open(stack, invoice)
    run_object(stack.runtime, company_id, "invoices")

    def collect(amount: str, day: str) -> str:  # a payment collected by HubSpot payments on the invoice
        body = {
            "properties": {"hs_initial_amount": amount, "hs_initiated_date": f"{day}T10:00:00Z",
                           "hs_latest_status": "succeeded", "hs_processor_type": "hs_payments",
                           "hs_fees_amount": "0.90"},
            "associations": [{"to": {"id": invoice},
                              "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 542}]}],
        }  # fmt: skip
        return stack.hubspot.control("POST", f"/accounts/{portal}/objects/commerce_payments", body, expect=201)["id"]

    first, second = collect("30.00", "2026-12-02"), collect("20.00", "2026-12-03")
    run_object(stack.runtime, company_id, "invoices")
    qbo = _qbo_invoice(stack, realm, invoice)
    with stack.qbo.state.lock:
        made = [
            p for p in stack.qbo.state.companies[realm].table("Payment").values()
            if any(t["TxnId"] == qbo["Id"] for line in p["Line"] for t in line["LinkedTxn"])
        ]  # fmt: skip
    assert sorted((p["PaymentRefNum"], p["TotalAmt"], p["TxnDate"]) for p in made) == sorted(
        [(first, 30.0, "2026-12-02"), (second, 20.0, "2026-12-03")]
    )
    assert all(p["DepositToAccountRef"]["name"] == "Undeposited Funds" for p in made)
    assert not any("fee" in str(p).lower() for p in made)  # processing fees are not expensed in QBO
    standing = _hubspot(stack, invoice, "hs_balance_due")
    assert (standing["hs_balance_due"], f"{qbo['Balance']:.2f}") == ("50.00", "50.00")
    # the QBO invoice's new balance is in our HubSpot property already (read again after the payments)
    assert _hubspot(stack, invoice, "ledgersync_qbo_balance_due")["ledgersync_qbo_balance_due"] == "50"
    # no loop: the QBO payments we made are not shown in HubSpot as new payments
    page = hubspot_sdk(stack).crm.associations.v4.basic_api.get_page("invoices", invoice, "commerce_payments")
    assert sorted(str(r.to_object_id) for r in page.results) == sorted([first, second])
    assert_run_writes_nothing(stack, company_id, "invoices")

    # a refund in HubSpot is not written to QBO: it fails, saying what to do
    stack.hubspot.control(
        "PATCH",
        f"/accounts/{portal}/objects/commerce_payments/{second}",
        {"properties": {"hs_refunds_amount": "20.00", "hs_latest_status": "refunded"}},
    )
    run_object(stack.runtime, company_id, "invoices")
    row = _row(stack, invoice)
    assert (row.state, row.error_category) == ("failed", "refund needs a QuickBooks refund receipt")
    assert "refund receipt" in row.error_message and second in row.error_message


def test_the_custom_line_item_is_made_once_when_two_workers_need_it_at_once(stack, both_ways):
    """Both look, find none, and create: QBO's unique item names refuse the second, which takes the first's."""
    import threading

    from sync.objects import object_type
    from sync.objects.base import RunContext
    from sync.setup import _quickbooks

    portal, realm, company_id, item = both_ways
    with stack.db() as session:
        company = session.get(QboCompany, company_id)
        options = dict(session.scalar(select(SyncSettings).filter_by(object_type="invoices")).options)
        clients = [_quickbooks(stack.runtime, company) for _ in range(2)]
    both_looked = threading.Barrier(2, timeout=30)
    for client in clients:
        looked = client.query

        def query_then_wait(statement, looked=looked):
            found = looked(statement)
            if "Custom line item" in statement and not found.get("Item"):
                both_looked.wait()  # neither creates before both have seen that there is none
            return found

        client.query = query_then_wait
    made: list[str] = []

    def need_it(client) -> None:
        context = RunContext(hubspot=None, qbo=client, links=None, options=options)
        made.append(object_type("invoices")._custom_item(context))

    threads = [threading.Thread(target=need_it, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(made) == 2 and made[0] == made[1]
    assert _items_named(stack, realm, "Custom line item") == [made[0]]


def test_an_invoice_whose_contact_no_contact_sync_brings_to_quickbooks_fails_saying_so(stack, both_ways):
    portal, realm, company_id, item = both_ways
    with stack.db() as session:  # the contact sync runs QBO → HubSpot only: HubSpot contacts never get customers
        settings = session.scalar(select(SyncSettings).filter_by(qbo_company_id=company_id, object_type="contacts"))
        settings.direction = "qbo_to_hubspot"
        session.commit()
    contact = _contact(stack, portal, "unsynced@example.com")
    invoice = _draft(stack, [contact["id"]], [{"name": "Widget", "hs_sku": "W-1", "quantity": "1", "price": "10"}])
    _open(stack, invoice)
    run_object(stack.runtime, company_id, "contacts")
    run_object(stack.runtime, company_id, "invoices")
    row = _row(stack, invoice)
    assert (row.state, row.error_category) == ("failed", "billing contact not synced")
    assert "the contact sync runs QuickBooks → HubSpot only" in row.error_message
    assert "Sync the invoice's contact to QuickBooks (set up the contact sync HubSpot → QuickBooks" in row.error_message


def test_a_hubspot_discount_becomes_a_qbo_discount_line_so_the_totals_agree_to_the_cent(stack, both_ways):
    portal, realm, company_id, item = both_ways
    contact = _contact(stack, portal, "discounted@example.com")
    run_object(stack.runtime, company_id, "contacts")
    invoice = _draft(stack, [contact["id"]], [{"name": "Widget", "hs_sku": "W-1", "quantity": "3", "price": "33.35"}])
    sdk = hubspot_sdk(stack).crm.objects.basic_api
    discount = sdk.create(
        "discounts",
        ObjectInput(properties={"hs_label": "Loyalty", "hs_type": "PERCENT", "hs_value": "12.5"},
                    associations=_to(invoice, 412)),
    )  # fmt: skip
    _open(stack, invoice)
    run_object(stack.runtime, company_id, "invoices")
    billed = _hubspot(stack, invoice, "hs_amount_billed")["hs_amount_billed"]
    qbo = _qbo_invoice(stack, realm, invoice)
    assert billed == "87.54"  # 100.05 less 12.5 % (12.51)
    assert f"{qbo['TotalAmt']:.2f}" == billed
    assert [e["Amount"] for e in qbo["Line"] if e["DetailType"] == "DiscountLineDetail"] == [12.51]
    assert_run_writes_nothing(stack, company_id, "invoices")

    sdk.update("discounts", discount.id, SimplePublicObjectInput(properties={"hs_type": "FIXED", "hs_value": "15"}))
    sdk.update("invoices", invoice, SimplePublicObjectInput(properties={"hs_comments": "discount changed"}))
    run_object(stack.runtime, company_id, "invoices")
    qbo = _qbo_invoice(stack, realm, invoice)
    assert f"{qbo['TotalAmt']:.2f}" == _hubspot(stack, invoice, "hs_amount_billed")["hs_amount_billed"] == "85.05"
    assert _row(stack, invoice).state == "syncing"
    assert_run_writes_nothing(stack, company_id, "invoices")


def test_a_type_that_names_fields_it_writes_itself_must_say_how_or_is_refused_at_registration():
    from sync.objects import register
    from sync.objects.base import ObjectType
    from sync.objects.invoices import Invoices

    class Careless(Invoices):  # names its own fields, but writes them with the base's hook, which does nothing
        name = "careless_invoices"
        write_own_fields = ObjectType.write_own_fields

    with pytest.raises(TypeError, match="names fields it writes itself .* but no write_own_fields"):
        register(Careless())
