"""Invoices from QuickBooks into HubSpot (the mirror, its lines, its contact, void and delete), end to end
through the SDKs and both emulators, on SQLite and PostgreSQL. Payments, tax and discount lines come later."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sync.runner import run_object
from sync.setup import set_up
from sync.store.models import QboCompany, RecordLink, SyncActivity, SyncSettings
from tests.conftest import BOTH_DATABASES, assert_run_writes_nothing, hubspot_sdk, stack_on_both_databases

stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)


@pytest.fixture
def books(stack, installed):
    """Contacts synced two-way (no filter), a QBO item to sell, the invoice sync set up as recommended."""
    account, _users, _browser, company, _page = installed
    portal, realm = account["portalId"], company["realmId"]
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    item = _service_item(stack, realm, Name="Consulting")
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", filters={"hubspot": None})
    settings = set_up(stack.runtime, company_id, "invoices")
    assert settings.direction == "qbo_to_hubspot"
    assert settings.filters == {"quickbooks": "created_since_set_up", "hubspot": "created_since_set_up"}
    return portal, realm, company_id, item


def _service_item(stack, realm, **fields) -> dict:
    """A Service item booked to the company's "Services" income account."""
    with stack.qbo.state.lock:
        accounts = stack.qbo.state.companies[realm].table("Account").values()
        income = next(a["Id"] for a in accounts if a["Name"] == "Services")
    body = {"Type": "Service", "IncomeAccountRef": {"value": income}, **fields}
    return stack.qbo.control("POST", f"/companies/{realm}/item", body)["Item"]


def _contact(stack, portal, email: str) -> dict:
    body = {"properties": {"email": email, "firstname": email.split("@")[0].title()}}
    return stack.hubspot.control("POST", f"/accounts/{portal}/objects/contacts", body, expect=201)


def _customer(stack, realm, name: str, email: str) -> dict:
    body = {"DisplayName": name, "PrimaryEmailAddr": {"Address": email}}
    return stack.qbo.control("POST", f"/companies/{realm}/customer", body, expect=200)["Customer"]


def _line(item: dict, description: str, qty, price) -> dict:
    return {
        "DetailType": "SalesItemLineDetail",
        "Description": description,
        "Amount": qty * price,
        "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": qty, "UnitPrice": price},
    }


def _invoice(stack, realm, customer: dict, lines: list[dict], **fields) -> dict:
    body = {"CustomerRef": {"value": customer["Id"]}, "Line": lines, **fields}
    return stack.qbo.control("POST", f"/companies/{realm}/invoice", body, expect=200)["Invoice"]


def _qbo_write(stack, realm, invoice_id: str, operation: str | None = None, **fields) -> dict:
    with stack.qbo.state.lock:
        current = dict(stack.qbo.state.companies[realm].table("Invoice")[invoice_id])
    body = {"Id": invoice_id, "SyncToken": current["SyncToken"], **({} if operation else {"sparse": True}), **fields}
    path = f"/companies/{realm}/invoice" + (f"?operation={operation}" if operation else "")
    return stack.qbo.control("POST", path, body, expect=200)


def _mirror(stack, hubspot_id: str) -> dict:
    properties = ["hs_invoice_status", "hs_invoice_billable", "ledgersync_qbo_number", "hs_currency", "hs_comments",
                  "hs_invoice_date", "hs_due_date", "hs_amount_billed"]  # fmt: skip
    return hubspot_sdk(stack).crm.objects.basic_api.get_by_id("invoices", hubspot_id, properties=properties).properties


def _associated(stack, record_id: str, to_type: str) -> list[str]:
    page = hubspot_sdk(stack).crm.associations.v4.basic_api.get_page("invoices", record_id, to_type)
    return sorted((str(r.to_object_id) for r in page.results), key=int)


def _line_items(stack, hubspot_id: str) -> list[tuple]:
    found = []
    for line_id in _associated(stack, hubspot_id, "line_items"):
        props = hubspot_sdk(stack).crm.line_items.basic_api.get_by_id(
            line_id, properties=["name", "description", "quantity", "price"]
        )
        found.append(tuple(props.properties.get(p) for p in ("name", "description", "quantity", "price")))
    return sorted(found)


