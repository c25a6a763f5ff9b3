"""A new company (realm) as QBO sets one up: chart of accounts, payment methods, terms, tax codes,
Preferences and CompanyInfo (NOTES §2, samples preferences / companyinfo)."""

from __future__ import annotations

from emulators.quickbooks.state import (
    COUNTRY_CURRENCY,
    COUNTRY_OFFSET_HOURS,
    CURRENCY_NAMES,
    Company,
    QboState,
    format_time,
)

ACCOUNTS = (  # Name, AccountType, AccountSubType
    ("Checking", "Bank", "Checking"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Services", "Income", "ServiceFeeIncome"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses"),
    ("Uncategorized Income", "Income", "ServiceFeeIncome"),
    ("Uncategorized Expense", "Expense", "OtherMiscellaneousServiceCost"),
    ("Uncategorized Asset", "Other Current Asset", "OtherCurrentAssets"),
    ("Discounts given", "Income", "DiscountsRefundsGiven"),
)
PAYMENT_METHODS = (
    ("Cash", "NON_CREDIT_CARD"),
    ("Check", "NON_CREDIT_CARD"),
    ("Visa", "CREDIT_CARD"),
    ("MasterCard", "CREDIT_CARD"),
    ("American Express", "CREDIT_CARD"),
)
TERMS = (("Due on receipt", 0), ("Net 15", 15), ("Net 30", 30), ("Net 60", 60))
TAX_CODES = {  # non-US companies: tax codes that lines must name
    "CA": (("GST", "GST 5%"), ("HST ON", "HST 13%"), ("Exempt", "Exempt")),
    "GB": (("20.0% S", "Standard rated 20%"), ("5.0% R", "Reduced rate 5%"), ("Exempt", "Exempt")),
}
DEFAULT_TAX_CODES = (("Standard", "Standard rate"), ("Exempt", "Exempt"))


