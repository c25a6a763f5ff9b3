"""What python-quickbooks and Intuit's samples showed the QBO emulator got wrong (issue 13).

Each test failed before its fix: lines as python-quickbooks sends them, the sections of a new
company's Preferences and their sparse updates, and `include=invoiceLink`. Refresh-token
rotation is in test_qbo_emulator_oauth.py.
"""

from __future__ import annotations

import json

import pytest
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.preferences import Preferences
from quickbooks.objects.salesreceipt import SalesReceipt

from tests.test_qbo_emulator import new_customer, new_item, raw, sample

SECTIONS = (
    "EmailMessagesPrefs",
    "ProductAndServicesPrefs",
    "ReportPrefs",
    "AccountingInfoPrefs",
    "SalesFormsPrefs",
    "VendorAndPurchasesPrefs",
    "TaxPrefs",
    "OtherPrefs",
    "TimeTrackingPrefs",
    "CurrencyPrefs",
)


def amount_only_line(item, amount) -> SalesItemLine:
    """A line as python-quickbooks builds it when only Amount is set: its detail still sends
    `Qty: 0` and `UnitPrice: 0` (the SDK's defaults)."""
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    return line


@pytest.mark.parametrize("form", [Invoice, SalesReceipt, CreditMemo])
def test_an_amount_only_line_with_the_sdks_zero_defaults_is_accepted(qbo, form):
    customer, item = new_customer(qbo, "Zero Defaults"), new_item(qbo)
    line = amount_only_line(item, 125.5)
    assert json.loads(line.to_json())["SalesItemLineDetail"]["Qty"] == 0  # what goes over the wire
    document = form()
    document.CustomerRef = customer.to_ref()
    document.Line = [line]
    saved = document.save(qb=qbo)
    assert float(saved.TotalAmt) == 125.5
    stored = form.get(saved.Id, qb=qbo)
    sales_line = next(line for line in stored.Line if getattr(line, "DetailType", None) == "SalesItemLineDetail")
    detail = sales_line.SalesItemLineDetail
    detail = detail if isinstance(detail, dict) else detail.__dict__
    assert float(sales_line.Amount) == 125.5
    assert not detail.get("Qty") and not detail.get("UnitPrice")  # the amount stands; no 0 × 0 stored


def test_a_quantity_and_price_really_given_must_agree_with_the_amount(qbo, qbo_emulator, qbo_company):
    customer, item = new_customer(qbo, "Math Check"), new_item(qbo)
    line = amount_only_line(item, 99)
    line.SalesItemLineDetail.Qty, line.SalesItemLineDetail.UnitPrice = 2, 10
    invoice = Invoice()
    invoice.CustomerRef, invoice.Line = customer.to_ref(), [line]
    with pytest.raises(QuickbooksException) as wrong:
        invoice.save(qb=qbo)
    assert wrong.value.error_code == 6070
    line.Amount = 20
    assert float(invoice.save(qb=qbo).TotalAmt) == 20