def _row(stack, **ids) -> RecordLink:
    with stack.db() as session:
        return session.scalar(select(RecordLink).filter_by(object_type="invoices", **ids))


def test_a_qbo_invoice_becomes_a_hubspot_mirror_and_follows_its_edits_void_and_delete(stack, books):
    portal, realm, company_id, item = books
    contact = _contact(stack, portal, "payer@example.com")
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        customer_id = session.scalar(
            select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=contact["id"])
        )
    customer = {"Id": customer_id}
    invoice = _invoice(
        stack, realm, customer, [_line(item, "Design", 2, 150), _line(item, "Review", 1, 80.5)],
        DocNumber="1001", CustomerMemo={"value": "Thank you"}, TxnDate="2026-12-04", DueDate="2027-01-03",
    )  # fmt: skip
    summary = run_object(stack.runtime, company_id, "invoices")
    assert summary.counts.get("create") == 1, summary.counts
    row = _row(stack, qbo_id=invoice["Id"])
    mirror = _mirror(stack, row.hubspot_id)
    assert mirror["hs_invoice_billable"] == "false" and mirror["hs_invoice_status"] == "open"
    assert mirror["ledgersync_qbo_number"] == "1001" and mirror["hs_currency"] == "USD"
    assert mirror["hs_comments"] == "Thank you" and mirror["hs_due_date"].startswith("2027-01-03")
    assert _associated(stack, row.hubspot_id, "contacts") == [contact["id"]]
    assert _line_items(stack, row.hubspot_id) == [
        ("Consulting", "Design", "2", "150"),
        ("Consulting", "Review", "1", "80.5"),
    ]
    assert mirror["hs_amount_billed"] == "380.50"  # HubSpot's own sum of the lines: QBO's TotalAmt
    assert len(row.line_pairs) == 2
    assert_run_writes_nothing(stack, company_id, "invoices")

    # A line changed and one added in QBO: the line items follow.
    with stack.qbo.state.lock:
        lines = [dict(line) for line in stack.qbo.state.companies[realm].table("Invoice")[invoice["Id"]]["Line"]]
    sales = [line for line in lines if line["DetailType"] == "SalesItemLineDetail"]
    sales[0] = {**sales[0], "Amount": 450, "SalesItemLineDetail": {**sales[0]["SalesItemLineDetail"], "Qty": 3}}
    _qbo_write(stack, realm, invoice["Id"], Line=[*sales, _line(item, "Extra", 1, 19.5)])
    run_object(stack.runtime, company_id, "invoices")
    assert _line_items(stack, row.hubspot_id) == [
        ("Consulting", "Design", "3", "150"),
        ("Consulting", "Extra", "1", "19.5"),
        ("Consulting", "Review", "1", "80.5"),
    ]
    assert _mirror(stack, row.hubspot_id)["hs_amount_billed"] == "550.00"
    assert_run_writes_nothing(stack, company_id, "invoices")

    # Voided in QBO: the mirror is voided and its line items stay as they were (QBO zeroes them).
    _qbo_write(stack, realm, invoice["Id"], operation="void")
    run_object(stack.runtime, company_id, "invoices")
    assert _mirror(stack, row.hubspot_id)["hs_invoice_status"] == "voided"
    assert len(_line_items(stack, row.hubspot_id)) == 3
    assert_run_writes_nothing(stack, company_id, "invoices")

    # Another invoice deleted in QBO: its mirror is voided, never deleted, and says why.
    second = _invoice(stack, realm, customer, [_line(item, "Small", 1, 10)], DocNumber="1002")
    run_object(stack.runtime, company_id, "invoices")
    second_row = _row(stack, qbo_id=second["Id"])
    _qbo_write(stack, realm, second["Id"], operation="delete")
    run_object(stack.runtime, company_id, "invoices")
    assert _mirror(stack, second_row.hubspot_id)["hs_invoice_status"] == "voided"
    assert _row(stack, qbo_id=second["Id"]).qbo_deleted_at is not None
    with stack.db() as session:
        said = [a.message for a in session.scalars(select(SyncActivity).filter_by(record_link_id=second_row.id))]
    assert any("voided, never deleted" in message for message in said), said
    assert_run_writes_nothing(stack, company_id, "invoices")


