"""Entities and their rules: create, read, full and sparse update, delete, void, deactivate (NOTES §2–3, §7).

`Writer.save()` takes a request body exactly as python-quickbooks sends it
("" for absent dates and amounts, int SyncToken 0, empty refs, read-only
defaults) and does what QBO does: validate, fill system values, number,
total, link payments, bump SyncToken, stamp MetaData. Keys that start with
"_" are the emulator's own bookkeeping and never leave it.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from emulators.quickbooks import assumptions, faults
from emulators.quickbooks.state import CURRENCY_NAMES, Company, QboState, format_time

CENT = Decimal("0.01")

ENTITIES = {
    name.lower(): name
    for name in (
        "Customer",
        "Vendor",
        "Employee",
        "Item",
        "Account",
        "PaymentMethod",
        "Term",
        "TaxCode",
        "Invoice",
        "Payment",
        "SalesReceipt",
        "CreditMemo",
        "Preferences",
        "CompanyInfo",
    )
}
NAME_LISTS = ("Customer", "Vendor", "Employee", "Item", "Account", "PaymentMethod", "Term", "TaxCode")
SALES_FORMS = ("Invoice", "SalesReceipt", "CreditMemo")
TRANSACTIONS = (*SALES_FORMS, "Payment")
PEOPLE = ("Customer", "Vendor", "Employee")
READ_ONLY_ENTITIES = ("TaxCode",)
# Fields the server computes; what a client sends for them is ignored.
READ_ONLY_FIELDS = {
    "*": ("MetaData", "domain", "status", "time"),
    "Customer": ("FullyQualifiedName", "BalanceWithJobs", "Level", "IsProject"),
    "Vendor": ("FullyQualifiedName", "Balance"),
    "Item": ("FullyQualifiedName", "Level"),
    "Account": ("FullyQualifiedName", "CurrentBalance", "CurrentBalanceWithSubAccounts", "Classification"),
    "Invoice": ("TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt", "LinkedTxn", "InvoiceLink"),
    "SalesReceipt": ("TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt"),
    "CreditMemo": ("TotalAmt", "Balance", "RemainingCredit", "HomeTotalAmt", "LinkedTxn"),
    "Payment": ("UnappliedAmt",),
}
NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
CLASSIFICATION = {
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Cost of Goods Sold": "Expense",
    "Expense": "Expense",
    "Other Expense": "Expense",
}


def canonical_entity(name: str) -> str:
    entity = ENTITIES.get(name.lower())
    if entity is None:
        raise faults.QboFault("4001", "Invalid query", f"QueryValidationError: Entity {name} is not supported")
    return entity


def clean(value):
    """What python-quickbooks sends, as QBO reads it: "" and empty refs are absent."""
    if isinstance(value, dict):
        result = {k: clean(v) for k, v in value.items() if v is not None and v != ""}
        result = {k: v for k, v in result.items() if v is not None}
        if set(result) <= {"name", "type"} and ("value" in value):  # a ref whose value was ""
            return None
        return result
    if isinstance(value, list):
        return [item for item in (clean(v) for v in value) if item is not None]
    return value


def public(record: dict) -> dict:
    """A stored record as the API shows it (bookkeeping keys dropped)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _merged(old: dict, new: dict) -> dict:
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merged[key] = _merged(old[key], value)
        elif key == "NameValue" and isinstance(value, list) and isinstance(old.get(key), list):
            named = {pair.get("Name"): pair for pair in value if isinstance(pair, dict)}
            kept = [named.pop(pair.get("Name"), pair) for pair in old[key]]
            merged[key] = kept + list(named.values())
        else:
            merged[key] = value
    return merged


def _given(detail: dict, field: str) -> object:
    """A line's Qty or UnitPrice as the client meant it: python-quickbooks sends both as 0 when only
    Amount was set, and QBO lets the amount stand, so 0 (or "") counts as not given and is dropped."""
    value = detail.get(field)
    if value in (None, "") or (assumptions.ZERO_QTY_AND_PRICE_ARE_UNSET and _is_zero(value)):
        detail.pop(field, None)
        return None
    return value


def _is_zero(value: object) -> bool:
    try:
        return float(value) == 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def money(value) -> float:
    """An amount as QBO keeps it: two places, half-up (floats are what its JSON carries)."""
    try:
        return float(Decimal(repr(float(value))).quantize(CENT, ROUND_HALF_UP))
    except (TypeError, ValueError, ArithmeticError):
        return 0.0


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(str(text)[:10])
        return True
    except ValueError:
        return False