def test_a_new_company_has_every_preferences_section_of_intuits_sample(qbo, qbo_emulator, qbo_company):
    reference = sample("preferences.sample-object.json")["Preferences"]
    answer = raw(qbo_emulator, qbo_company, "GET", "/preferences").json()["Preferences"]
    for section in SECTIONS:
        assert section in answer, section
        assert set(reference[section]) <= set(answer[section]) | {"BookCloseDate", "TaxGroupCodeRef"}, section
    for message in ("InvoiceMessage", "EstimateMessage", "SalesReceiptMessage", "StatementMessage"):
        assert set(answer["EmailMessagesPrefs"][message]) == {"Subject", "Message"}
    names = {pair["Name"] for pair in answer["OtherPrefs"]["NameValue"]}
    assert names == {pair["Name"] for pair in reference["OtherPrefs"]["NameValue"]}
    income = next(p["Value"] for p in answer["OtherPrefs"]["NameValue"] if p["Name"] == "UncategorizedIncomeAccountId")
    account = raw(qbo_emulator, qbo_company, "GET", f"/account/{income}").json()["Account"]
    assert account["AccountType"] == "Income"  # the ids it names are real accounts
    # python-quickbooks reads every section into its own class.
    preferences = Preferences.get(qb=qbo)
    for section in SECTIONS:
        assert getattr(preferences, section) is not None, section


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (
            {"EmailMessagesPrefs": {"InvoiceMessage": {"Subject": "Your bill"}}},
            lambda p: (
                p["EmailMessagesPrefs"]["InvoiceMessage"]["Subject"] == "Your bill"
                and "Your invoice is attached" in p["EmailMessagesPrefs"]["InvoiceMessage"]["Message"]
                and "Subject" in p["EmailMessagesPrefs"]["EstimateMessage"]
            ),
        ),
        (
            {"ProductAndServicesPrefs": {"QuantityOnHand": False}},
            lambda p: (
                p["ProductAndServicesPrefs"]["QuantityOnHand"] is False
                and p["ProductAndServicesPrefs"]["ForSales"] is True
            ),
        ),
        (
            {"ReportPrefs": {"ReportBasis": "Cash"}},
            lambda p: p["ReportPrefs"] == {"ReportBasis": "Cash", "CalcAgingReportFromTxnDate": False},
        ),
        (
            {"TimeTrackingPrefs": {"WorkWeekStartDate": "Sunday"}},
            lambda p: (
                p["TimeTrackingPrefs"]["WorkWeekStartDate"] == "Sunday"
                and p["TimeTrackingPrefs"]["BillCustomers"] is True
            ),
        ),
        (
            {"VendorAndPurchasesPrefs": {"BillableExpenseTracking": False}},
            lambda p: (
                p["VendorAndPurchasesPrefs"]["BillableExpenseTracking"] is False
                and p["VendorAndPurchasesPrefs"]["TrackingByCustomer"] is True
                and len(p["VendorAndPurchasesPrefs"]["POCustomField"]) == 2
            ),
        ),
        (
            {"OtherPrefs": {"NameValue": [{"Name": "WarnDuplicateBillNumber", "Value": "true"}]}},
            lambda p: (
                {"Name": "WarnDuplicateBillNumber", "Value": "true"} in p["OtherPrefs"]["NameValue"]
                and len(p["OtherPrefs"]["NameValue"]) == 20
            ),
        ),
        (
            {"SalesFormsPrefs": {"CustomTxnNumbers": True}},
            lambda p: (
                p["SalesFormsPrefs"]["CustomTxnNumbers"] is True and len(p["SalesFormsPrefs"]["CustomField"]) == 2
            ),
        ),
    ],
)
def test_sparse_updates_of_each_preferences_section(qbo_emulator, qbo_company, change, check):
    before = raw(qbo_emulator, qbo_company, "GET", "/preferences").json()["Preferences"]
    answer = raw(
        qbo_emulator,
        qbo_company,
        "POST",
        "/preferences",
        json={"Id": before["Id"], "SyncToken": before["SyncToken"], "sparse": True, **change},
    )
    assert answer.status_code == 200, answer.text
    after = raw(qbo_emulator, qbo_company, "GET", "/preferences").json()["Preferences"]
    assert check(after)
    assert after["SyncToken"] == str(int(before["SyncToken"]) + 1)
    untouched = [s for s in SECTIONS if s not in change]
    assert all(after[s] == before[s] for s in untouched)


def _invoice(qbo, customer, item, **fields) -> Invoice:
    invoice = Invoice()
    invoice.CustomerRef, invoice.Line = customer.to_ref(), [amount_only_line(item, 40)]
    for key, value in fields.items():
        setattr(invoice, key, value)
    return invoice.save(qb=qbo)


def test_include_invoice_link_when_payable_online_with_a_bill_email(qbo, qbo_emulator, qbo_company):
    customer, item = new_customer(qbo, "Link Customer"), new_item(qbo)
    email = {"Address": "pay@example.com"}
    payable = _invoice(qbo, customer, item, AllowOnlineCreditCardPayment=True, BillEmail=email)
    ach_only = _invoice(qbo, customer, item, AllowOnlineACHPayment=True, BillEmail=email)
    no_email = _invoice(qbo, customer, item, AllowOnlineCreditCardPayment=True)
    offline = _invoice(qbo, customer, item, BillEmail=email)

    def read(invoice, include="invoiceLink"):
        params = {"include": include} if include else {}
        return Invoice.get(invoice.Id, qb=qbo, params=params)

    link = read(payable).InvoiceLink
    assert link.startswith("https://") and link == read(payable).InvoiceLink  # stable per invoice
    assert read(ach_only).InvoiceLink.startswith("https://") and read(ach_only).InvoiceLink != link
    assert not read(no_email).InvoiceLink  # python-quickbooks defaults the attribute to ""
    assert not read(offline).InvoiceLink
    assert "InvoiceLink" not in raw(qbo_emulator, qbo_company, "GET", f"/invoice/{payable.Id}").json()["Invoice"]
    queried = raw(
        qbo_emulator,
        qbo_company,
        "GET",
        "/query",
        params={"query": f"select * from Invoice where Id = '{payable.Id}'", "include": "invoiceLink"},  # noqa: S608
    ).json()["QueryResponse"]["Invoice"]
    assert queried[0]["InvoiceLink"] == link