def test_an_invoice_waits_for_its_customers_contact_and_the_set_up_day_filter(stack, books):
    portal, realm, company_id, item = books
    run_object(stack.runtime, company_id, "invoices")
    customer = _customer(stack, realm, "Late Payer", "late@example.com")
    invoice = _invoice(stack, realm, customer, [_line(item, "Work", 1, 40)], DocNumber="2001")
    summary = run_object(stack.runtime, company_id, "invoices")
    waiting = _row(stack, qbo_id=invoice["Id"])
    assert summary.counts.get("wait") == 1 and waiting.state == "waiting"
    assert waiting.waiting_for == [{"object_type": "contacts", "side": "quickbooks", "id": customer["Id"]}]
    released = run_object(stack.runtime, company_id, "contacts")  # the customer becomes a contact …
    assert "invoices" in released.released
    run_object(stack.runtime, company_id, "invoices")  # … and the invoice follows it
    row = _row(stack, qbo_id=invoice["Id"])
    assert row.state == "syncing" and _mirror(stack, row.hubspot_id)["ledgersync_qbo_number"] == "2001"
    with stack.db() as session:
        contact_id = session.scalar(
            select(RecordLink.hubspot_id).filter_by(object_type="contacts", qbo_id=customer["Id"])
        )
    assert _associated(stack, row.hubspot_id, "contacts") == [contact_id]

    # A sync set up the day after this invoice was created leaves it out (the recommended filter) …
    with stack.db() as session:
        settings = session.scalar(select(SyncSettings).filter_by(object_type="invoices"))
        settings.set_up_at = settings.set_up_at + timedelta(days=1)
        session.commit()
    old = _invoice(stack, realm, customer, [_line(item, "Before", 1, 5)], DocNumber="2002")
    run_object(stack.runtime, company_id, "invoices")
    assert _row(stack, qbo_id=old["Id"]).state == "excluded"
    assert "set-up day" in _row(stack, qbo_id=old["Id"]).excluded_reason
    # The filter is editable: without it the invoice left out is planned again, and syncs.
    set_up(stack.runtime, company_id, "invoices", filters={"quickbooks": None})
    run_object(stack.runtime, company_id, "invoices")
    assert _row(stack, qbo_id=old["Id"]).state == "syncing"
    # … and a direction the object does not have is refused by set-up, saying which it has
    with pytest.raises(ValueError, match="direction must be one of"):
        set_up(stack.runtime, company_id, "invoices", "sideways")


def test_a_line_names_the_items_hubspot_product_once_the_products_sync_links_them(stack, books):
    portal, realm, company_id, item = books
    sold = _service_item(stack, realm, Name="Widget", Sku="W-1", UnitPrice=12)
    set_up(stack.runtime, company_id, "products")  # QBO → HubSpot: Widget (with a SKU) becomes a product
    run_object(stack.runtime, company_id, "products")
    with stack.db() as session:
        product_id = session.scalar(select(RecordLink.hubspot_id).filter_by(object_type="products", qbo_id=sold["Id"]))
    assert product_id
    contact = _contact(stack, portal, "buyer@example.com")
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        customer_id = session.scalar(
            select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=contact["id"])
        )
    invoice = _invoice(stack, realm, {"Id": customer_id}, [_line(sold, "Linked", 2, 12), _line(item, "Unlinked", 1, 3)])
    run_object(stack.runtime, company_id, "invoices")
    row = _row(stack, qbo_id=invoice["Id"])
    products = {}
    for line_id in _associated(stack, row.hubspot_id, "line_items"):
        line = hubspot_sdk(stack).crm.line_items.basic_api.get_by_id(
            line_id, properties=["description", "hs_product_id"]
        )
        products[line.properties["description"]] = line.properties.get("hs_product_id")
    assert products == {"Linked": product_id, "Unlinked": None}  # Consulting has no SKU: no product
    assert_run_writes_nothing(stack, company_id, "invoices")


