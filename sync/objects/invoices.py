"""Invoices between QuickBooks and HubSpot.

**From QuickBooks** each QBO invoice gets a HubSpot *mirror*, created with `hs_invoice_billable=false`,
HubSpot's documented way to track invoices managed outside HubSpot (no document, no validation, no
emails), so HubSpot never bills twice. It is created as a draft (HubSpot creates nothing else), gets
its line items and its contact, and is then opened — or voided. Its QBO number is kept in our property
`ledgersync_qbo_number` (HubSpot numbers its invoices itself: `hs_number` is read-only). Lines: one
HubSpot line item per QBO sales line (a bundle's lines expanded; subtotal lines skipped; a voided
invoice's zeroed lines left as they were). Discount and tax: HubSpot discount and tax records
(sync.objects.pricing). Payments: HubSpot payments (sync.objects.payments). The contact is the one
linked to the QBO customer; until there is one the invoice waits, and the new link releases it.

**From HubSpot** (issue 18, in progress) an invoice made in HubSpot becomes a QBO invoice once it is
open (drafts wait): its one contact's customer, its line items as sales lines (the item linked to the
line's product, else the item with its SKU, else the company's "Custom line item"), non-taxable, its
number as `DocNumber` when the company uses custom transaction numbers (else QBO numbers it, and our
property shows QBO's number). A void voids it in QBO. A non-US company cannot take invoices from
HubSpot (every line would need a tax code): set-up refuses that direction.

QBO's own figures — amount paid, balance due, the link, payments, discount and tax — flow from QBO
only, whatever the direction (`field_directions`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sync.clients import errors
from sync.engine import HUBSPOT, LINES, QUICKBOOKS, Action, Filter, Line, Plan, Record, SyncRules
from sync.money import cents, money
from sync.objects import payments, pricing
from sync.objects.base import Association, LineReference, ObjectType, RunContext, blank_to_none, quoted
from sync.objects.products import check_account, first_account
from sync.times import parse_time

NUMBER_PROPERTY = "ledgersync_qbo_number"
AMOUNT_PAID_PROPERTY = "ledgersync_qbo_amount_paid"
BALANCE_DUE_PROPERTY = "ledgersync_qbo_balance_due"
LINK_PROPERTY = "ledgersync_qbo_link"
QBO_INVOICE_URL = "https://app.qbo.intuit.com/app/invoice?txnId={}"
SINCE_SET_UP = "created_since_set_up"
CUSTOM_ITEM = "Custom line item"  # the QBO item of HubSpot lines that name no product QBO knows
VOID_NOTE = "Voided"  # QBO prefixes a voided document's private note with it and zeroes its amounts


def date_only(value: Any) -> str | None:
    """A date as "YYYY-MM-DD" from QBO's date or HubSpot's datetime (midnight UTC, as we write it)."""
    if value in (None, ""):
        return None
    text = str(value)
    if len(text) == 10:
        return text
    moment = parse_time(text)
    return moment.date().isoformat() if moment else None


def is_voided(invoice: Mapping[str, Any]) -> bool:
    return str(invoice.get("PrivateNote") or "").startswith(VOID_NOTE) and not Decimal(
        str(invoice.get("TotalAmt") or 0)
    )


class Invoices(ObjectType):
    name = "invoices"
    hubspot_object = "invoices"
    qbo_entity = "Invoice"
    id_property = "ledgersync_qbo_invoice_id"
    id_property_label = "QuickBooks invoice id (Ledgersync)"
    id_property_group = "quickbooks"  # our "QuickBooks" group, on invoices and on payments
    property_groups = (("invoices", "quickbooks", "QuickBooks"), (payments.PAYMENTS_OBJECT, "quickbooks", "QuickBooks"))
    qbo_has_active = False
    recommended_direction = "qbo_to_hubspot"
    directions = ("qbo_to_hubspot", "two_way", "hubspot_to_qbo")
    checks_with_quickbooks = True  # the Custom line item's income account
    qbo_creates_alone = True  # nothing unique finds a lost invoice create again: request ids do
    field_directions = {
        **{
            name: "qbo_to_hubspot"
            for name in ("number", "amount_paid", "balance_due", "qbo_link", "payments", "pricing")
        },
        "hubspot_payments": "hubspot_to_qbo",  # payments collected in HubSpot, as QBO payments
        "hubspot_discount": "hubspot_to_qbo",  # a HubSpot invoice's discounts, as one QBO discount line
    }
    hubspot_properties = {
        "number": NUMBER_PROPERTY,
        "invoice_date": "hs_invoice_date",
        "due_date": "hs_due_date",
        "currency": "hs_currency",
        "memo": "hs_comments",
        "status": "hs_invoice_status",
        "amount_paid": AMOUNT_PAID_PROPERTY,
        "balance_due": BALANCE_DUE_PROPERTY,
        "qbo_link": LINK_PROPERTY,
        # read, never written: what an invoice already in HubSpot is matched by
        "hubspot_number": "hs_number",
        "total": "hs_amount_billed",
        "billable": "hs_invoice_billable",  # read, never written: another integration's mirror stays out
        "created": "hs_createdate",  # read, never written: for the set-up day filter
        "subtotal": "hs_subtotal",  # read, never written: what a percentage discount is of
    }
    default_fields = (
        "number", "invoice_date", "due_date", "currency", "memo", "status", "amount_paid", "balance_due", "qbo_link",
        "payments", "pricing", "hubspot_payments", "hubspot_discount",
    )  # fmt: skip
    # An invoice's payments, discounts and taxes are HubSpot records of their own (sync.objects.payments,
    # sync.objects.pricing).
    written_by_object = ("payments", "pricing", "hubspot_payments", "hubspot_discount")
    other_hubspot_properties = (
        (payments.PAYMENTS_OBJECT, payments.PAYMENT_ID_PROPERTY, "QuickBooks payment id (Ledgersync)",
         "quickbooks", "text"),
    )  # fmt: skip
    hubspot_create_properties = {"hs_invoice_billable": "false"}  # a mirror: HubSpot never bills it
    extra_hubspot_properties = (
        (NUMBER_PROPERTY, "QuickBooks invoice number", "text"),
        (AMOUNT_PAID_PROPERTY, "Amount paid (QuickBooks)", "text"),
        (BALANCE_DUE_PROPERTY, "Balance due (QuickBooks)", "text"),
        (LINK_PROPERTY, "QuickBooks invoice", "text"),
    )
    # A payment received, changed or voided in QBO changes what its invoices show as paid.
    quickbooks_triggers = ("Payment",)
    associations = (Association("customer", "contacts", "contacts", "CustomerRef"),)
    event_types = {"invoices": HUBSPOT, "invoice": QUICKBOOKS}
    hubspot_triggers = ("line_items",)
    recommended_filters = {QUICKBOOKS: SINCE_SET_UP, HUBSPOT: SINCE_SET_UP}
    filter_labels = {SINCE_SET_UP: "invoices created on or after the set-up day"}
    line_fields = ("name", "description", "quantity", "unit_price", "item")
    # A QBO line's name is its item's ("Custom line item" for a line without a product): it goes to HubSpot,
    # and a HubSpot line item's own name does not rename the QBO item.
    line_field_directions = {"name": "qbo_to_hubspot"}
    line_properties = {
        "name": "name",
        "description": "description",
        "quantity": "quantity",
        "unit_price": "price",
        "item": "hs_product_id",
        "sku": "hs_sku",  # read, not merged: finds the QBO item of a line without a product
    }
    # The line's product: the item's HubSpot product once the products sync links them (else none).
    line_references = (LineReference("item", "products", "hs_product_id"),)
    line_association_type = 410  # line item → invoice

    def rules(self, settings) -> SyncRules:
        rules = super().rules(settings)
        stored, set_up_at = settings.filters or {}, settings.set_up_at
        filters = dict(rules.filters)
        if stored.get(QUICKBOOKS) == SINCE_SET_UP:
            accepts = lambda record: _created_since(record, set_up_at)  # noqa: E731
            filters[QUICKBOOKS] = Filter(self.filter_labels[SINCE_SET_UP], accepts)
        # From HubSpot, always: open invoices that HubSpot bills (a draft waits to be opened; a non-billable
        # invoice is another integration's mirror of a QBO invoice, which must not go back).
        since = stored.get(HUBSPOT) == SINCE_SET_UP
        label = "invoices billed in HubSpot, once open" + (", created on or after the set-up day" if since else "")
        filters[HUBSPOT] = Filter(
            label, lambda record: _from_hubspot_accepted(record) and (not since or _created_since(record, set_up_at))
        )
        return replace(rules, filters=filters)

    def refuse_direction(self, direction: str, country: str | None) -> str | None:
        if direction != "qbo_to_hubspot" and country not in (None, "US"):
            return (
                "invoices cannot sync from HubSpot into a QuickBooks company outside the US: QuickBooks needs a tax"
                " code on every line there (error 6000), and HubSpot invoices' tax cannot be carried over. Sync"
                " invoices QuickBooks → HubSpot only."
            )
        return None

    def check_with_quickbooks(self, qbo, options: dict[str, Any], set_up_at) -> dict[str, Any]:
        """The income account of the "Custom line item" (default: the first active income account)."""
        options = dict(options)
        if not options.get("custom_item_income_account_id"):
            options["custom_item_income_account_id"] = first_account(qbo, "Income")
        if options["custom_item_income_account_id"]:
            check_account(qbo, options["custom_item_income_account_id"], ("Income", "Other Income"), "income account")
        # where payments collected in HubSpot are deposited (default: Undeposited Funds, as QBO does)
        if not options.get("deposit_account_id"):
            options["deposit_account_id"] = first_account(qbo, "Other Current Asset", "UndepositedFunds")
        if options["deposit_account_id"]:
            check_account(qbo, options["deposit_account_id"], ("Other Current Asset", "Bank"), "deposit account")
        return options

    def quickbooks_operation(self, changes: Mapping[str, Any]) -> str | None:
        return "void" if changes.get("status") == "voided" else None

    # --- records ------------------------------------------------------------------------------------------

    def from_hubspot(self, raw: dict, extra: Mapping[str, Any] | None = None) -> Record:
        record = super().from_hubspot(raw, extra)
        fields = dict(record.fields)
        for name in ("invoice_date", "due_date"):
            fields[name] = date_only(fields[name])
        for name in ("amount_paid", "balance_due"):
            fields[name] = money(fields[name])
        fields["total"] = cents(fields["total"])
        if fields.get("status") == "paid":  # HubSpot's own, from payments: as far as QBO is concerned, open
            fields["status"] = "open"
        return replace(record, fields=fields)

    # --- invoices already on both sides ------------------------------------------------------------------

    def natural_key(self, record: Record) -> str | None:
        """QBO's DocNumber and HubSpot's invoice number (a business moving from another integration)."""
        number = record.fields.get("hubspot_number" if record.side == HUBSPOT else "number")
        return str(number).strip() or None if number else None

    def hubspot_key_search(self, keys: list[str]) -> list[dict]:
        return [{"filters": [{"propertyName": "hs_number", "operator": "IN", "values": keys}]}]

    def _refuse_partial_matches(self, plan: Plan, hub_records: dict[str, Record]) -> None:
        """A match by number is the same invoice only with the same contact and the same total; anything
        less is for a person to decide (nothing is written to either invoice)."""
        for index, action in enumerate(plan.actions):
            if action.kind != "link" or action.source is None or action.source.side != QUICKBOOKS:
                continue
            qbo, hub = action.source, hub_records.get(action.target_id or "")
            if hub is None:
                continue
            differences = []
            if hub.fields.get("customer") != qbo.fields.get("customer"):
                differences.append("its contact is not the QuickBooks customer's")
            if hub.fields.get("total") != qbo.fields.get("total"):
                differences.append(f"its amount billed is {hub.fields.get('total')}, not {qbo.fields.get('total')}")
            if differences:
                plan.actions[index] = replace(
                    action,
                    kind="fail",
                    target_side=None,
                    target_id=None,
                    changes={},
                    category="ambiguous match",
                    reason=f"HubSpot invoice {hub.id} has the number {self.natural_key(qbo)}, but "
                    + " and ".join(differences),
                    fix="If they are the same invoice, make the contact and the amount agree, then retry; if not,"
                    " give one of them another number.",
                )

    def quickbooks_triggered(self, entity: str, raw: dict) -> set[str]:
        """The invoices a payment is applied to (each line's linked transactions)."""
        return {
            str(linked["TxnId"])
            for line in raw.get("Line") or []
            for linked in line.get("LinkedTxn") or []
            if linked.get("TxnType") == "Invoice" and linked.get("TxnId")
        }

    def from_quickbooks(self, invoice: dict) -> Record:
        if invoice.get("status") == "Deleted":
            return Record(QUICKBOOKS, str(invoice["Id"]), {}, deleted=True)
        voided = is_voided(invoice)
        fields = {
            "number": blank_to_none(invoice.get("DocNumber")),
            "invoice_date": date_only(invoice.get("TxnDate")),
            "due_date": date_only(invoice.get("DueDate")),
            "currency": (invoice.get("CurrencyRef") or {}).get("value"),
            "memo": blank_to_none((invoice.get("CustomerMemo") or {}).get("value")),
            # Paid comes with payments (a HubSpot invoice is marked paid by its payments, never by PATCH).
            "status": "voided" if voided else "open",
            "created": (invoice.get("MetaData") or {}).get("CreateTime"),  # for the set-up filter
            # What was paid, as QBO counts it (payments and credits applied): the mirror shows it in our
            # properties whether or not the portal can record payments.
            "amount_paid": money(
                Decimal(str(invoice.get("TotalAmt") or 0)) - Decimal(str(invoice.get("Balance") or 0))
            ),
            "balance_due": money(invoice.get("Balance") or 0),
            "qbo_link": QBO_INVOICE_URL.format(invoice["Id"]),
            "pricing": pricing.in_quickbooks(invoice),
            "hubspot_discount": pricing.discount_in_quickbooks(invoice),
            "total": cents(
                invoice.get("TotalAmt") or 0
            ),  # read, never written: for matching  # a voided invoice's are kept (adjust_plan)
        }
        return Record(QUICKBOOKS, str(invoice["Id"]), fields)

    def lines_known(self, raw: dict) -> bool:
        return not is_voided(raw)  # QBO zeroes a voided invoice's lines: they stay as they were

    def lines_from_quickbooks(self, raw: dict) -> list[Line]:
        """Sales lines, a bundle (group line) expanded to the lines it is made of."""
        entries = []
        for entry in raw.get("Line") or []:
            if entry.get("DetailType") == "GroupLineDetail":
                entries += (entry.get("GroupLineDetail") or {}).get("Line") or []
            else:
                entries.append(entry)
        lines = (self.line_from_quickbooks(entry) for entry in entries)
        return [line for line in lines if line is not None]

    def line_from_quickbooks(self, raw: dict) -> Line | None:
        if raw.get("DetailType") != "SalesItemLineDetail":
            return None  # subtotal, discount and description-only lines are not line items
        detail = raw.get("SalesItemLineDetail") or {}
        return Line(
            str(raw["Id"]),
            {
                "name": (detail.get("ItemRef") or {}).get("name"),
                "item": (detail.get("ItemRef") or {}).get("value"),
                "description": blank_to_none(raw.get("Description")),
                "quantity": money(detail.get("Qty")) or "1",
                "unit_price": money(
                    detail.get("UnitPrice") if detail.get("UnitPrice") is not None else raw.get("Amount")
                ),
            },
        )

    def line_from_hubspot(self, raw: dict) -> Line:
        line = super().line_from_hubspot(raw)
        fields = dict(line.fields)
        fields["quantity"], fields["unit_price"] = money(fields["quantity"]), money(fields["unit_price"])
        return Line(line.id, fields)

    def hubspot_create_body(self, changes: Mapping[str, Any]) -> dict[str, str]:
        return self.to_hubspot({name: value for name, value in changes.items() if name != "status"})

    def to_hubspot(self, changes: Mapping[str, Any]) -> dict[str, str]:
        read_only = ("hubspot_number", "total", "billable", "created", "subtotal")
        values = {name: value for name, value in changes.items() if name not in read_only}
        for name in ("invoice_date", "due_date"):
            if values.get(name):
                values[name] = f"{values[name]}T00:00:00Z"
        return super().to_hubspot(values)

    def after_hubspot_create(self, context: RunContext, record_id: str, changes: Mapping[str, Any]) -> dict[str, str]:
        """The contact's primary company is associated too (none when it has none; a person may change it
        later in HubSpot, and that is not undone); then the draft is opened, or voided."""
        customer = changes.get("customer")
        contact = context.links.of("contacts").partners(QUICKBOOKS, {customer}).get(customer) if customer else None
        primary = context.hubspot.primary_associations("contacts", "companies", [contact]) if contact else {}
        if contact in primary:
            context.hubspot.associate(self.hubspot_object, record_id, "companies", primary[contact])
        return {"hs_invoice_status": changes.get("status") or "open"}

    def prepare(self, context: RunContext, rules: SyncRules) -> SyncRules:
        options = {
            "hubspot_currencies": sorted(context.hubspot.currencies()),
            "payment_methods": payments.payment_methods(context),
            "home_currency": context.home_currency,
        }
        if rules.direction != "qbo_to_hubspot":  # invoices from HubSpot: who numbers them, which currencies
            preferences = context.qbo.preferences()
            options["custom_txn_numbers"] = bool((preferences.get("SalesFormsPrefs") or {}).get("CustomTxnNumbers"))
            options["qbo_multi_currency"] = bool((preferences.get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled"))
        context.options = {**context.options, **options}
        return rules

    def failure_category(self, error) -> str | None:
        return {"6140": "duplicate document number", "6210": "closed accounting period"}.get(error.code)

    def failure_message(self, category: str, body: Mapping[str, Any] | None, message: str) -> str:
        advice = {
            "duplicate document number": "QuickBooks already has a document with this number (custom transaction"
            " numbers are on). Turn custom transaction numbers off in QuickBooks (Account and settings, Sales,"
            " Custom transaction numbers) so that QuickBooks numbers the invoices it gets, then retry.",
            "closed accounting period": "The invoice is dated on or before the date QuickBooks' books are closed."
            " Change the invoice date in HubSpot, or the closing date in QuickBooks (Account and settings,"
            " Advanced, Close the books), then retry.",
        }.get(category)
        return f"{message}. What to do: {advice}" if advice else message

    # --- invoices from HubSpot: items and billing contacts ---------------------------------------------------

    def _choose_items(self, context: RunContext, plan: Plan) -> None:
        """Each new QBO line without a linked product gets the item with its SKU, else the Custom line item."""
        pending = [
            entry["fields"]
            for action in plan.actions
            if action.target_side == QUICKBOOKS and action.kind in ("create", "update", "link")
            for entry in (action.changes.get(LINES) or {}).get("add", [])
            if not entry["fields"].get("item")
        ]
        if not pending:
            return
        skus = sorted({str(fields["sku"]) for fields in pending if fields.get("sku")})
        by_sku: dict[str, str] = {}
        for start in range(0, len(skus), 100):
            statement = f"select * from Item where Sku in ({quoted(skus[start : start + 100])})"  # noqa: S608
            for row in context.qbo.query(statement).get("Item", []):
                by_sku.setdefault(str(row.get("Sku") or "").lower(), str(row["Id"]))
        for fields in pending:
            found = by_sku.get(str(fields.get("sku") or "").lower())
            fields["qbo_item"] = found or self._custom_item(context)

    def _custom_item(self, context: RunContext) -> str:
        """The company's "Custom line item", made once on first need (a worker that loses the race to make
        it takes the one the other made: QBO item names are unique)."""
        if context.options.get("custom_item_id"):
            return context.options["custom_item_id"]

        def existing() -> str | None:
            statement = f"select * from Item where Name = {quoted([CUSTOM_ITEM])}"  # noqa: S608
            rows = context.qbo.query(statement).get("Item", [])
            return str(rows[0]["Id"]) if rows else None

        item_id = existing()
        if item_id is None:
            body = {
                "Name": CUSTOM_ITEM,
                "Type": "Service",
                "Description": "Lines of HubSpot invoices that name no product QuickBooks knows (Ledgersync)",
                "IncomeAccountRef": {"value": context.options.get("custom_item_income_account_id")},
            }
            try:
                item_id = str(context.qbo.create("Item", body)["Id"])
            except errors.Duplicate:
                item_id = existing()
                if item_id is None:
                    raise
        context.options = {**context.options, "custom_item_id": item_id}
        return item_id

    def _refuse_edits_in_quickbooks(self, plan: Plan, links) -> None:
        """An invoice made in HubSpot is HubSpot's: lines, prices, quantities and tax changed in QBO are not
        taken back (nor overwritten) — the record fails, writing nothing either way, until the edit is undone
        in QBO. What QBO users may change (payments applied, notes, messages, service dates) is kept."""
        made_in_hubspot = {link.id for link in links if link.created_side == QUICKBOOKS}
        kept = {LINES: "lines", "pricing": "tax or discount"}
        edited: dict[int, tuple[Action, list[str]]] = {}
        for action in plan.actions:
            if action.link_id in made_in_hubspot and action.target_side == HUBSPOT:
                what = [label for name, label in kept.items() if name in action.changes]
                if what:
                    edited[action.link_id] = (action, what)
        if not edited:
            return
        plan.actions[:] = [a for a in plan.actions if a.link_id not in edited]
        for action, what in edited.values():
            plan.add(
                replace(
                    action,
                    kind="fail",
                    target_side=None,
                    target_id=None,
                    changes={},
                    category="edited in QuickBooks",
                    reason=f"its {' and '.join(what)} were changed in QuickBooks, but the invoice was made in HubSpot,"
                    " which keeps them",
                    fix="Undo the change in QuickBooks (the invoice's lines, prices, quantities and tax as HubSpot has"
                    " them), and make it in HubSpot instead; the invoice then syncs again.",
                )
            )

    def _refuse_foreign_currencies(self, context: RunContext, plan: Plan) -> None:
        """From HubSpot: an invoice in another currency than the company's needs QBO's multi-currency."""
        home = context.options.get("home_currency")
        if context.options.get("qbo_multi_currency") or not home:
            return
        for index, action in enumerate(plan.actions):
            source = action.source
            currency = source.fields.get("currency") if source is not None else None
            if action.kind == "create" and action.target_side == QUICKBOOKS and currency and currency != home:
                plan.actions[index] = replace(
                    action,
                    kind="fail",
                    target_side=None,
                    changes={},
                    category="currency not enabled in QuickBooks",
                    reason=f"the invoice is in {currency}, and the QuickBooks company keeps its books in {home}"
                    " only (multi-currency is off)",
                    fix="Turn multi-currency on in QuickBooks (Account and settings, Advanced, Currency) and give the"
                    f" customer the currency {currency}, or invoice in {home}; then retry.",
                )

    def _refuse_refunds(self, plan: Plan) -> None:
        """A refund in HubSpot is not written to QBO (it needs a refund receipt there): it fails, visibly."""
        for index, action in enumerate(plan.actions):
            value = action.changes.get("hubspot_payments") if action.target_side == QUICKBOOKS else None
            refunded = [a for a in json.loads(value or "[]") if a.get("refunded")]
            if refunded:
                named = ", ".join(f"HubSpot payment {a['key']} ({a['refunded']} refunded)" for a in refunded)
                plan.actions[index] = replace(
                    action,
                    kind="fail",
                    target_side=None,
                    target_id=None,
                    changes={},
                    category="refund needs a QuickBooks refund receipt",
                    reason=f"{named}: refunds are not written to QuickBooks",
                    fix="Record the refund in QuickBooks as a refund receipt (or a credit memo and a refund) for the"
                    " customer; then retry.",
                )

    def _refuse_unknown_billing_contacts(self, context: RunContext, plan: Plan) -> None:
        """From HubSpot: several contacts, or one no contact sync will bring into QBO, fail saying so."""
        never, reason = _waits_in_vain(context, plan, HUBSPOT)
        for index, action in enumerate(plan.actions):
            source = action.source
            if source is None or source.side != HUBSPOT or action.kind not in ("create", "wait", "link"):
                continue
            if source.fields.get("customer_several"):
                plan.actions[index] = replace(
                    action, kind="fail", waiting_for=(), target_side=None, changes={},
                    category="ambiguous billing contact",
                    reason="the invoice has several contacts, so its billing contact is not known (we do not guess)",
                    fix="Keep one contact on the invoice (the one who pays it); the invoice then syncs.",
                )  # fmt: skip
            elif action.kind == "wait" and any(d.id in never for d in action.waiting_for if d.side == HUBSPOT):
                plan.actions[index] = replace(
                    action, kind="fail", waiting_for=(), category="billing contact not synced", reason=reason,
                    fix="Sync the invoice's contact to QuickBooks (set up the contact sync HubSpot → QuickBooks or"
                    " two-way, or change its filters so the contact is in), then retry.",
                )  # fmt: skip

    # --- payments ----------------------------------------------------------------------------------------------

    def enrich_quickbooks(self, context: RunContext, records: dict[str, dict]) -> dict[str, dict[str, Any]]:
        """Each invoice's payments as QBO applies them (its `LinkedTxn` names the payments)."""
        found, collected = payments.applications_in_quickbooks(context, records)
        return {
            invoice_id: {"payments": value, "hubspot_payments": collected.get(invoice_id)}
            for invoice_id, value in found.items()
        }

    def enrich_hubspot(self, context: RunContext, records: dict[str, dict], unlinked: list[str]) -> dict[str, dict]:
        """Each mirror's payments that we recorded (by the QBO payment id in our property)."""
        found = payments.payments_in_hubspot(context, sorted(records))
        priced = pricing.in_hubspot(context, sorted(records))
        return {
            invoice_id: {
                "payments": payments.canonical(a for _id, a in found.get(invoice_id, ({}, None))[0].values()),
                "hubspot_payments": found.get(invoice_id, ({}, None))[1],
                "pricing": pricing.value_in_hubspot(priced.get(invoice_id, {})),
                "hubspot_discount": pricing.discount_in_hubspot(
                    priced.get(invoice_id, {}), records[invoice_id]["properties"].get("hs_subtotal")
                ),
            }
            for invoice_id in records
        }

    def write_own_fields(
        self,
        context: RunContext,
        side: str,
        record_id: str,
        values: Mapping[str, Any],
        merged: Mapping[str, Any],
        fresh: bool = False,
    ) -> None:
        if side == QUICKBOOKS:
            if "hubspot_discount" in values:  # before payments: they are applied to the discounted total
                pricing.write_discount_line(context, record_id, values["hubspot_discount"])
            if values.get("hubspot_payments"):
                payments.write_collected(
                    context, record_id, values["hubspot_payments"], merged.get("customer"), merged.get("currency")
                )
            return
        customer = merged.get("customer")
        contact = context.links.of("contacts").partners(QUICKBOOKS, {customer}).get(customer) if customer else None
        if "pricing" in values:  # before payments: the amount billed they are counted against
            pricing.write_pricing(context, record_id, values["pricing"], fresh)
        if "payments" in values:
            payments.write_payments(context, record_id, values["payments"], contact, merged.get("currency"), fresh)

    def to_quickbooks(self, changes, merged, creating, options) -> dict[str, Any]:
        """A HubSpot invoice's header as QBO takes it (a void is an operation: `quickbooks_operation`)."""
        body: dict[str, Any] = {}
        if "invoice_date" in changes:
            body["TxnDate"] = changes["invoice_date"] or ""
        if "due_date" in changes:
            body["DueDate"] = changes["due_date"] or ""
        if "memo" in changes:
            body["CustomerMemo"] = {"value": changes["memo"] or ""}
        if creating:
            # With custom transaction numbers QBO takes HubSpot's number; without, it numbers the invoice
            # itself and our property shows QBO's number beside HubSpot's.
            if options.get("custom_txn_numbers") and merged.get("hubspot_number"):
                body["DocNumber"] = merged["hubspot_number"]
            currency = merged.get("currency")
            if currency and currency != options.get("home_currency"):
                body["CurrencyRef"] = {"value": currency}
        return body

    def line_to_quickbooks(self, fields: Mapping[str, Any], existing: dict | None) -> dict[str, Any]:
        """A HubSpot line item as a non-taxable sales line; its item was chosen by `adjust_plan` (the
        product's linked item, else the item with its SKU, else the Custom line item)."""
        line = dict(existing or {"DetailType": "SalesItemLineDetail"})
        detail = dict(line.get("SalesItemLineDetail") or {})
        item = fields.get("item") or fields.get("qbo_item")
        if item:
            detail["ItemRef"] = {"value": str(item)}
        quantity = Decimal(str(fields.get("quantity") or "1"))
        price = Decimal(str(fields.get("unit_price") or "0"))
        detail.update(Qty=quantity, UnitPrice=price, TaxCodeRef={"value": "NON"})
        amount = (quantity * price).quantize(Decimal("0.01"))
        line.update(Description=fields.get("description") or "", SalesItemLineDetail=detail, Amount=amount)
        return line

    # --- a deleted QBO invoice -------------------------------------------------------------------------------

    def _refuse_what_cannot_sync(self, context: RunContext, plan: Plan) -> None:
        enabled = set(context.options.get("hubspot_currencies") or [])
        never, reason = _waits_in_vain(context, plan, QUICKBOOKS)
        for index, action in enumerate(plan.actions):
            source = action.source
            currency = (source.fields.get("currency") if source is not None else None) or None
            if action.kind == "wait" and any(d.id in never for d in action.waiting_for if d.object_type == "contacts"):
                plan.actions[index] = replace(
                    action,
                    kind="fail",
                    waiting_for=(),
                    category="no contact for the customer",
                    reason=reason,
                    fix="Sync the customer's contact (set up the contact sync QuickBooks → HubSpot or two-way, change"
                    " its filters, or link the customer to a contact), then retry.",
                )
            elif (
                action.kind in ("create", "update")
                and action.target_side == HUBSPOT
                and enabled
                and currency
                and currency not in enabled
            ):
                plan.actions[index] = replace(
                    action,
                    kind="fail",
                    category="currency not enabled in HubSpot",
                    reason=f"the invoice is in {currency}, and HubSpot has {', '.join(sorted(enabled))}",
                    fix=f"Add {currency} to HubSpot's currencies (Settings, Account defaults, Currencies); then retry.",
                )

    def adjust_plan(self, context: RunContext, plan: Plan, links, hub_records, qbo_records) -> Plan:
        """A QBO invoice deleted: its mirror is voided, never deleted (HubSpot keeps its history). An invoice
        whose customer can never have a contact, or in a currency HubSpot lacks, fails saying what to do."""
        self._refuse_what_cannot_sync(context, plan)
        self._refuse_partial_matches(plan, hub_records)
        self._refuse_unknown_billing_contacts(context, plan)
        self._refuse_edits_in_quickbooks(plan, links)
        self._refuse_refunds(plan)
        self._refuse_foreign_currencies(context, plan)
        self._choose_items(context, plan)
        by_id = {link.id: link for link in links}
        for index, action in enumerate(plan.actions):
            link = by_id.get(action.link_id) if action.link_id else None
            voided = action.source is not None and action.source.fields.get("status") == "voided"
            if action.kind == "update" and link is not None and "pricing" in action.changes and voided:
                # QBO zeroed a voided invoice's amounts: the mirror keeps its discount and tax
                changes = {k: v for k, v in action.changes.items() if k != "pricing"}
                kept = (link.base_values or {}).get("pricing")
                plan.actions[index] = replace(
                    action, changes=changes, base_after={**action.base_after, "pricing": kept}
                )
        for action in list(plan.actions):
            link = by_id.get(action.link_id) if action.link_id else None
            source = action.source
            if link is None or source is None or source.side != QUICKBOOKS or not source.deleted:
                continue
            if action.kind not in ("tombstone", "delete") or (link.base_values or {}).get("status") == "voided":
                continue
            reason = "deleted in QuickBooks: the HubSpot invoice is voided, never deleted"
            plan.actions[plan.actions.index(action)] = replace(
                action, kind="tombstone", target_side=None, reason=reason
            )
            plan.add(
                Action(
                    "update",
                    source,
                    target_side=HUBSPOT,
                    target_id=link.hubspot_id,
                    link_id=link.id,
                    changes={"status": "voided"},
                    base_after={**(link.base_values or {}), "status": "voided"},
                    reason=reason,
                )
            )
        return plan


def _waits_in_vain(context: RunContext, plan: Plan, side: str) -> tuple[set[str], str]:
    """The contacts (ids on `side`) that invoices wait for in vain, and why: the contact sync leaves them out,
    or no contact sync carries them across (none set up, or one running the other way only)."""
    waiting_on = {
        d.id
        for action in plan.actions
        if action.kind == "wait"
        for d in action.waiting_for
        if d.object_type == "contacts" and d.side == side
    }
    if not waiting_on:
        return set(), ""
    contacts = context.links.of("contacts")
    sync = contacts.sync_direction()
    other_way, across = (
        ("qbo_to_hubspot", "QuickBooks → HubSpot") if side == HUBSPOT else ("hubspot_to_qbo", "HubSpot → QuickBooks")
    )
    whose = "its contact has no QuickBooks customer" if side == HUBSPOT else "its customer has no contact"
    if sync is None or sync[0] == other_way:
        return waiting_on, f"{whose}, and " + (
            "no contact sync is set up" if sync is None else f"the contact sync runs {across} only"
        )
    left_out = (
        "its contact is left out by the contact sync's filters, so it will never have a QuickBooks customer"
        if side == HUBSPOT
        else "its customer is left out by the contact sync's filters, so it will never have a contact"
    )
    return contacts.in_state(side, waiting_on, "excluded"), left_out


def _from_hubspot_accepted(record: Record) -> bool:
    """Open (or paid: canonically open), and billed by HubSpot. A voided invoice never synced stays out."""
    return record.fields.get("status") == "open" and record.fields.get("billable") != "false"


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


def _created_since(record: Record, set_up_at: datetime) -> bool:
    """Created on or after the set-up day, midnight in the company's time zone (the offset its own
    timestamps carry)."""
    created = parse_time(record.fields.get("created"))
    if created is None:
        return False
    local_set_up = set_up_at.astimezone(created.tzinfo)
    midnight = datetime.combine(local_set_up.date(), time(0), tzinfo=created.tzinfo)
    return created >= midnight
