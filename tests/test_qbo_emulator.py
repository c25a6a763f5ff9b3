"""QuickBooks Online emulator conformance, driven through python-quickbooks and intuit-oauth.

Item numbers follow NOTES.md §8 of ../shared/reference/quickbooks. Shapes are compared with
Intuit's verbatim samples; faults with errors/fault-examples.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from quickbooks.exceptions import AuthorizationException, ObjectNotFoundException, QuickbooksException
from quickbooks.objects.account import Account
from quickbooks.objects.base import LinkedTxn
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.vendor import Vendor

from tests.conftest import skip_or_fail_in_ci

REFERENCE = Path(
    os.environ.get(
        "QBO_REFERENCE_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "quickbooks"
    )
)


def sample(name: str) -> dict:
    path = REFERENCE / "samples" / "intuit-docs" / name
    if not path.exists():
        skip_or_fail_in_ci(f"{path} is not here (../shared/reference/quickbooks)")
    return json.loads(path.read_text())


def fault_of(error: QuickbooksException) -> tuple[int, str]:
    return error.error_code, error.detail or ""


def raw(qbo_emulator, company, method, path, **kwargs) -> requests.Response:
    headers = {
        "Authorization": f"Bearer {company['accessToken']}",
        "Accept": "application/json",
        **kwargs.pop("headers", {}),
    }
    return requests.request(
        method, f"{qbo_emulator.url}/v3/company/{company['realmId']}{path}", headers=headers, timeout=10, **kwargs
    )


def new_customer(qb, name="Acme Ltd", **fields) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    for key, value in fields.items():
        setattr(customer, key, value)
    return customer.save(qb=qb)


def income_account(qb) -> Account:
    return Account.filter(AccountType="Income", qb=qb)[0]


def new_item(qb, name="Consulting", sku="SKU-1", price=150) -> Item:
    item = Item()
    item.Name, item.Type, item.Sku, item.UnitPrice = name, "Service", sku, price
    item.IncomeAccountRef = income_account(qb).to_ref()
    return item.save(qb=qb)


def new_invoice(qb, customer, item, qty=2, price=150, **fields) -> Invoice:
    invoice = Invoice()
    line = SalesItemLine()
    line.Amount = qty * price
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.Qty, line.SalesItemLineDetail.UnitPrice = qty, price
    for key, value in fields.items():
        setattr(invoice, key, value)
    invoice.Line = [line]
    invoice.CustomerRef = customer.to_ref()
    return invoice.save(qb=qb)


def pay(qb, customer, total, *applications) -> Payment:
    payment = Payment()
    payment.TotalAmt, payment.CustomerRef = total, customer.to_ref()
    payment.Line = []
    for invoice, amount in applications:
        line = PaymentLine()
        line.Amount = amount
        link = LinkedTxn()
        link.TxnId, link.TxnType = invoice.Id, "Invoice"
        line.LinkedTxn = [link]
        payment.Line.append(line)
    return payment.save(qb=qb)


def keys_and_types(value) -> dict:
    return {k: type(v).__name__ for k, v in value.items()} if isinstance(value, dict) else {}


# --- writes: ids, SyncToken, MetaData, shapes ------------------------------------------------------------------


def test_customer_create_matches_intuits_sample_shape(qbo_emulator, qbo_company, qbo):
    customer = new_customer(qbo, "King's Groceries", GivenName="James", FamilyName="King", CompanyName="King Groceries")
    body = raw(qbo_emulator, qbo_company, "GET", f"/customer/{customer.Id}").json()
    ours, theirs = body["Customer"], sample("customer.create.response.json")["Customer"]
    for key in (
        "domain",
        "DisplayName",
        "FullyQualifiedName",
        "Active",
        "Balance",
        "BalanceWithJobs",
        "SyncToken",
        "Id",
        "MetaData",
        "CurrencyRef",
        "Job",
        "BillWithParent",
        "Taxable",
        "sparse",
        "PrintOnCheckName",
    ):
        assert key in ours, key
        assert type(ours[key]) is type(theirs[key]), key
    assert ours["SyncToken"] == "0" and isinstance(ours["Id"], str)
    assert ours["MetaData"]["CreateTime"][-6] in "+-" and ours["MetaData"]["CreateTime"][-3] == ":"
    assert body["time"][-6] in "+-" and "." in body["time"]


def test_python_quickbooks_bodies_with_empty_strings_and_int_synctoken_are_accepted(qbo):
    # The SDK sends "" for absent strings, SyncToken 0 (an int), refs {"name":"","type":"","value":..}.
    customer = new_customer(qbo, "Body Test", Title="", Notes="")
    fetched = Customer.get(customer.Id, qb=qbo)
    assert fetched.DisplayName == "Body Test" and fetched.SyncToken == "0"
    assert not getattr(fetched, "Title", None)


def test_sparse_and_full_update_and_stale_synctoken(qbo_emulator, qbo_company, qbo):
    customer = new_customer(qbo, "Sparse Co", Notes="keep me", GivenName="Ann")
    response = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/customer",
        json={"Id": customer.Id, "SyncToken": "0", "sparse": True, "FamilyName": "Lee"},
    )
    updated = response.json()["Customer"]
    assert updated["SyncToken"] == "1" and updated["Notes"] == "keep me" and updated["FamilyName"] == "Lee"
    full = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/customer",
        json={"Id": customer.Id, "SyncToken": "1", "DisplayName": "Sparse Co"},
    ).json()["Customer"]
    assert full["SyncToken"] == "2" and "Notes" not in full  # a full update nulls what it leaves out
    stale = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/customer",
        json={"Id": customer.Id, "SyncToken": "1", "sparse": True, "Notes": "late"},
    )
    assert stale.status_code == 400 and stale.json()["Fault"]["Error"][0]["code"] == "5010"
    customer.SyncToken = "0"  # python-quickbooks with a stale object
    with pytest.raises(QuickbooksException) as raised:
        customer.save(qb=qbo)
    assert raised.value.error_code == 5010


def test_display_names_are_unique_across_customers_vendors_and_employees(qbo_emulator, qbo_company, qbo):
    new_customer(qbo, "Shared Name")
    vendor = Vendor()
    vendor.DisplayName = "shared name"
    with pytest.raises(QuickbooksException) as raised:
        vendor.save(qb=qbo)
    code, detail = fault_of(raised.value)
    assert code == 6240 and "Another customer, vendor or employee" in detail
    employee = raw(qbo_emulator, qbo_company, "POST", "/employee", json={"DisplayName": "Shared Name"})
    assert employee.json()["Fault"]["Error"][0]["code"] == "6240"
    with pytest.raises(QuickbooksException) as colon:
        new_customer(qbo, "Acme: West")
    assert colon.value.error_code == 6000
    nameless = raw(qbo_emulator, qbo_company, "POST", "/customer", json={"Notes": "x"})
    assert nameless.json()["Fault"]["Error"][0]["code"] == "6080"


def test_item_names_unique_sku_and_required_accounts(qbo_emulator, qbo_company, qbo):
    item = new_item(qbo)
    assert Item.get(item.Id, qb=qbo).Sku == "SKU-1"
    with pytest.raises(QuickbooksException) as duplicate:
        new_item(qbo, name="CONSULTING", sku="SKU-2")
    assert duplicate.value.error_code == 6240
    missing = raw(qbo_emulator, qbo_company, "POST", "/item", json={"Name": "No Account", "Type": "Service"})
    assert missing.json()["Fault"]["Error"][0]["code"] == "2020"
    bad_ref = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/item",
        json={"Name": "Bad Ref", "Type": "Service", "IncomeAccountRef": {"value": "999"}},
    )
    assert bad_ref.json()["Fault"]["Error"][0]["code"] == "2500"
    assert [i.Sku for i in Item.choose(["SKU-1", "SKU-9"], field="Sku", qb=qbo)] == ["SKU-1"]


def test_inactive_names_are_hidden_and_unusable(qbo_emulator, qbo_company, qbo):
    customer = new_customer(qbo, "Gone Co")
    item = new_item(qbo)
    raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/customer",
        json={"Id": customer.Id, "SyncToken": "0", "sparse": True, "Active": False},
    ).raise_for_status()
    assert [c.DisplayName for c in Customer.all(qb=qbo)] == []
    assert [c.DisplayName for c in Customer.where("Active IN (true, false)", qb=qbo)] == ["Gone Co"]
    with pytest.raises(ObjectNotFoundException):
        new_invoice(qbo, customer, item)


# --- invoices, numbering, tax, closed books ---------------------------------------------------------------------


def test_invoice_totals_lines_numbers_dates_and_custom_fields(qbo_emulator, qbo_company, qbo):
    customer = new_customer(qbo, "Bill Me", BillAddr=None)
    item = new_item(qbo)
    created = new_invoice(qbo, customer, item, CustomField=[])
    body = raw(qbo_emulator, qbo_company, "GET", f"/invoice/{created.Id}").json()["Invoice"]
    assert body["TotalAmt"] == 300.0 and body["Balance"] == 300.0 and body["DocNumber"] == "1001"
    assert [line["DetailType"] for line in body["Line"]] == ["SalesItemLineDetail", "SubTotalLineDetail"]
    assert body["Line"][0]["Id"] == "1" and body["Line"][0]["LineNum"] == 1
    assert body["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert body["Line"][1]["Amount"] == 300.0 and "Id" not in body["Line"][1]
    assert body["TxnTaxDetail"] == {"TotalTax": 0} and body["CustomerRef"]["name"] == "Bill Me"
    from datetime import date, timedelta

    assert date.fromisoformat(body["DueDate"]) - date.fromisoformat(body["TxnDate"]) == timedelta(days=30)
    assert [f["Name"] for f in body["CustomField"]] == ["Crew #", "HubSpot deal"]
    theirs = sample("invoice.create.response.json")["Invoice"]
    for key in (
        "TxnDate",
        "TotalAmt",
        "Line",
        "DueDate",
        "DocNumber",
        "Balance",
        "CustomerRef",
        "SyncToken",
        "LinkedTxn",
        "TxnTaxDetail",
        "CustomField",
        "MetaData",
        "Id",
        "domain",
        "sparse",
        "Deposit",
    ):
        assert type(body[key]) is type(theirs[key]), key
    second = new_invoice(qbo, customer, item)
    assert Invoice.get(second.Id, qb=qbo).DocNumber == "1002"


def test_custom_field_values_are_kept(qbo_emulator, qbo_company, qbo):
    customer, item = new_customer(qbo, "CF"), new_item(qbo)
    response = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        json={
            "CustomerRef": {"value": customer.Id},
            "CustomField": [{"DefinitionId": "2", "StringValue": "deal 42", "Type": "StringType"}],
            "Line": [
                {
                    "Amount": 10,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.Id}},
                }
            ],
        },
    )
    fields = {f["Name"]: f.get("StringValue") for f in response.json()["Invoice"]["CustomField"]}
    assert fields == {"Crew #": None, "HubSpot deal": "deal 42"}


def test_custom_transaction_numbers_and_duplicates(qbo_emulator):
    company = qbo_emulator.new_company(customTxnNumbers=True)
    qb = qbo_emulator.client(company)
    customer, item = new_customer(qb, "Numbered"), new_item(qb)
    unnumbered = new_invoice(qb, customer, item)
    assert Invoice.get(unnumbered.Id, qb=qb).DocNumber is None  # none sent: none given
    new_invoice(qb, customer, item, DocNumber="HS-1001")
    with pytest.raises(QuickbooksException) as duplicate:
        new_invoice(qb, customer, item, DocNumber="HS-1001")
    code, detail = fault_of(duplicate.value)
    assert code == 6140 and "DocNumber=HS-1001 is assigned to TxnType=Invoice" in detail
    allowed = raw(
        qbo_emulator,
        company,
        "POST",
        "/invoice",
        params={"include": "allowduplicatedocnum"},
        json={
            "CustomerRef": {"value": customer.Id},
            "DocNumber": "HS-1001",
            "Line": [
                {
                    "Amount": 5,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.Id}},
                }
            ],
        },
    )
    assert allowed.status_code == 200


@pytest.mark.parametrize(("country", "text"), [("CA", "GST/HST rate"), ("GB", "VAT rate")])
def test_non_us_lines_need_a_tax_code(qbo_emulator, country, text):
    company = qbo_emulator.new_company(country=country)
    qb = qbo_emulator.client(company)
    customer, item = new_customer(qb, "Abroad"), new_item(qb)
    response = raw(
        qbo_emulator,
        company,
        "POST",
        "/invoice",
        json={
            "CustomerRef": {"value": customer.Id},
            "Line": [
                {
                    "Amount": 10,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.Id}},
                }
            ],
        },
    )
    assert response.status_code == 400
    error = response.json()["Fault"]["Error"][0]
    assert (
        error["code"] == "6000"
        and error["Message"].startswith("A business validation error")
        and text in error["Detail"]
    )
    tax_code = raw(
        qbo_emulator,
        company,
        "POST",
        "/query",
        data="select * from TaxCode",
        headers={"Content-Type": "application/text"},
    ).json()["QueryResponse"]["TaxCode"][0]
    ok = raw(
        qbo_emulator,
        company,
        "POST",
        "/invoice",
        json={
            "CustomerRef": {"value": customer.Id},
            "Line": [
                {
                    "Amount": 10,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.Id}, "TaxCodeRef": {"value": tax_code["Id"]}},
                }
            ],
        },
    )
    assert ok.status_code == 200


def test_closed_books_refuse_earlier_transactions(qbo_emulator):
    company = qbo_emulator.new_company(bookCloseDate="2025-12-31")
    qb = qbo_emulator.client(company)
    customer, item = new_customer(qb, "Closed"), new_item(qb)
    with pytest.raises(QuickbooksException) as closed:
        new_invoice(qb, customer, item, TxnDate="2025-12-31")
    assert closed.value.error_code == 6210 and "account period has closed" in closed.value.detail
    assert new_invoice(qb, customer, item, TxnDate="2026-01-01").Id


def test_required_fields_and_amount_check(qbo_emulator, qbo_company, qbo):
    item = new_item(qbo)
    no_customer = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        json={
            "Line": [
                {
                    "Amount": 10,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.Id}},
                }
            ]
        },
    )
    assert no_customer.json()["Fault"]["Error"][0]["code"] == "2020"
    customer = new_customer(qbo, "Math")
    wrong = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        json={
            "CustomerRef": {"value": customer.Id},
            "Line": [
                {
                    "Amount": 99,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.Id}, "Qty": 2, "UnitPrice": 10},
                }
            ],
        },
    )
    assert wrong.json()["Fault"]["Error"][0]["code"] == "6070"
    no_lines = raw(qbo_emulator, qbo_company, "POST", "/invoice", json={"CustomerRef": {"value": customer.Id}})
    assert no_lines.json()["Fault"]["Error"][0]["code"] == "2020"


# --- payments, delete, void ---------------------------------------------------------------------


def test_partial_and_multi_invoice_payments_with_unapplied_amounts(qbo_emulator, qbo_company, qbo):
    customer, item = new_customer(qbo, "Payer"), new_item(qbo)
    first, second = new_invoice(qbo, customer, item), new_invoice(qbo, customer, item, qty=1)
    payment = pay(qbo, customer, 400, (first, 250), (second, 100))
    stored = raw(qbo_emulator, qbo_company, "GET", f"/payment/{payment.Id}").json()["Payment"]
    assert stored["UnappliedAmt"] == 50.0 and stored["TotalAmt"] == 400.0
    first_now, second_now = Invoice.get(first.Id, qb=qbo), Invoice.get(second.Id, qb=qbo)
    assert (first_now.Balance, second_now.Balance) == (50.0, 50.0)
    assert [(t.TxnId, t.TxnType) for t in first_now.LinkedTxn] == [(payment.Id, "Payment")]
    assert Customer.get(customer.Id, qb=qbo).Balance == 100.0
    with pytest.raises(QuickbooksException) as over:
        pay(qbo, customer, 500, (first, 500))
    assert over.value.error_code == 6000
    unapplied = pay(qbo, customer, 20)
    assert raw(qbo_emulator, qbo_company, "GET", f"/payment/{unapplied.Id}").json()["Payment"]["UnappliedAmt"] == 20.0


def test_delete_and_void_transactions(qbo_emulator, qbo_company, qbo):
    customer, item = new_customer(qbo, "Voider"), new_item(qbo)
    invoice = new_invoice(qbo, customer, item)
    payment = pay(qbo, customer, 100, (invoice, 100))
    paid = Invoice.get(invoice.Id, qb=qbo)
    assert paid.SyncToken == "1"  # a payment applied updates the invoice (assumptions.PAYMENT_UPDATES_DOCUMENT)
    assert paid.MetaData.LastUpdatedTime >= invoice.MetaData.LastUpdatedTime
    refused = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        params={"operation": "delete"},
        json={"Id": invoice.Id, "SyncToken": "1"},
    )
    assert refused.json()["Fault"]["Error"][0]["code"] == "6000"  # linked: unlink first
    voided = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/payment",
        params={"operation": "update", "include": "void"},
        json={"Id": payment.Id, "SyncToken": "0", "sparse": True},
    ).json()["Payment"]
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided") and voided["SyncToken"] == "1"
    assert Invoice.get(invoice.Id, qb=qbo).Balance == 300.0
    deleted_payment = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/payment",
        params={"operation": "delete"},
        json={"Id": payment.Id, "SyncToken": "1"},
    ).json()
    assert deleted_payment["Payment"] == {"status": "Deleted", "domain": "QBO", "Id": payment.Id}
    current = Invoice.get(invoice.Id, qb=qbo)
    void_invoice = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        params={"operation": "void"},
        json={"Id": invoice.Id, "SyncToken": current.SyncToken},
    ).json()["Invoice"]
    assert void_invoice["TotalAmt"] == 0 and void_invoice["Balance"] == 0 and void_invoice["PrivateNote"] == "Voided"
    gone = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        params={"operation": "delete"},
        json={"Id": invoice.Id, "SyncToken": void_invoice["SyncToken"]},
    ).json()
    assert gone["Invoice"]["status"] == "Deleted"
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(invoice.Id, qb=qbo)


def test_sales_receipt_and_credit_memo(qbo_emulator, qbo_company, qbo):
    customer, item = new_customer(qbo, "Receipts"), new_item(qbo)
    line = [
        {
            "Amount": 150,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item.Id}, "Qty": 1, "UnitPrice": 150},
        }
    ]
    receipt = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/salesreceipt",
        json={"CustomerRef": {"value": customer.Id}, "DocNumber": "", "Line": line},
    ).json()["SalesReceipt"]
    assert receipt["Balance"] == 0 and receipt["TotalAmt"] == 150.0 and receipt["DocNumber"]
    assert receipt["DepositToAccountRef"]["name"] == "Undeposited Funds"
    memo = raw(
        qbo_emulator, qbo_company, "POST", "/creditmemo", json={"CustomerRef": {"value": customer.Id}, "Line": line}
    ).json()["CreditMemo"]
    assert memo["RemainingCredit"] == 150.0


def test_requestid_answers_a_repeat_with_the_first_response(qbo_emulator, qbo_company, qbo):
    customer = Customer()
    customer.DisplayName = "Once Only"
    first = customer.save(qb=qbo, request_id="req-1")
    again = Customer()
    again.DisplayName = "Once Only"
    second = again.save(qb=qbo, request_id="req-1")  # a retry after a lost answer: no 6240, no duplicate
    assert second.Id == first.Id
    assert Customer.count(qb=qbo) == 1


# --- query, CDC, batch ---------------------------------------------------------------------


def query(qbo_emulator, company, text: str) -> requests.Response:
    return raw(qbo_emulator, company, "POST", "/query", data=text, headers={"Content-Type": "application/text"})


def test_query_forms_python_quickbooks_sends(qbo_emulator, qbo_company, qbo):
    for name in ("O'Brien's Bar", "Alpha", "Beta"):
        new_customer(qbo, name)
    assert [c.DisplayName for c in Customer.filter(DisplayName="O'Brien's Bar", Active=True, qb=qbo)] == [
        "O'Brien's Bar"
    ]
    ordered = Customer.where("Active = true", order_by="DisplayName DESC", qb=qbo)
    assert [c.DisplayName for c in ordered] == ["O'Brien's Bar", "Beta", "Alpha"]
    body = query(qbo_emulator, qbo_company, "SELECT * FROM Customer ORDERBY DisplayName STARTPOSITION 2 MAXRESULTS 1")
    response = body.json()["QueryResponse"]
    assert [c["DisplayName"] for c in response["Customer"]] == ["Beta"]
    assert response["startPosition"] == 2 and response["maxResults"] == 1
    assert Customer.count(qb=qbo) == 3
    new_item(qbo)
    assert len(Item.all(qb=qbo)) == 1  # SELECT *, Sku FROM Item MAXRESULTS 100
    assert (
        query(qbo_emulator, qbo_company, "select * from Customer where DisplayName = 'Nobody'").json()["QueryResponse"]
        == {}
    )
    like = query(qbo_emulator, qbo_company, "select Id, DisplayName from Customer where DisplayName like 'B%'").json()
    assert [c["DisplayName"] for c in like["QueryResponse"]["Customer"]] == ["Beta"]
    via_get = raw(qbo_emulator, qbo_company, "GET", "/query", params={"query": "select count(*) from Customer"})
    assert via_get.json()["QueryResponse"] == {"totalCount": 3}
    since = query(
        qbo_emulator,
        qbo_company,
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2000-01-01T00:00:00-08:00' "
        "ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000",
    )
    assert len(since.json()["QueryResponse"]["Customer"]) == 3


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SELECT FROM Customer", "4000"),
        ("select * from Customer where DisplayName = 'a' or Id = '1'", "4000"),
        ("select * from Customer maxresults 1001", "4001"),
        ("select * from Spaceship", "4001"),
        ("select * from Customer where Id > '3'", "4001"),
    ],
)
def test_query_errors(qbo_emulator, qbo_company, text, code):
    response = query(qbo_emulator, qbo_company, text)
    assert response.status_code == 400 and response.json()["Fault"]["Error"][0]["code"] == code


def test_change_data_capture(qbo_emulator, qbo_company, qbo):
    customer, item = new_customer(qbo, "Changed"), new_item(qbo)
    invoice = new_invoice(qbo, customer, item)
    keep = new_invoice(qbo, customer, item)
    raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/invoice",
        params={"operation": "delete"},
        json={"Id": invoice.Id, "SyncToken": "0"},
    ).raise_for_status()
    response = raw(
        qbo_emulator, qbo_company, "GET", "/cdc", params={"entities": "Customer,Invoice", "changedSince": _days_ago(1)}
    ).json()
    groups = response["CDCResponse"][0]["QueryResponse"]
    invoices = next(g["Invoice"] for g in groups if "Invoice" in g)
    assert [i["Id"] for i in invoices] == [keep.Id, invoice.Id]
    assert invoices[-1]["status"] == "Deleted" and "TotalAmt" not in invoices[-1]  # deleted after live
    too_old = raw(
        qbo_emulator, qbo_company, "GET", "/cdc", params={"entities": "Customer", "changedSince": _days_ago(31)}
    )
    assert too_old.status_code == 400 and "older than fixed days" in too_old.json()["Fault"]["Error"][0]["Detail"]
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 600})  # under the token's hour
    empty = raw(
        qbo_emulator,
        qbo_company,
        "GET",
        "/cdc",
        params={"entities": "Customer", "changedSince": _days_ago(0, minutes=5, clock=qbo_emulator)},
    )
    assert empty.json()["CDCResponse"] == [{"QueryResponse": [{}]}]
    from quickbooks.cdc import change_data_capture

    via_sdk = change_data_capture([Customer], _days_ago(2)[:19], qb=qbo)
    assert [c.DisplayName for c in via_sdk.Customer] == ["Changed"]


def _days_ago(days: int, minutes: int = 0, clock=None) -> str:
    from datetime import UTC, datetime, timedelta

    now = datetime.fromtimestamp(clock.control("GET", "/clock")["nowMs"] / 1000, UTC) if clock else datetime.now(UTC)
    return (now - timedelta(days=days, minutes=minutes)).isoformat(timespec="seconds")


def test_cdc_caps_at_1000_objects(qbo_emulator, qbo_company, qbo):
    qbo_emulator.control(
        "POST",
        f"/companies/{qbo_company['realmId']}/seed",
        {"entity": "Customer", "count": 1005, "record": {"DisplayName": "C{n}"}},
        expect=201,
    )
    response = raw(
        qbo_emulator, qbo_company, "GET", "/cdc", params={"entities": "Customer", "changedSince": _days_ago(1)}
    )
    assert len(response.json()["CDCResponse"][0]["QueryResponse"][0]["Customer"]) == 1000


def test_batch_with_per_item_faults(qbo_emulator, qbo_company, qbo):
    new_customer(qbo, "Taken")
    customers = []
    for name in ("Batch A", "Batch B", "Taken"):
        customer = Customer()
        customer.DisplayName = name
        customers.append(customer)
    from quickbooks.batch import batch_create

    result = batch_create(customers, qb=qbo)
    assert sorted(c.DisplayName for c in result.successes) == ["Batch A", "Batch B"]
    assert len(result.faults) == 1 and result.faults[0].Error[0].code == "6240"
    mixed = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/batch",
        json={
            "BatchItemRequest": [
                {"bId": "q", "Query": "select * from Customer where DisplayName = 'Taken'"},
                {"bId": "d", "operation": "delete", "Invoice": {"Id": "999", "SyncToken": "0"}},
            ]
        },
    )
    assert mixed.status_code == 200
    answers = {a["bId"]: a for a in mixed.json()["BatchItemResponse"]}
    assert answers["q"]["QueryResponse"]["Customer"][0]["DisplayName"] == "Taken"
    assert answers["d"]["Fault"]["Error"][0]["code"] == "610"
    too_many = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/batch",
        json={"BatchItemRequest": [{"bId": str(n), "Query": "select * from Customer"} for n in range(31)]},
    )
    assert too_many.status_code == 400


def test_preferences_companyinfo_and_read_only_entities(qbo_emulator, qbo_company, qbo):
    from quickbooks.objects.company_info import CompanyInfo
    from quickbooks.objects.preferences import Preferences

    info = CompanyInfo.get(qbo_company["realmId"], qb=qbo)
    assert info.Country == "US"
    preferences = Preferences.get(qb=qbo)
    assert preferences.SalesFormsPrefs.CustomTxnNumbers is False
    updated = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/preferences",
        json={
            "Id": "1",
            "SyncToken": preferences.SyncToken,
            "sparse": True,
            "AccountingInfoPrefs": {"BookCloseDate": "2024-12-31"},
        },
    ).json()["Preferences"]
    assert updated["AccountingInfoPrefs"]["BookCloseDate"] == "2024-12-31"
    assert updated["AccountingInfoPrefs"]["FirstMonthOfFiscalYear"] == "January"
    refused = raw(qbo_emulator, qbo_company, "POST", "/taxcode", json={"Name": "X"})
    assert refused.json()["Fault"]["Error"][0]["code"] == "500"


# --- auth and limits ---------------------------------------------------------------------


def test_missing_or_expired_token_is_401(qbo_emulator, qbo_company, qbo):
    response = requests.get(f"{qbo_emulator.url}/v3/company/{qbo_company['realmId']}/customer/1", timeout=5)
    assert response.status_code == 401 and response.json()["fault"]["error"][0]["code"] == "3200"
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 3601})
    with pytest.raises(AuthorizationException):
        Customer.all(qb=qbo)


def test_a_token_cannot_reach_another_realm(qbo_emulator, qbo_company):
    other = qbo_emulator.new_company()
    assert raw(qbo_emulator, qbo_company, "GET", "/preferences").status_code == 200  # its own realm answers
    foreign = requests.get(
        f"{qbo_emulator.url}/v3/company/{other['realmId']}/customer/1",
        timeout=5,
        headers={"Authorization": f"Bearer {qbo_company['accessToken']}"},
    )
    assert foreign.status_code == 403


def test_throttle_at_10_per_second_as_xml(qbo_emulator, qbo_company, qbo):
    qbo_emulator.control("POST", "/config", {"rateLimits": True})
    qbo_emulator.control("POST", "/clock", {"speed": 0.000001})
    statuses = [
        raw(qbo_emulator, qbo_company, "GET", "/companyinfo/" + qbo_company["realmId"]).status_code for _ in range(11)
    ]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    limited = raw(qbo_emulator, qbo_company, "GET", "/preferences")
    assert limited.headers["Content-Type"].startswith("application/xml") and "Retry-After" not in limited.headers
    assert "ThrottleExceeded" in limited.text and 'code="3001"' in limited.text
    with pytest.raises(QuickbooksException) as raised:
        Customer.all(qb=qbo)
    assert raised.value.error_code == 10000  # what python-quickbooks makes of the XML
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 61})
    assert raw(qbo_emulator, qbo_company, "GET", "/preferences").status_code == 200


def test_500_per_minute_and_40_batches_per_minute(qbo_emulator, qbo_company):
    qbo_emulator.control("POST", "/config", {"rateLimits": True})
    qbo_emulator.control("POST", "/clock", {"speed": 0.000001})
    for _second in range(50):
        for _ in range(10):
            assert raw(qbo_emulator, qbo_company, "GET", "/preferences").status_code == 200
        qbo_emulator.control("POST", "/clock", {"advanceSeconds": 1})
    assert raw(qbo_emulator, qbo_company, "GET", "/preferences").status_code == 429  # 500 in the last minute
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 61})
    batch = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Customer"}]}
    codes = []
    for _ in range(41):
        codes.append(raw(qbo_emulator, qbo_company, "POST", "/batch", json=batch).status_code)
        qbo_emulator.control("POST", "/clock", {"advanceSeconds": 1})
    assert codes[:40] == [200] * 40 and codes[40] == 429
    qbo_emulator.control("POST", "/config", {"rateLimits": False})
    assert all(raw(qbo_emulator, qbo_company, "GET", "/preferences").status_code == 200 for _ in range(15))


def test_request_log_and_faults(qbo_emulator, qbo_company, qbo):
    qbo_emulator.control("DELETE", "/requests")
    new_customer(qbo, "Logged")
    Customer.all(qb=qbo)
    log = qbo_emulator.control("GET", "/requests")
    assert log["byEndpoint"]["POST /v3/company/<realm_id>/<entity> (customer)"] == 1
    assert log["byEndpoint"]["POST /v3/company/<realm_id>/query"] == 1
    qbo_emulator.control(
        "POST", "/faults", {"path": f"/v3/company/{qbo_company['realmId']}/query", "status": 503}, expect=201
    )
    with pytest.raises(QuickbooksException):
        Customer.all(qb=qbo)
    assert len(Customer.all(qb=qbo)) == 1


@pytest.mark.parametrize(
    ("entity", "path", "sample_file"),
    [
        ("Item", "item", "item.create-service.response.json"),
        ("Account", "account", "account.read.response.json"),
        ("Preferences", None, "preferences.sample-object.json"),
        ("CompanyInfo", None, "companyinfo.sample-object.json"),
        ("Payment", "payment", "payment.sample-object.json"),
    ],
)
def test_shapes_match_intuits_samples(qbo_emulator, qbo_company, qbo, entity, path, sample_file):
    theirs = sample(sample_file)
    theirs = theirs.get(entity, theirs)
    if entity == "Item":
        ours = raw(qbo_emulator, qbo_company, "GET", f"/item/{new_item(qbo).Id}").json()["Item"]
    elif entity == "Account":
        ours = raw(qbo_emulator, qbo_company, "GET", f"/account/{income_account(qbo).Id}").json()["Account"]
    elif entity == "Preferences":
        ours = raw(qbo_emulator, qbo_company, "GET", "/preferences").json()["Preferences"]
    elif entity == "CompanyInfo":
        ours = raw(qbo_emulator, qbo_company, "GET", f"/companyinfo/{qbo_company['realmId']}").json()["CompanyInfo"]
    else:
        customer, item = new_customer(qbo, "Shape"), new_item(qbo)
        invoice = new_invoice(qbo, customer, item)
        ours = raw(qbo_emulator, qbo_company, "GET", f"/payment/{pay(qbo, customer, 65, (invoice, 55)).Id}").json()[
            "Payment"
        ]
    common = set(ours) & set(theirs)
    assert {"Id", "SyncToken", "MetaData"} <= common
    numbers = (int, float)
    mismatched = {
        k
        for k in common
        if not (type(ours[k]) is type(theirs[k]) or (isinstance(ours[k], numbers) and isinstance(theirs[k], numbers)))
    }
    assert mismatched == set(), f"{entity}: keys whose JSON types differ from Intuit's sample"


def test_queries_on_refs_and_a_customer_with_a_balance_cannot_be_deactivated(qbo_emulator, qbo_company, qbo):
    customer, item = new_customer(qbo, "Owes"), new_item(qbo)
    invoice = new_invoice(qbo, customer, item)
    statement = f"select * from Invoice where CustomerRef = '{customer.Id}'"  # noqa: S608 (QBO's query language)
    found = query(qbo_emulator, qbo_company, statement).json()
    assert [i["Id"] for i in found["QueryResponse"]["Invoice"]] == [invoice.Id]
    current = Customer.get(customer.Id, qb=qbo)
    refused = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/customer",
        json={"Id": customer.Id, "SyncToken": current.SyncToken, "sparse": True, "Active": False},
    )
    error = refused.json()["Fault"]["Error"][0]
    assert error["Message"] == "Delete List Has Balance Error" and "non-zero balance" in error["Detail"]


def test_an_empty_string_in_a_sparse_update_blanks_the_field(qbo_emulator, qbo_company, qbo):
    customer = new_customer(qbo, "Blank Me", Notes="a note", GivenName="Gil")
    body = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/customer",
        json={"Id": customer.Id, "SyncToken": "0", "sparse": True, "Notes": ""},
    ).json()["Customer"]
    assert "Notes" not in body and body["GivenName"] == "Gil"