def test_the_primary_company_a_customer_without_contact_and_a_currency_hubspot_lacks(stack, books):
    portal, realm, company_id, item = books
    company = stack.hubspot.control("POST", f"/accounts/{portal}/objects/companies", {"properties": {"name": "Acme"}})
    body = {
        "properties": {"email": "acme@example.com", "firstname": "Ann"},
        "associations": [
            {"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}
        ],
    }
    contact = stack.hubspot.control("POST", f"/accounts/{portal}/objects/contacts", body, expect=201)
    nameless = _customer(stack, realm, "No Email Ltd", "")  # no email: the contacts sync leaves it out
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        customer_id = session.scalar(
            select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=contact["id"])
        )
    billed = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "Work", 1, 10)])
    orphan = _invoice(stack, realm, nameless, [_line(item, "Work", 1, 10)])
    run_object(stack.runtime, company_id, "invoices")
    mirror = _row(stack, qbo_id=billed["Id"]).hubspot_id
    assert _associated(stack, mirror, "companies") == [company["id"]]  # the contact's primary company
    failed = _row(stack, qbo_id=orphan["Id"])
    assert failed.state == "failed" and failed.error_category == "no contact for the customer"
    assert "What to do:" in failed.error_message

    stack.hubspot.control("PATCH", f"/accounts/{portal}", {"currency": "EUR"})  # HubSpot without USD
    euros = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "Work", 1, 10)])
    run_object(stack.runtime, company_id, "invoices")
    refused = _row(stack, qbo_id=euros["Id"])
    assert refused.state == "failed" and refused.error_category == "currency not enabled in HubSpot"
    assert "USD" in refused.error_message and "EUR" in refused.error_message


def test_what_was_paid_in_quickbooks_shows_on_the_mirror_and_follows_payments(stack, books):
    """A payment changes the invoice's balance in QBO without touching the invoice itself: the payment's
    own change re-plans the invoices it is applied to (a QBO-side trigger)."""
    portal, realm, company_id, item = books
    contact = _contact(stack, portal, "paying@example.com")
    run_object(stack.runtime, company_id, "contacts")
    with stack.db() as session:
        customer_id = session.scalar(
            select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=contact["id"])
        )
    invoice = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "Work", 4, 25.25)])  # 101.00
    run_object(stack.runtime, company_id, "invoices")
    mirror = _row(stack, qbo_id=invoice["Id"]).hubspot_id

    def paid() -> tuple[str, str]:
        properties = (
            hubspot_sdk(stack)
            .crm.objects.basic_api.get_by_id(
                "invoices",
                mirror,
                properties=["ledgersync_qbo_amount_paid", "ledgersync_qbo_balance_due", "ledgersync_qbo_link"],
            )
            .properties
        )
        assert properties["ledgersync_qbo_link"].endswith(f"txnId={invoice['Id']}")
        return properties["ledgersync_qbo_amount_paid"], properties["ledgersync_qbo_balance_due"]

    assert paid() == ("0", "101")
    payment = stack.qbo.control(
        "POST",
        f"/companies/{realm}/payment",
        {
            "CustomerRef": {"value": customer_id},
            "TotalAmt": 40.5,
            "Line": [{"Amount": 40.5, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
        expect=200,
    )["Payment"]
    run_object(stack.runtime, company_id, "invoices")
    assert paid() == ("40.5", "60.5")  # a partial payment, to the cent
    assert_run_writes_nothing(stack, company_id, "invoices")
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/payment?operation=void",
        {"Id": payment["Id"], "SyncToken": payment["SyncToken"]},
        expect=200,
    )
    run_object(stack.runtime, company_id, "invoices")
    assert paid() == ("0", "101")  # the voided payment no longer counts


def _payment(stack, realm, customer_id: str, total, applied: list[tuple[str, str, float]], **fields) -> dict:
    """A QBO payment: `applied` lists (TxnType, TxnId, amount)."""
    lines = [{"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": kind}]} for kind, txn_id, amount in applied]
    body = {"CustomerRef": {"value": customer_id}, "TotalAmt": total, "Line": lines, **fields}
    return stack.qbo.control("POST", f"/companies/{realm}/payment", body, expect=200)["Payment"]