def name_key(name: str) -> str:
    text = " ".join(str(name).split())
    return text.lower() if assumptions.NAMES_CASE_INSENSITIVE else text


class Writer:
    """Writes to one company, as QBO does; `source` tags the webhook events ("API" or "UI")."""

    def __init__(self, state: QboState, company: Company) -> None:
        self.state, self.company = state, company

    # --- helpers ---------------------------------------------------------------------------------------------

    def now_text(self) -> str:
        return format_time(self.state.now(), self.company.tz)

    def today(self) -> date:
        return self.state.now().astimezone(self.company.tz).date()

    def find(self, entity: str, entity_id: str) -> dict | None:
        return self.company.table(entity).get(str(entity_id))

    def resolve_ref(self, entity: str, ref: dict | None, field: str, required: bool = True) -> dict | None:
        """The record a ref points to, with the ref's name filled in; 2500 unknown, 610 inactive."""
        if not ref or not ref.get("value"):
            if required:
                raise faults.required(field)
            return None
        record = self.find(entity, ref["value"])
        if record is None:
            raise faults.invalid_reference(field, str(ref["value"]))
        if record.get("Active") is False:
            raise faults.not_found(entity, str(ref["value"]))
        label = record.get("DisplayName") or record.get("FullyQualifiedName") or record.get("Name")
        if label:
            ref["name"] = label
        ref.pop("type", None)
        return record

    def _check_closed(self, txn_date: str | None) -> None:
        closed = self.company.book_close_date
        if closed and txn_date and str(txn_date)[:10] <= closed:
            raise faults.closed_period()

    # --- the entry point --------------------------------------------------------------------------------------

    def save(self, entity: str, body: dict, params: dict) -> dict:
        """Dispatch a POST to /{entity}: create, update (full or sparse), delete or void."""
        if not isinstance(body, dict):
            raise faults.QboFault("2020", "Request has invalid or unsupported property", "The body must be an object")
        operation = (params.get("operation") or "").lower()
        include = (params.get("include") or "").lower()
        if operation == "delete":
            return self.delete(entity, body)
        if operation == "void" or (operation == "update" and include == "void"):
            return self.void(entity, body)
        if entity in ("Preferences",) or body.get("Id") not in (None, "", 0, "0") or entity == "CompanyInfo":
            return self.update(entity, body, include)
        return self.create(entity, body, include)

    def create(self, entity: str, body: dict, include: str = "") -> dict:
        if entity in READ_ONLY_ENTITIES or entity in ("CompanyInfo", "Preferences"):
            raise faults.unsupported("Create", entity)
        data = self._input(entity, body, creating=True)
        record = {**data, "Id": self.company.new_id(entity), "SyncToken": "0", "domain": "QBO", "sparse": False}
        self._validate(entity, record, None, include)
        now = self.now_text()
        record["MetaData"] = {"CreateTime": now, "LastUpdatedTime": now}
        self.company.table(entity)[record["Id"]] = record
        self._after_change(entity)
        self.state.webhooks.record(self.company, entity, record["Id"], "Create")
        return public(record)

    def update(self, entity: str, body: dict, include: str = "") -> dict:
        if entity in READ_ONLY_ENTITIES:
            raise faults.unsupported("Update", entity)
        entity_id = str(body.get("Id") or ("1" if entity in ("Preferences", "CompanyInfo") else ""))
        existing = self.find(entity, entity_id)
        if existing is None:
            raise faults.not_found(entity, entity_id)
        if str(body.get("SyncToken", "")) != existing["SyncToken"]:
            raise faults.stale()
        if entity in TRANSACTIONS:
            self._check_closed(existing.get("TxnDate"))
        data = self._input(entity, body, creating=False)
        sparse = body.get("sparse") is True
        if sparse:
            # "" in a sparse update blanks the field (why python-quickbooks' "sparse" objects erase data).
            blanked = {k for k, v in body.items() if v == "" and k not in ("Id", "SyncToken")}
            record = {k: v for k, v in {**copy.deepcopy(existing), **data}.items() if k not in blanked}
        else:  # a full update sets every writable field that was left out to NULL
            keep = {k: v for k, v in existing.items() if k.startswith("_") or k in ("Id", "MetaData", "domain")}
            record = {**keep, **data}
            if entity in PEOPLE:
                record.setdefault("DisplayName", existing.get("DisplayName"))
        record["SyncToken"], record["sparse"], record["Id"] = existing["SyncToken"], False, entity_id
        self._validate(entity, record, existing, include)
        record["SyncToken"] = str(int(existing["SyncToken"]) + 1)
        record["MetaData"] = {**existing.get("MetaData", {}), "LastUpdatedTime": self.now_text()}
        self.company.table(entity)[entity_id] = record
        self._after_change(entity)
        self.state.webhooks.record(self.company, entity, entity_id, "Update")
        return public(record)

    def delete(self, entity: str, body: dict) -> dict:
        if entity not in TRANSACTIONS:
            raise faults.unsupported("Delete", entity)
        entity_id = str(body.get("Id", ""))
        existing = self.find(entity, entity_id)
        if existing is None:
            raise faults.not_found(entity, entity_id)
        if str(body.get("SyncToken", "")) != existing["SyncToken"]:
            raise faults.stale()
        self._check_closed(existing.get("TxnDate"))
        if entity in SALES_FORMS and any(t.get("TxnType") == "Payment" for t in existing.get("LinkedTxn", [])):
            raise faults.business(assumptions.LINKED_TXN_DETAIL)
        del self.company.table(entity)[entity_id]
        self.company.deleted.append((entity, entity_id, self.state.now()))
        self._after_change(entity)
        self.state.webhooks.record(self.company, entity, entity_id, "Delete")
        return {"status": "Deleted", "domain": "QBO", "Id": entity_id}

    def void(self, entity: str, body: dict) -> dict:
        if entity not in ("Invoice", "Payment", "SalesReceipt"):
            raise faults.unsupported("Void", entity)
        entity_id = str(body.get("Id", ""))
        existing = self.find(entity, entity_id)
        if existing is None:
            raise faults.not_found(entity, entity_id)
        if str(body.get("SyncToken", "")) != existing["SyncToken"]:
            raise faults.stale()
        self._check_closed(existing.get("TxnDate"))
        if entity == "Invoice" and any(t.get("TxnType") == "Payment" for t in existing.get("LinkedTxn", [])):
            raise faults.business(assumptions.LINKED_TXN_DETAIL)
        record = copy.deepcopy(existing)
        for line in record.get("Line", []):
            line["Amount"] = 0
            detail = line.get("SalesItemLineDetail")
            if detail is not None:
                detail["Qty"], detail["UnitPrice"] = 0, 0
        record["TotalAmt"] = 0
        if entity != "Payment":
            record["Balance"] = 0
        else:
            record["UnappliedAmt"] = 0
        note = record.get("PrivateNote")
        record["PrivateNote"] = f"{assumptions.VOID_NOTE_PREFIX} - {note}" if note else assumptions.VOID_NOTE_PREFIX
        record["_voided"] = True
        record["SyncToken"] = str(int(existing["SyncToken"]) + 1)
        record["MetaData"] = {**existing.get("MetaData", {}), "LastUpdatedTime": self.now_text()}
        self.company.table(entity)[entity_id] = record
        self._after_change(entity)
        self.state.webhooks.record(self.company, entity, entity_id, "Void")
        return public(record)

    # --- input cleaning and validation -------------------------------------------------------------------------

    def _input(self, entity: str, body: dict, creating: bool) -> dict:
        data = clean(copy.deepcopy(body)) or {}
        for name in (*READ_ONLY_FIELDS["*"], *READ_ONLY_FIELDS.get(entity, ()), "Id", "SyncToken", "sparse"):
            data.pop(name, None)
        if entity == "Customer" and not creating:
            data.pop("Balance", None)  # an opening balance is written on create only
        return data

    def _validate(self, entity: str, record: dict, existing: dict | None, include: str) -> None:
        validator = getattr(self, f"_validate_{entity.lower()}", None)
        if validator is not None:
            validator(record, existing, include)

    def _check_name_chars(self, record: dict, fields: tuple[str, ...]) -> None:
        for name in fields:
            value = record.get(name)
            if isinstance(value, str) and any(c in value for c in ":\t\n"):
                raise faults.business(assumptions.BAD_NAME_DETAIL)

    def _unique(
        self, entities: tuple[str, ...], field: str, value: str, own: tuple[str, str] | None, detail: str
    ) -> None:
        wanted = name_key(value)
        for entity in entities:
            for record_id, record in self.company.table(entity).items():
                if (entity, record_id) == own:
                    continue
                if name_key(record.get(field, "")) == wanted:
                    raise faults.duplicate_name(detail)

    def _validate_person(self, entity: str, record: dict, existing: dict | None) -> None:
        self._check_name_chars(record, ("DisplayName", *NAME_PARTS, "PrintOnCheckName"))
        if not record.get("DisplayName"):
            parts = [record.get(p) for p in NAME_PARTS if record.get(p)]
            if not parts:
                raise faults.QboFault(
                    "6080",
                    "No Name Provided",
                    "Please provide at least one of: Title, GivenName, MiddleName, FamilyName, Suffix, or DisplayName.",
                )
            record["DisplayName"] = " ".join(parts)
        if len(record["DisplayName"]) > 500:
            raise faults.QboFault(
                "2050",
                "String length is either shorter or longer than supported by specification",
                "DisplayName is longer than 500 characters",
                element="DisplayName",
            )
        email = (record.get("PrimaryEmailAddr") or {}).get("Address")
        if email and ("@" not in email or "." not in email):
            raise faults.QboFault(
                "2210",
                "Email Address does not conform to the syntax rules of RFC 822",
                "Email Address does not conform to the syntax rules of RFC 822.",
                element="PrimaryEmailAddr",
            )
        own = (entity, record["Id"])
        self._unique(
            PEOPLE,
            "DisplayName",
            record["DisplayName"],
            own,
            "The name supplied already exists. : Another customer, vendor or employee is already using "
            "this name. Please use a different name.",
        )
        record.setdefault("Active", True)
        record["FullyQualifiedName"] = record["DisplayName"]
        record.setdefault("PrintOnCheckName", record.get("CompanyName") or record["DisplayName"])
        record.setdefault(
            "CurrencyRef",
            {"value": self.company.currency, "name": CURRENCY_NAMES.get(self.company.currency, self.company.currency)},
        )
        for address in ("BillAddr", "ShipAddr"):
            if isinstance(record.get(address), dict) and "Id" not in record[address]:
                record[address]["Id"] = str(self.company.next_address_id)
                self.company.next_address_id += 1

    def _validate_customer(self, record: dict, existing: dict | None, include: str) -> None:
        self._validate_person("Customer", record, existing)
        record.setdefault("Job", False)
        record.setdefault("BillWithParent", False)
        record.setdefault("Taxable", self.company.country == "US")
        record.setdefault("PreferredDeliveryMethod", "Print")
        if existing is None:
            record["_opening"] = money(record.get("Balance", 0))
            record["Balance"] = record["BalanceWithJobs"] = 0  # recompute_balances sets the real figure
        if record.get("SalesTermRef"):
            self.resolve_ref("Term", record["SalesTermRef"], "SalesTermRef")
        if (
            existing is not None
            and existing.get("Active", True)
            and record.get("Active") is False
            and money(existing.get("Balance")) != 0
        ):
            raise faults.QboFault("6000", assumptions.HAS_BALANCE_MESSAGE, assumptions.HAS_BALANCE_DETAIL)

    def _validate_vendor(self, record: dict, existing: dict | None, include: str) -> None:
        self._validate_person("Vendor", record, existing)
        record.setdefault("Balance", 0)

    def _validate_employee(self, record: dict, existing: dict | None, include: str) -> None:
        self._validate_person("Employee", record, existing)

    def _validate_item(self, record: dict, existing: dict | None, include: str) -> None:
        name = record.get("Name")
        if not name:
            raise faults.required("Name")
        self._check_name_chars(record, ("Name",))
        self._unique(("Item",), "Name", name, ("Item", record["Id"]), assumptions.ITEM_DUPLICATE_DETAIL)
        item_type = record.setdefault("Type", "Inventory" if record.get("TrackQtyOnHand") else "NonInventory")
        if item_type not in ("Service", "NonInventory", "Inventory", "Category", "Group", "Bundle"):
            raise faults.QboFault("2170", "Invalid Enumeration", f"Invalid Enumeration : {item_type}", element="Type")
        if item_type in ("Service", "NonInventory", "Inventory"):
            self.resolve_ref("Account", record.get("IncomeAccountRef"), "IncomeAccountRef")
        if item_type == "Inventory":
            for field in ("ExpenseAccountRef", "AssetAccountRef"):
                self.resolve_ref("Account", record.get(field), field)
            if not record.get("TrackQtyOnHand"):
                raise faults.required("TrackQtyOnHand")
            for field in ("QtyOnHand", "InvStartDate"):
                if field not in record:
                    raise faults.required(field)
        elif record.get("ExpenseAccountRef"):
            self.resolve_ref("Account", record["ExpenseAccountRef"], "ExpenseAccountRef")
        record.setdefault("Active", True)
        record.setdefault("Taxable", False)
        record["FullyQualifiedName"] = name

    def _validate_account(self, record: dict, existing: dict | None, include: str) -> None:
        name = record.get("Name")
        if not name:
            raise faults.required("Name")
        if any(c in name for c in ':"'):
            raise faults.business(assumptions.BAD_NAME_DETAIL)
        self._unique(("Account",), "Name", name, ("Account", record["Id"]), assumptions.ACCOUNT_DUPLICATE_DETAIL)
        account_type = record.get("AccountType")
        if account_type not in CLASSIFICATION:
            raise faults.required("AccountType")
        record["Classification"] = CLASSIFICATION[account_type]
        record["FullyQualifiedName"] = name
        record.setdefault("Active", True)
        record.setdefault("CurrentBalance", 0)
        record.setdefault(
            "CurrencyRef",
            {"value": self.company.currency, "name": CURRENCY_NAMES.get(self.company.currency, self.company.currency)},
        )

    def _validate_paymentmethod(self, record: dict, existing: dict | None, include: str) -> None:
        if not record.get("Name"):
            raise faults.required("Name")
        self._unique(
            ("PaymentMethod",),
            "Name",
            record["Name"],
            ("PaymentMethod", record["Id"]),
            "The name supplied already exists. : Another payment method is already using this name.",
        )
        record.setdefault("Type", "NON_CREDIT_CARD")
        record.setdefault("Active", True)

    def _validate_term(self, record: dict, existing: dict | None, include: str) -> None:
        if not record.get("Name"):
            raise faults.required("Name")
        record.setdefault("Type", "STANDARD")
        record.setdefault("Active", True)

    def _validate_preferences(self, record: dict, existing: dict | None, include: str) -> None:
        # A sparse update names only what changes, at any depth: every section (and nested message)
        # keeps the values it does not name; OtherPrefs.NameValue pairs are matched by Name.
        for section in list(record):
            if section.endswith("Prefs") and existing and section in existing and isinstance(record[section], dict):
                record[section] = _merged(existing[section], record[section])

    def _validate_companyinfo(self, record: dict, existing: dict | None, include: str) -> None:
        record["Country"] = existing["Country"]  # not changeable through the API

    # --- sales forms and payments -------------------------------------------------------------------------------

    def _validate_sales_form(self, entity: str, record: dict, existing: dict | None, include: str) -> None:
        customer = self.resolve_ref(
            "Customer", record.get("CustomerRef"), "CustomerRef", required=entity != "SalesReceipt"
        )
        lines = [line for line in record.get("Line", []) if line.get("DetailType") != "SubTotalLineDetail"]
        if not any(
            line.get("DetailType") in ("SalesItemLineDetail", "GroupLineDetail", "DescriptionOnly") for line in lines
        ):
            raise faults.required("Line")
        record["TxnDate"] = str(record.get("TxnDate") or self.today().isoformat())[:10]
        if not _is_date(record["TxnDate"]):
            raise faults.QboFault("2080", "Invalid Date", f"Invalid Date : {record['TxnDate']}", element="TxnDate")
        self._check_closed(record["TxnDate"])
        non_us = self.company.country != "US"
        total, line_number = 0.0, 1
        # A line sent with its Id keeps it; a new one gets the next Id above every Id the document has
        # or had before this update (assumptions.LINE_IDS): a line added never takes a removed line's Id.
        known = [*lines, *((existing or {}).get("Line") or [])]
        known += [inner for line in known for inner in (line.get("GroupLineDetail") or {}).get("Line") or []]
        next_id = max((int(line["Id"]) for line in known if str(line.get("Id", "")).isdigit()), default=0) + 1
        for line in lines:
            if not line.get("Id"):
                line["Id"], next_id = str(next_id), next_id + 1
            line["LineNum"] = line_number
            line_number += 1
            kind = line.get("DetailType")
            if kind == "SalesItemLineDetail":
                total += self._sales_item_line(line, non_us)
            elif kind == "GroupLineDetail":  # a bundle: its lines, and their sum as the group's amount
                group = line.setdefault("GroupLineDetail", {})
                if group.get("GroupItemRef"):
                    self.resolve_ref("Item", group["GroupItemRef"], "GroupItemRef")
                amount = 0.0
                for inner in group.get("Line") or []:
                    if not inner.get("Id"):
                        inner["Id"], next_id = str(next_id), next_id + 1
                    inner["DetailType"] = "SalesItemLineDetail"
                    amount += self._sales_item_line(inner, non_us)
                line["Amount"] = money(amount)
                total += line["Amount"]
            elif kind == "DiscountLineDetail":  # of the lines above it: an amount, or a percentage of them
                detail = line.setdefault("DiscountLineDetail", {})
                if detail.get("PercentBased") and detail.get("DiscountPercent") is not None:
                    line["Amount"] = money(total * money(detail["DiscountPercent"]) / 100)
                line["Amount"] = money(line.get("Amount", 0))
                total -= line["Amount"]
            else:
                line["Amount"] = money(line.get("Amount", 0))
        lines.append({"Amount": money(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        record["Line"] = lines
        # Sales tax as sent (assumptions.TAX_AS_SENT): the emulator keeps no tax rates of its own.
        given_tax = record.get("TxnTaxDetail") or {}
        tax = money(given_tax.get("TotalTax") or 0)
        record["TotalAmt"] = money(total + tax)
        record["TxnTaxDetail"] = {
            **{k: given_tax[k] for k in ("TxnTaxCodeRef", "TaxLine") if given_tax.get(k) and tax},
            "TotalTax": tax,
        }
        if non_us:
            record.setdefault("GlobalTaxCalculation", "TaxExcluded")
        record.setdefault(
            "CurrencyRef",
            {"value": self.company.currency, "name": CURRENCY_NAMES.get(self.company.currency, self.company.currency)},
        )
        record.setdefault("PrintStatus", "NotSet")
        record.setdefault("EmailStatus", "NotSet")
        self._number(entity, record, existing, include)
        self._custom_fields(record)
        if customer is not None:
            for address in ("BillAddr", "ShipAddr"):
                if address not in record and customer.get(address):
                    record[address] = copy.deepcopy(customer[address])
        if entity == "Invoice":
            if "DueDate" not in record:
                days = assumptions.DEFAULT_DUE_DAYS
                term_ref = record.get("SalesTermRef") or (customer or {}).get("SalesTermRef")
                if term_ref:
                    term = self.resolve_ref("Term", term_ref, "SalesTermRef")
                    days = int(term.get("DueDays", days))
                record["DueDate"] = (date.fromisoformat(record["TxnDate"]) + timedelta(days=days)).isoformat()
            record.setdefault("Deposit", 0)
            record.setdefault("ApplyTaxAfterDiscount", False)
            record.setdefault("LinkedTxn", [])
            record["Balance"] = record["TotalAmt"]  # payments are applied in _after_change
        elif entity == "SalesReceipt":
            record["Balance"] = 0
            record.setdefault("DepositToAccountRef", self._undeposited_funds_ref())
            self.resolve_ref("Account", record["DepositToAccountRef"], "DepositToAccountRef")
            if record.get("PaymentMethodRef"):
                self.resolve_ref("PaymentMethod", record["PaymentMethodRef"], "PaymentMethodRef")
        elif entity == "CreditMemo":
            record["Balance"] = record["RemainingCredit"] = record["TotalAmt"]

    def _sales_item_line(self, line: dict, non_us: bool) -> float:
        """Check and complete one sales item line (its item, amount and tax code); its amount."""
        detail = line.setdefault("SalesItemLineDetail", {})
        self.resolve_ref("Item", detail.get("ItemRef"), "ItemRef")
        quantity, price = _given(detail, "Qty"), _given(detail, "UnitPrice")
        if "Amount" not in line:
            if quantity is None or price is None:
                raise faults.required("Amount")
            line["Amount"] = money(money(quantity) * money(price))
        elif (
            quantity is not None
            and price is not None
            and abs(money(quantity) * money(price) - money(line["Amount"])) > 0.005
        ):
            raise faults.QboFault(
                assumptions.AMOUNT_MISMATCH_CODE,
                assumptions.AMOUNT_MISMATCH_MESSAGE,
                f"{assumptions.AMOUNT_MISMATCH_MESSAGE} : {quantity} x {price} is not {line['Amount']}",
            )
        line["Amount"] = money(line["Amount"])
        tax_ref = detail.get("TaxCodeRef")
        if non_us:
            if not tax_ref or not tax_ref.get("value"):
                raise faults.business(
                    assumptions.TAX_CODE_DETAILS.get(self.company.country, assumptions.TAX_CODE_DETAIL_DEFAULT)
                )
            self.resolve_ref("TaxCode", tax_ref, "TaxCodeRef")
        else:
            detail["TaxCodeRef"] = {"value": (tax_ref or {}).get("value") or "NON"}
        return line["Amount"]

    def _validate_invoice(self, record: dict, existing: dict | None, include: str) -> None:
        self._validate_sales_form("Invoice", record, existing, include)

    def _validate_salesreceipt(self, record: dict, existing: dict | None, include: str) -> None:
        self._validate_sales_form("SalesReceipt", record, existing, include)

    def _validate_creditmemo(self, record: dict, existing: dict | None, include: str) -> None:
        self._validate_sales_form("CreditMemo", record, existing, include)

    def _number(self, entity: str, record: dict, existing: dict | None, include: str) -> None:
        doc_number = record.get("DocNumber")
        if doc_number and len(str(doc_number)) > 21:
            raise faults.QboFault(
                "2050",
                "String length is either shorter or longer than supported by specification",
                "DocNumber is longer than 21 characters",
                element="DocNumber",
            )
        if doc_number:
            if self.company.custom_txn_numbers and "allowduplicatedocnum" not in include:
                for other_entity in SALES_FORMS:
                    for other_id, other in self.company.table(other_entity).items():
                        if (other_entity, other_id) != (entity, record["Id"]) and str(
                            other.get("DocNumber", "")
                        ).lower() == str(doc_number).lower():
                            raise faults.duplicate_doc_number(str(doc_number), _txn_type_label(other_entity), other_id)
            return
        if existing is not None and existing.get("DocNumber"):
            record["DocNumber"] = existing["DocNumber"]
        elif not self.company.custom_txn_numbers:
            record["DocNumber"] = str(self.company.next_doc_number)
            self.company.next_doc_number += 1

    def _custom_fields(self, record: dict) -> None:
        """Every enabled sales custom field is listed; values are kept by DefinitionId."""
        given = {str(f.get("DefinitionId")): f for f in record.get("CustomField", [])}
        listed = []
        for slot, label in enabled_custom_fields(self.company):
            entry = {"DefinitionId": slot, "Name": label, "Type": "StringType"}
            value = given.get(slot, {}).get("StringValue")
            if value:
                if len(value) > assumptions.CUSTOM_FIELD_MAX:
                    raise faults.QboFault(
                        "2050",
                        "String length is either shorter or longer than supported by specification",
                        f"CustomField {label} is longer than {assumptions.CUSTOM_FIELD_MAX} characters",
                        element="CustomField",
                    )
                entry["StringValue"] = value
            listed.append(entry)
        record["CustomField"] = listed

    def _undeposited_funds_ref(self) -> dict:
        for account_id, account in self.company.table("Account").items():
            if account.get("AccountSubType") == "UndepositedFunds":
                return {"value": account_id, "name": account["Name"]}
        raise faults.required("DepositToAccountRef")

    def _validate_payment(self, record: dict, existing: dict | None, include: str) -> None:
        customer = self.resolve_ref("Customer", record.get("CustomerRef"), "CustomerRef")
        if "TotalAmt" not in record:
            raise faults.required("TotalAmt")
        record["TotalAmt"] = money(record["TotalAmt"])
        record["TxnDate"] = str(record.get("TxnDate") or self.today().isoformat())[:10]
        self._check_closed(record["TxnDate"])
        record.setdefault("DepositToAccountRef", self._undeposited_funds_ref())
        self.resolve_ref("Account", record["DepositToAccountRef"], "DepositToAccountRef")
        if record.get("PaymentMethodRef"):
            self.resolve_ref("PaymentMethod", record["PaymentMethodRef"], "PaymentMethodRef")
        applied = 0.0
        for line in record.get("Line", []):
            line["Amount"] = money(line.get("Amount", 0))
            for link in line.get("LinkedTxn", []):
                txn_type = link.get("TxnType")
                if txn_type not in ("Invoice", "CreditMemo"):
                    raise faults.QboFault(
                        "2170", "Invalid Enumeration", f"Invalid Enumeration : {txn_type}", element="TxnType"
                    )
                target = self.find(txn_type, str(link.get("TxnId")))
                if target is None or target.get("_voided"):
                    raise faults.invalid_reference("LinkedTxn", str(link.get("TxnId")))
                if target.get("CustomerRef", {}).get("value") != customer["Id"]:
                    raise faults.business(
                        "Business Validation Error: The linked transaction belongs to another customer."
                    )
                open_amount = money(target.get("Balance", 0))
                if existing is not None:  # what this payment already applied is open to it again
                    open_amount += _applied_by(existing, txn_type, target["Id"])
                if txn_type == "Invoice":
                    if line["Amount"] - open_amount > 0.005:
                        raise faults.business(assumptions.OVERPAYMENT_DETAIL)
                    applied += line["Amount"]
                else:
                    applied -= line["Amount"]
        if applied - record["TotalAmt"] > 0.005:
            raise faults.business(assumptions.OVERPAYMENT_DETAIL)
        record["UnappliedAmt"] = money(record["TotalAmt"] - applied)
        record.setdefault("ProcessPayment", False)
        record.setdefault(
            "CurrencyRef",
            {"value": self.company.currency, "name": CURRENCY_NAMES.get(self.company.currency, self.company.currency)},
        )

    # --- derived values ------------------------------------------------------------------------------------------

    def _after_change(self, entity: str) -> None:
        if entity in ("Invoice", "CreditMemo", "Payment", "SalesReceipt", "Customer"):
            recompute_balances(self.company, self.now_text())


def _txn_type_label(entity: str) -> str:
    return {"CreditMemo": "Credit Memo", "SalesReceipt": "Sales Receipt"}.get(entity, entity)


def _applied_by(payment: dict, txn_type: str, txn_id: str) -> float:
    return sum(
        money(line.get("Amount"))
        for line in payment.get("Line", [])
        for link in line.get("LinkedTxn", [])
        if link.get("TxnType") == txn_type and str(link.get("TxnId")) == txn_id
    )


def recompute_balances(company: Company, now_text: str) -> None:
    """Apply every live payment to its invoices and credit memos; customers' balances follow.

    A document whose applied payments changed is itself updated: its SyncToken and LastUpdatedTime
    move, so change data capture lists it (assumptions.PAYMENT_UPDATES_DOCUMENT)."""
    applied: dict[tuple[str, str], float] = {}
    links: dict[tuple[str, str], list[str]] = {}
    for payment_id, payment in company.table("Payment").items():
        if payment.get("_voided"):
            continue
        for line in payment.get("Line", []):
            for link in line.get("LinkedTxn", []):
                key = (link.get("TxnType"), str(link.get("TxnId")))
                applied[key] = applied.get(key, 0.0) + money(line.get("Amount"))
                links.setdefault(key, []).append(payment_id)
    for entity in ("Invoice", "CreditMemo"):
        for txn_id, txn in company.table(entity).items():
            if txn.get("_voided"):
                continue
            key = (entity, txn_id)
            remaining = money(money(txn.get("TotalAmt")) - applied.get(key, 0.0))
            applications = [money(applied.get(key, 0.0)), sorted(set(links.get(key, [])))]
            if assumptions.PAYMENT_UPDATES_DOCUMENT and txn.get("_applications", applications) != applications:
                txn["SyncToken"] = str(int(txn["SyncToken"]) + 1)
                txn["MetaData"] = {**txn.get("MetaData", {}), "LastUpdatedTime": now_text}
            txn["_applications"] = applications
            txn["Balance"] = remaining
            if entity == "CreditMemo":
                txn["RemainingCredit"] = remaining
            else:
                others = [t for t in txn.get("LinkedTxn", []) if t.get("TxnType") != "Payment"]
                txn["LinkedTxn"] = others + [
                    {"TxnId": p, "TxnType": "Payment"} for p in sorted(set(links.get(key, [])))
                ]
    for customer_id, customer in company.table("Customer").items():
        open_total = sum(
            money(i.get("Balance"))
            for i in company.table("Invoice").values()
            if i.get("CustomerRef", {}).get("value") == customer_id
        )
        balance = money(customer.get("_opening", 0) + open_total)
        # Customers show whole balances as integers ("Balance":0 in Intuit's sample).
        customer["Balance"] = customer["BalanceWithJobs"] = int(balance) if balance == int(balance) else balance


def enabled_custom_fields(company: Company) -> list[tuple[str, str]]:
    """(slot, label) of each sales custom field turned on in Preferences (UseSalesCustomN / SalesCustomNameN)."""
    groups = company.preferences.get("SalesFormsPrefs", {}).get("CustomField", [])
    flags, names = {}, {}
    for group in groups:
        for field in group.get("CustomField", []):
            name = field.get("Name", "")
            if name.startswith("SalesFormsPrefs.UseSalesCustom"):
                flags[name[-1]] = field.get("BooleanValue", False)
            elif name.startswith("SalesFormsPrefs.SalesCustomName"):
                names[name[-1]] = field.get("StringValue", "")
    return [(slot, names.get(slot, "")) for slot in sorted(flags) if flags[slot]]


def parse_when(text: str, tz) -> datetime | None:
    """A date or datetime as QBO accepts it; naive ones are in the company's zone."""
    try:
        value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=tz)