def create_company(
    state: QboState,
    *,
    country: str = "US",
    sandbox: bool = False,
    name: str | None = None,
    currency: str | None = None,
    multi_currency: bool = False,
    realm_id: str | None = None,
    custom_txn_numbers: bool = False,
    book_close_date: str | None = None,
    custom_fields: list[str] | None = None,
) -> Company:
    realm_id = realm_id or state.new_realm_id()
    country = country.upper()
    currency = (currency or COUNTRY_CURRENCY.get(country, "USD")).upper()
    company = Company(
        realm_id=realm_id,
        name=name or f"Company {realm_id[-4:]}",
        country=country,
        currency=currency,
        multi_currency=multi_currency,
        sandbox=sandbox,
        offset_hours=COUNTRY_OFFSET_HOURS.get(country, 0),
    )
    now = format_time(state.now(), company.tz)

    def add(entity: str, record: dict, entity_id: str | None = None) -> dict:
        record_id = entity_id or company.new_id(entity)
        stored = {
            **record,
            "Id": record_id,
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": {"CreateTime": now, "LastUpdatedTime": now},
        }
        company.table(entity)[record_id] = stored
        return stored

    currency_ref = {"value": currency, "name": CURRENCY_NAMES.get(currency, currency)}
    account_ids: dict[str, str] = {}
    for account_name, account_type, sub_type in ACCOUNTS:
        from emulators.quickbooks.entities import CLASSIFICATION

        account_ids[account_name] = add(
            "Account",
            {
                "Name": account_name,
                "FullyQualifiedName": account_name,
                "AccountType": account_type,
                "AccountSubType": sub_type,
                "Classification": CLASSIFICATION[account_type],
                "Active": True,
                "SubAccount": False,
                "CurrentBalance": 0,
                "CurrentBalanceWithSubAccounts": 0,
                "CurrencyRef": currency_ref,
            },
        )["Id"]
    for method_name, method_type in PAYMENT_METHODS:
        add("PaymentMethod", {"Name": method_name, "Type": method_type, "Active": True})
    for term_name, days in TERMS:
        add("Term", {"Name": term_name, "Type": "STANDARD", "DueDays": days, "Active": True})
    if country == "US":
        add("TaxCode", {"Name": "TAX", "Description": "TAX", "Taxable": True, "TaxGroup": False, "Active": True}, "TAX")
        add(
            "TaxCode", {"Name": "NON", "Description": "NON", "Taxable": False, "TaxGroup": False, "Active": True}, "NON"
        )
    else:
        for code_name, description in TAX_CODES.get(country, DEFAULT_TAX_CODES):
            add(
                "TaxCode",
                {
                    "Name": code_name,
                    "Description": description,
                    "Taxable": code_name != "Exempt",
                    "TaxGroup": True,
                    "Active": True,
                },
            )
    preferences = _preferences(
        company,
        country=country,
        currency=currency,
        multi_currency=multi_currency,
        custom_txn_numbers=custom_txn_numbers,
        book_close_date=book_close_date,
        custom_fields=list(custom_fields or [])[:3],
        account_ids=account_ids,
    )
    add("Preferences", preferences, "1")
    address = {
        "Id": "1",
        "Line1": "2500 Garcia Ave",
        "City": "Mountain View",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94043",
        "Country": country,
    }
    add(
        "CompanyInfo",
        {
            "CompanyName": company.name,
            "LegalName": company.name,
            "CompanyAddr": address,
            "CustomerCommunicationAddr": address,
            "LegalAddr": address,
            "Country": country,
            "PrimaryPhone": {"FreeFormNumber": "(650) 944-4444"},
            "Email": {"Address": "donotreply@intuit.com"},
            "WebAddr": {},
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en",
            "CompanyStartDate": state.now().date().isoformat(),
            "DefaultTimeZone": "America/Los_Angeles",
            "NameValue": [
                {"Name": "NeoEnabled", "Value": "true"},
                {"Name": "SubscriptionStatus", "Value": "PAID"},
                {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                {"Name": "IsQbdtMigrated", "Value": "false"},
            ],
        },
        "1",
    )
    company.next_ids.update({"Preferences": 2, "CompanyInfo": 2})
    state.companies[realm_id] = company
    return company


def _preferences(
    company: Company,
    *,
    country: str,
    currency: str,
    multi_currency: bool,
    custom_txn_numbers: bool,
    book_close_date: str | None,
    custom_fields: list[str],
    account_ids: dict[str, str],
) -> dict:
    """Every section a real company's Preferences has (Intuit's preferences sample and Finance.xsd),
    with this company's name, currency, tax model and custom-field slots."""
    slots = [str(n) for n in range(1, 4)]

    def message(kind: str, body: str) -> dict:
        return {"Subject": f"{kind} from {company.name}", "Message": f"{body}\n\nSincerely,\n{company.name}"}

    thanks = "Thank you for your business - we appreciate it very much."
    please_pay = "Please remit payment at your earliest convenience."
    return {
        "EmailMessagesPrefs": {
            "InvoiceMessage": message("Invoice", f"Your invoice is attached.  {please_pay}\n{thanks}"),
            "EstimateMessage": message(
                "Estimate",
                "Please review the estimate below.  Feel free to contact us if you have any questions.\n"
                "We look forward to working with you.",
            ),
            "SalesReceiptMessage": message("Sales Receipt", f"Your sales receipt is attached.\n{thanks}"),
            "StatementMessage": message("Statement", f"Your statement is attached.  {please_pay}\n{thanks}"),
        },
        "ProductAndServicesPrefs": {
            "ForSales": True,
            "ForPurchase": True,
            "QuantityWithPriceAndRate": True,
            "QuantityOnHand": True,
        },
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "AccountingInfoPrefs": {
            "FirstMonthOfFiscalYear": "January",
            "UseAccountNumbers": False,
            "TaxYearMonth": "January",
            "ClassTrackingPerTxn": False,
            "ClassTrackingPerTxnLine": False,
            "TrackDepartments": False,
            "DepartmentTerminology": "Location",
            "TaxForm": "6",
            "CustomerTerminology": "Customers",
            **({"BookCloseDate": book_close_date} if book_close_date else {}),
        },
        "SalesFormsPrefs": {
            "CustomTxnNumbers": custom_txn_numbers,
            "AllowDeposit": True,
            "AllowDiscount": True,
            "DefaultDiscountAccount": account_ids["Discounts given"],
            "AllowEstimates": True,
            "AllowShipping": False,
            "AllowServiceDate": False,
            "AutoApplyCredit": True,
            "AutoApplyPayments": True,
            "DefaultTerms": {"value": "3"},
            "DefaultCustomerMessage": "Thank you for your business and have a great day!",
            "EmailCopyToCompany": False,
            "ETransactionEnabledStatus": "NotApplicable",
            "ETransactionAttachPDF": False,
            "ETransactionPaymentEnabled": False,
            "IPNSupportEnabled": False,
            "UsingPriceLevels": False,
            "CustomField": [
                {
                    "CustomField": [
                        {
                            "Name": f"SalesFormsPrefs.UseSalesCustom{n}",
                            "Type": "BooleanType",
                            "BooleanValue": int(n) <= len(custom_fields),
                        }
                        for n in slots
                    ]
                },
                {
                    "CustomField": [
                        {
                            "Name": f"SalesFormsPrefs.SalesCustomName{n}",
                            "Type": "StringType",
                            "StringValue": custom_fields[int(n) - 1],
                        }
                        for n in slots
                        if int(n) <= len(custom_fields)
                    ]
                },
            ],
        },
        "VendorAndPurchasesPrefs": {
            "BillableExpenseTracking": True,
            "TrackingByCustomer": True,
            "POCustomField": [
                {
                    "CustomField": [
                        {"Name": f"PurchasePrefs.UsePurchaseCustom{n}", "Type": "BooleanType", "BooleanValue": False}
                        for n in slots
                    ]
                },
                {"CustomField": []},
            ],
        },
        "TimeTrackingPrefs": {
            "WorkWeekStartDate": "Monday",
            "MarkTimeEntriesBillable": True,
            "ShowBillRateToAll": False,
            "UseServices": True,
            "BillCustomers": True,
        },
        "TaxPrefs": {"UsingSalesTax": country == "US", "PartnerTaxEnabled": False},
        "CurrencyPrefs": {"MultiCurrencyEnabled": multi_currency, "HomeCurrency": {"value": currency}},
        "OtherPrefs": {
            "NameValue": [
                {
                    "Name": "SalesFormsPrefs.DefaultCustomerMessage",
                    "Value": "Thank you for your business and have a great day!",
                },
                {"Name": "SalesFormsPrefs.DefaultItem", "Value": "1"},
                {"Name": "DTXCopyMemo", "Value": "false"},
                {"Name": "UncategorizedAssetAccountId", "Value": account_ids["Uncategorized Asset"]},
                {"Name": "UncategorizedIncomeAccountId", "Value": account_ids["Uncategorized Income"]},
                {"Name": "UncategorizedExpenseAccountId", "Value": account_ids["Uncategorized Expense"]},
                {"Name": "SFCEnabled", "Value": "true"},
                {"Name": "DataPartner", "Value": "false"},
                {"Name": "Vendor1099Enabled", "Value": "true" if country == "US" else "false"},
                {"Name": "TimeTrackingFeatureEnabled", "Value": "true"},
                {"Name": "FDPEnabled", "Value": "false"},
                {"Name": "ProjectsEnabled", "Value": "false"},
                {"Name": "DateFormat", "Value": "Month Date Year separated by a slash"},
                {"Name": "DateFormatMnemonic", "Value": "MMDDYYYY_SEP_SLASH"},
                {"Name": "NumberFormat", "Value": "US Number Format"},
                {"Name": "NumberFormatMnemonic", "Value": "US_NB"},
                {"Name": "WarnDuplicateCheckNumber", "Value": "true"},
                {"Name": "WarnDuplicateBillNumber", "Value": "false"},
                {"Name": "SignoutInactiveMinutes", "Value": "60"},
                {"Name": "AccountingInfoPrefs.ShowAccountNumbers", "Value": "false"},
            ]
        },
    }