def _hubspot_payments(stack, invoice_hubspot_id: str) -> list[tuple]:
    """(amount, date, method, reference, QBO payment id, contact ids) of each payment on a HubSpot invoice."""
    found = []
    for payment_id in _associated(stack, invoice_hubspot_id, "commerce_payments"):
        record = hubspot_sdk(stack).crm.objects.basic_api.get_by_id(
            "commerce_payments",
            payment_id,
            properties=[
                "hs_initial_amount",
                "hs_initiated_date",
                "hs_payment_method_type",
                "hs_reference_number",
                "ledgersync_qbo_payment_id",
                "hs_processor_type",
                "hs_latest_status",
            ],  # fmt: skip
        )
        p = record.properties
        assert (p["hs_processor_type"], p["hs_latest_status"]) == ("quickbooks", "succeeded")
        contacts = hubspot_sdk(stack).crm.associations.v4.basic_api.get_page(
            "commerce_payments", payment_id, "contacts"
        )
        found.append(
            (
                p["hs_initial_amount"],
                p["hs_initiated_date"][:10],
                p["hs_payment_method_type"],
                p.get("hs_reference_number"),
                p["ledgersync_qbo_payment_id"],
                [str(r.to_object_id) for r in contacts.results],
            )
        )
    return sorted(found)


def _standing(stack, hubspot_id: str) -> tuple[str, str, str]:
    p = (
        hubspot_sdk(stack)
        .crm.objects.basic_api.get_by_id(
            "invoices", hubspot_id, properties=["hs_invoice_status", "hs_balance_due", "hs_amount_billed"]
        )
        .properties
    )
    return p["hs_invoice_status"], p["hs_amount_billed"], p["hs_balance_due"]


def _qbo_balance(stack, realm, invoice_id: str) -> str:
    with stack.qbo.state.lock:
        return f"{stack.qbo.state.companies[realm].table('Invoice')[invoice_id]['Balance']:.2f}"


def test_qbo_payments_become_hubspot_payments_and_the_balance_due_always_matches(stack, books):
    """A partial payment, one payment over two invoices, a credit memo applied, a payment changed, voided and
    deleted: the mirror's HubSpot payments follow, and its balance due equals QBO's Balance every time."""
    portal, realm, company_id, item = books
    stack.hubspot.control("PATCH", f"/accounts/{portal}", {"paymentsProcessor": "hubspot_payments"})
    contact = _contact(stack, portal, "payer@example.com")
    run_object(stack.runtime, company_id, "contacts")
    customer_id = _row_of_contact(stack, contact["id"])
    first = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "Work", 4, 25.25)])  # 101.00
    second = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "More work", 2, 60)])  # 120.00
    run_object(stack.runtime, company_id, "invoices")
    mirrors = {i["Id"]: _row(stack, qbo_id=i["Id"]).hubspot_id for i in (first, second)}

    def agree() -> None:
        for qbo_id, hubspot_id in mirrors.items():
            assert _standing(stack, hubspot_id)[2] == _qbo_balance(stack, realm, qbo_id), qbo_id

    assert _hubspot_payments(stack, mirrors[first["Id"]]) == []
    with stack.qbo.state.lock:
        check = next(
            i for i, m in stack.qbo.state.companies[realm].table("PaymentMethod").items() if m["Name"] == "Check"
        )
    partial = _payment(
        stack, realm, customer_id, 40.5, [("Invoice", first["Id"], 40.5)],
        TxnDate="2026-12-01", PaymentMethodRef={"value": check}, PaymentRefNum="1042",
    )  # fmt: skip
    run_object(stack.runtime, company_id, "invoices")
    assert _hubspot_payments(stack, mirrors[first["Id"]]) == [
        ("40.50", "2026-12-01", "check", "1042", partial["Id"], [contact["id"]])
    ]
    assert _standing(stack, mirrors[first["Id"]]) == ("open", "101.00", "60.50")
    agree()
    assert_run_writes_nothing(stack, company_id, "invoices")

    # one payment over both invoices: one HubSpot payment on each, with the amount applied to it
    both = _payment(stack, realm, customer_id, 180.5, [("Invoice", first["Id"], 60.5), ("Invoice", second["Id"], 120)])
    run_object(stack.runtime, company_id, "invoices")
    assert [p[0] for p in _hubspot_payments(stack, mirrors[first["Id"]])] == ["40.50", "60.50"]
    assert [(p[0], p[4]) for p in _hubspot_payments(stack, mirrors[second["Id"]])] == [("120.00", both["Id"])]
    assert _standing(stack, mirrors[first["Id"]])[0] == _standing(stack, mirrors[second["Id"]])[0] == "paid"
    agree()
    assert_run_writes_nothing(stack, company_id, "invoices")

    # voided: the payment goes from both mirrors, which are open again for what is owed
    stack.qbo.control(
        "POST", f"/companies/{realm}/payment?operation=void", {"Id": both["Id"], "SyncToken": both["SyncToken"]}
    )
    run_object(stack.runtime, company_id, "invoices")
    assert [p[4] for p in _hubspot_payments(stack, mirrors[first["Id"]])] == [partial["Id"]]
    assert _hubspot_payments(stack, mirrors[second["Id"]]) == []
    assert _standing(stack, mirrors[second["Id"]]) == ("open", "120.00", "120.00")
    agree()

    # a credit memo applied to the second invoice counts like a payment
    memo = stack.qbo.control(
        "POST",
        f"/companies/{realm}/creditmemo",
        {"CustomerRef": {"value": customer_id}, "Line": [_line(item, "Goodwill", 1, 30)]},
        expect=200,
    )["CreditMemo"]
    credit = _payment(stack, realm, customer_id, 0, [("Invoice", second["Id"], 30), ("CreditMemo", memo["Id"], 30)])
    run_object(stack.runtime, company_id, "invoices")
    assert [(p[0], p[2], p[4]) for p in _hubspot_payments(stack, mirrors[second["Id"]])] == [
        ("30.00", "other", credit["Id"])
    ]
    agree()

    # a payment changed (amount and reference) is updated; a deleted one is removed
    with stack.qbo.state.lock:
        current = dict(stack.qbo.state.companies[realm].table("Payment")[partial["Id"]])
    stack.qbo.control(
        "POST",
        f"/companies/{realm}/payment",
        {**current, "TotalAmt": 50, "PaymentRefNum": "1043",
         "Line": [{"Amount": 50, "LinkedTxn": [{"TxnId": first["Id"], "TxnType": "Invoice"}]}]},
        expect=200,
    )  # fmt: skip
    run_object(stack.runtime, company_id, "invoices")
    assert [(p[0], p[3]) for p in _hubspot_payments(stack, mirrors[first["Id"]])] == [("50.00", "1043")]
    agree()
    with stack.qbo.state.lock:
        token = stack.qbo.state.companies[realm].table("Payment")[credit["Id"]]["SyncToken"]
    stack.qbo.control(
        "POST", f"/companies/{realm}/payment?operation=delete", {"Id": credit["Id"], "SyncToken": token}, expect=200
    )
    run_object(stack.runtime, company_id, "invoices")
    assert _hubspot_payments(stack, mirrors[second["Id"]]) == []
    agree()
    assert_run_writes_nothing(stack, company_id, "invoices")
    # our properties live in a "QuickBooks" property group, on invoices and on payments
    properties = hubspot_sdk(stack).crm.properties
    for hubspot_object, name in (
        ("invoices", "ledgersync_qbo_balance_due"),
        ("commerce_payments", "ledgersync_qbo_payment_id"),
    ):
        assert properties.core_api.get_by_name(hubspot_object, name).group_name == "quickbooks"
        assert properties.groups_api.get_by_name(hubspot_object, "quickbooks").label == "QuickBooks"


def _row_of_contact(stack, contact_id: str) -> str:
    with stack.db() as session:
        return session.scalar(select(RecordLink.qbo_id).filter_by(object_type="contacts", hubspot_id=contact_id))


def _pricing(stack, hubspot_id: str) -> list[tuple[str, str, str, str]]:
    """(object, label, type, value) of each discount and tax on a HubSpot invoice."""
    found = []
    for hubspot_object in ("discounts", "taxes"):
        for record_id in _associated(stack, hubspot_id, hubspot_object):
            p = (
                hubspot_sdk(stack)
                .crm.objects.basic_api.get_by_id(
                    hubspot_object, record_id, properties=["hs_label", "hs_type", "hs_value"]
                )
                .properties
            )
            found.append((hubspot_object, p["hs_label"], p["hs_type"], p["hs_value"]))
    return found


def test_tax_discount_and_bundles_make_hubspots_amount_billed_equal_qbos_total_to_the_cent(stack, books):
    portal, realm, company_id, item = books
    contact = _contact(stack, portal, "taxed@example.com")
    run_object(stack.runtime, company_id, "contacts")
    customer_id = _row_of_contact(stack, contact["id"])
    part = _service_item(stack, realm, Name="Part")
    bundle = stack.qbo.control("POST", f"/companies/{realm}/item", {"Name": "Starter kit", "Type": "Group"})["Item"]
    lines = [
        _line(item, "Hours", 3, 19.99),  # 59.97
        {
            "DetailType": "GroupLineDetail",
            "GroupLineDetail": {
                "GroupItemRef": {"value": bundle["Id"]},
                "Quantity": 1,
                "Line": [_line(part, "Kit part", 2, 12.5), _line(item, "Kit set-up", 1, 7.33)],  # 25.00 + 7.33
            },
        },
        {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}},
    ]
    tax = {"TotalTax": 6.71, "TaxLine": [{"DetailType": "TaxLineDetail", "Amount": 6.71,
                                          "TaxLineDetail": {"TaxPercent": 8, "PercentBased": True}}]}  # fmt: skip
    invoice = _invoice(stack, realm, {"Id": customer_id}, lines, TxnTaxDetail=tax)
    assert invoice["TotalAmt"] == 89.78  # 92.30 − 9.23 + 6.71
    run_object(stack.runtime, company_id, "invoices")
    mirror = _row(stack, qbo_id=invoice["Id"]).hubspot_id
    # the bundle is expanded to its lines; the discount and the tax are shown as such, and the total agrees
    assert _line_items(stack, mirror) == [
        ("Consulting", "Hours", "3", "19.99"),
        ("Consulting", "Kit set-up", "1", "7.33"),
        ("Part", "Kit part", "2", "12.5"),
    ]
    assert _pricing(stack, mirror) == [
        ("discounts", "Discount (10%)", "FIXED", "9.23"),
        ("taxes", "Sales tax (8%)", "FIXED", "6.71"),
    ]
    assert _standing(stack, mirror) == ("open", "89.78", "89.78")
    assert_run_writes_nothing(stack, company_id, "invoices")

    # a different discount and no more tax: replaced and removed, still to the cent
    with stack.qbo.state.lock:
        current = dict(stack.qbo.state.companies[realm].table("Invoice")[invoice["Id"]])
    changed = [e for e in current["Line"] if e["DetailType"] != "SubTotalLineDetail"]
    changed[-1] = {"DetailType": "DiscountLineDetail", "Amount": 12.34, "DiscountLineDetail": {"PercentBased": False}}
    written = _qbo_write(stack, realm, invoice["Id"], Line=changed, TxnTaxDetail={"TotalTax": 0})["Invoice"]
    assert written["TotalAmt"] == 79.96  # 92.30 − 12.34
    run_object(stack.runtime, company_id, "invoices")
    assert _pricing(stack, mirror) == [("discounts", "Discount", "FIXED", "12.34")]
    assert _standing(stack, mirror) == ("open", "79.96", "79.96")
    assert_run_writes_nothing(stack, company_id, "invoices")


def _hubspot_invoice(stack, contact_id: str, price: str) -> str:
    """An invoice made in HubSpot (say by an earlier integration): a contact, one line item, opened."""
    from hubspot.crm.objects import PublicAssociationsForObject, PublicObjectId, SimplePublicObjectInput
    from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput

    def to(record_id: str, type_id: int) -> list:
        spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]
        return [PublicAssociationsForObject(to=PublicObjectId(id=record_id), types=spec)]

    sdk = hubspot_sdk(stack).crm.objects.basic_api
    invoice = sdk.create("invoices", ObjectInput(properties={"hs_currency": "USD"}, associations=to(contact_id, 177)))
    sdk.create("line_items", ObjectInput(properties={"name": "Work", "quantity": "1", "price": price},
                                         associations=to(invoice.id, 410)))  # fmt: skip
    sdk.update("invoices", invoice.id, SimplePublicObjectInput(properties={"hs_invoice_status": "open"}))
    return invoice.id


def test_invoices_already_on_both_sides_are_matched_by_number_contact_and_total(stack, books):
    portal, realm, company_id, item = books
    contact = _contact(stack, portal, "moving@example.com")
    run_object(stack.runtime, company_id, "contacts")
    customer_id = _row_of_contact(stack, contact["id"])
    same = _hubspot_invoice(stack, contact["id"], "100")
    differs = _hubspot_invoice(stack, contact["id"], "50")
    numbers = {
        i: hubspot_sdk(stack)
        .crm.objects.basic_api.get_by_id("invoices", i, properties=["hs_number"])
        .properties["hs_number"]
        for i in (same, differs)
    }
    matched = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "Work", 1, 100)], DocNumber=numbers[same])
    partial = _invoice(stack, realm, {"Id": customer_id}, [_line(item, "Work", 1, 60)], DocNumber=numbers[differs])
    before = len(hubspot_sdk(stack).crm.objects.basic_api.get_page("invoices", limit=100).results)
    run_object(stack.runtime, company_id, "invoices")
    assert len(hubspot_sdk(stack).crm.objects.basic_api.get_page("invoices", limit=100).results) == before  # none new
    assert _row(stack, qbo_id=matched["Id"]).hubspot_id == same  # the same invoice: linked, not duplicated
    assert _mirror(stack, same)["ledgersync_qbo_number"] == numbers[same]
    failed = _row(stack, qbo_id=partial["Id"])
    assert failed.hubspot_id is None and failed.state == "failed"
    with stack.db() as session:
        activity = session.scalars(select(SyncActivity).filter_by(record_link_id=failed.id)).all()
    assert activity[-1].error_category == "ambiguous match"
    assert "its amount billed is 50.00, not 60.00" in activity[-1].message
    assert_run_writes_nothing(stack, company_id, "invoices")


def test_an_invoice_fails_when_no_contact_sync_will_ever_bring_its_customer(stack, books):
    portal, realm, company_id, item = books
    with stack.db() as session:  # the contact sync runs HubSpot → QBO only: QBO customers never become contacts
        settings = session.scalar(select(SyncSettings).filter_by(qbo_company_id=company_id, object_type="contacts"))
        settings.direction = "hubspot_to_qbo"
        session.commit()
    customer = _customer(stack, realm, "Only In Books", "books@example.com")
    invoice = _invoice(stack, realm, customer, [_line(item, "Work", 1, 10)])
    run_object(stack.runtime, company_id, "contacts")
    run_object(stack.runtime, company_id, "invoices")
    failed = _row(stack, qbo_id=invoice["Id"])
    assert failed.state == "failed" and failed.error_category == "no contact for the customer"
    assert "the contact sync runs HubSpot → QuickBooks only" in failed.error_message
    assert "set up the contact sync QuickBooks → HubSpot or two-way" in failed.error_message


def test_a_quickbooks_payment_webhook_runs_the_invoice_sync():
    """QBO webhooks name entities in lower case; a payment's concerns the invoices it is applied to."""
    from sync.objects import objects_for_event

    assert objects_for_event("payment") == ("invoices",)
    assert objects_for_event("invoice") == ("invoices",)
    assert objects_for_event("customer") == ("contacts",)
