"""Invoice, line item and payment rules (NOTES §1.5; the undocumented parts in `assumptions`).

- An invoice is created as a draft; it is opened by PATCHing `hs_invoice_status`
  to `open`, which needs one contact and at least one line item associated
  (unless it is non-billable).
- A line item's `amount` is quantity × price − discount; its price cannot be negative.
- An invoice's billed amount is the sum of its line items; succeeded payments
  associated with it are what it has been paid (see `assumptions`).
- Commerce payments exist only where HubSpot Payments or Stripe is set up.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from emulators.hubspot import assumptions
from emulators.hubspot.errors import ApiError, validation
from emulators.hubspot.schema import OBJECT_TYPES, ObjectType
from emulators.hubspot.state import Account, Record, iso_from_ms
from emulators.hubspot.values import parse_number

if TYPE_CHECKING:
    from emulators.hubspot.crm import Crm

INVOICES, LINE_ITEMS, PAYMENTS = OBJECT_TYPES["invoices"], OBJECT_TYPES["line_items"], OBJECT_TYPES["commerce_payments"]
PRICING = assumptions.PRICING_ORDER
DAY_MS = 86_400_000
CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def _number(record: Record, name: str) -> Decimal:
    """A number property as an exact decimal (stored values are already validated numbers)."""
    text = record.properties.get(name, "") or "0"
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal(str(parse_number(text) or 0))


def require_payments(account: Account) -> None:
    if account.payments_processor is None:
        raise ApiError(
            assumptions.PAYMENTS_NOT_SET_UP_STATUS,
            "VALIDATION_ERROR",
            "Commerce payments require HubSpot payments or Stripe payment processing to be set up in this account.",
        )


def defaults_on_create(
    account: Account, object_type: ObjectType, values: dict[str, str], now_ms: int
) -> dict[str, str]:
    """Values HubSpot fills in on a new record."""
    if object_type is INVOICES:
        number = account.next_invoice_number
        account.next_invoice_number += 1
        return {
            **{k: v for k, v in default_dates(now_ms).items() if not values.get(k)},
            "hs_invoice_status": values.get("hs_invoice_status", "draft"),
            "hs_number": f"{assumptions.INVOICE_NUMBER_PREFIX}{number}",
            "hs_amount_billed": "0.00",
            "hs_subtotal": "0.00",
            "hs_amount_paid": "0.00",
            "hs_balance_due": "0.00",
            "hs_invoice_billable": values.get("hs_invoice_billable", "true"),
            "hs_invoice_source": "API",
        }
    if object_type is PAYMENTS:
        return {
            "hs_latest_status": values.get("hs_latest_status", "processing"),
            "hs_payment_id": str(1_000_000 + len(account.tables["commerce_payments"].records)),
            "hs_has_associated_invoice": "false",
            "hs_number_of_associated_invoices": "0",
            "hs_payment_source_app": "MIGRATION",
        }
    return {}


def before_write(crm: Crm, object_type: ObjectType, record: Record | None, values: dict) -> None:
    """Refuse a create (record None) or update that HubSpot would refuse."""
    if object_type is LINE_ITEMS and values.get("price") is not None and (parse_number(values["price"]) or 0) < 0:
        raise validation("A line item's price cannot be negative.", context={"price": [values["price"]]})
    if object_type is INVOICES and "hs_invoice_status" in values:
        new = values["hs_invoice_status"] or "draft"
        if record is None:
            if new != "draft":
                raise validation(
                    "An invoice is created as a draft; associate a contact and line items, "
                    "then set hs_invoice_status to open."
                )
            return
        old = record.properties.get("hs_invoice_status", "draft")
        if new not in assumptions.INVOICE_STATUS_TRANSITIONS[old]:
            raise validation(
                f"Cannot change hs_invoice_status from {old} to {new}.", context={"hs_invoice_status": [new]}
            )
        if new == "open" and old != "open":
            _check_can_open(crm, record, values)


def _check_can_open(crm: Crm, invoice: Record, values: dict) -> None:
    billable = values.get("hs_invoice_billable", invoice.properties.get("hs_invoice_billable", "true"))
    if billable == "false" and assumptions.NON_BILLABLE_SKIPS_VALIDATION:
        return
    contacts = crm.associated("invoices", invoice.id, "contacts")
    lines = crm.associated("invoices", invoice.id, "line_items")
    if len(contacts) != 1 or not lines:
        raise validation(
            "To move an invoice to the Open status, one contact and at least one line item must be associated."
            f" This invoice has {len(contacts)} contact(s) and {len(lines)} line item(s).",
        )


def before_associate(
    crm: Crm, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int, type_id: int
) -> None:
    pair = {from_type.name, to_type.name}
    if pair == {"invoices", "line_items"}:
        invoice_id, line_id = (from_id, to_id) if from_type is INVOICES else (to_id, from_id)
        if assumptions.LINE_ITEM_SINGLE_PARENT:
            parents = set(crm.associated("line_items", line_id, "invoices")) - {invoice_id}
            if parents:
                raise validation(
                    f"Line item {line_id} already belongs to invoice {min(parents)}; "
                    "a line item can have only one parent."
                )
        invoice = crm.table(INVOICES).records.get(invoice_id)
        if invoice is not None and invoice.properties.get("hs_invoice_status") in ("paid", "voided"):
            raise validation(f"The line items of a {invoice.properties['hs_invoice_status']} invoice cannot change.")


def before_archive(crm: Crm, object_type: ObjectType, record: Record) -> None:
    if object_type is INVOICES:
        status = record.properties.get("hs_invoice_status", "draft")
        deletable = set(assumptions.DELETABLE_INVOICE_STATUSES)
        if crm.account.allow_open_invoice_deletion:
            deletable.add("open")
        if status not in deletable:
            raise validation(f"An invoice with status {status} cannot be deleted.")


def after_change(crm: Crm, object_type: ObjectType, record: Record) -> None:
    """Recompute what HubSpot derives from a record that changed (or whose associations did)."""
    if record.archived_ms is not None:
        return
    if object_type is LINE_ITEMS:
        quantity = _number(record, "quantity") if "quantity" in record.properties else Decimal(1)
        amount = quantity * _number(record, "price") - _number(record, "discount")
        crm.set_computed(LINE_ITEMS, record, {"amount": _money(amount)})
        for invoice_id in crm.associated("line_items", record.id, "invoices"):
            recompute_invoice(crm, invoice_id)
    elif object_type is PAYMENTS:
        invoices = crm.associated("commerce_payments", record.id, "invoices")
        net = _number(record, "hs_initial_amount") - _number(record, "hs_refunds_amount")
        crm.set_computed(
            PAYMENTS,
            record,
            {
                "hs_net_amount": _money(net),
                "hs_has_associated_invoice": "true" if invoices else "false",
                "hs_number_of_associated_invoices": str(len(invoices)),
            },
        )
        for invoice_id in invoices:
            recompute_invoice(crm, invoice_id)
    elif object_type is INVOICES:
        recompute_invoice(crm, record.id)
    elif object_type.name in PRICING:
        for invoice_id in crm.associated(object_type.name, record.id, "invoices"):
            recompute_invoice(crm, invoice_id)


def recompute_invoice(crm: Crm, invoice_id: int) -> None:
    invoice = crm.table(INVOICES).records.get(invoice_id)
    if invoice is None:
        return
    lines = crm.table(LINE_ITEMS).records
    billed = sum(
        (_number(lines[i], "amount") for i in crm.associated("invoices", invoice_id, "line_items") if i in lines),
        Decimal(0),
    )
    payments = crm.table(PAYMENTS).records
    paid = Decimal(0)
    if assumptions.PAYMENT_MARKS_INVOICE_PAID:
        paid = sum(
            (
                _number(payments[i], "hs_initial_amount") - _number(payments[i], "hs_refunds_amount")
                for i in crm.associated("invoices", invoice_id, "commerce_payments")
                if i in payments
                and payments[i].properties.get("hs_latest_status") in ("succeeded", "partially_refunded")
            ),
            Decimal(0),
        )
    subtotal, billed = billed, _priced(crm, invoice_id, billed)
    values = {
        "hs_amount_billed": _money(billed),
        "hs_subtotal": _money(subtotal),
        "hs_amount_paid": _money(paid),
        "hs_balance_due": _money(max(billed - paid, Decimal(0))),
    }
    status = invoice.properties.get("hs_invoice_status")
    if status == "open" and billed > 0 and paid >= billed:
        values["hs_invoice_status"] = "paid"
    elif status == "paid" and paid < billed and assumptions.PAID_REOPENS:  # a payment deleted or refunded
        values["hs_invoice_status"] = "open"
    crm.set_computed(INVOICES, invoice, values)


def _priced(crm: Crm, invoice_id: int, subtotal: Decimal) -> Decimal:
    """The amount billed: the lines' subtotal less its discounts, plus fees, plus taxes, each in that
    order and each FIXED (its value) or PERCENT (of the running amount), to the cent
    (assumptions.PRICING_ORDER)."""
    amount = subtotal
    for name in PRICING:
        records = crm.table(OBJECT_TYPES[name]).records
        adjustments = sorted(
            (records[i] for i in crm.associated("invoices", invoice_id, name) if i in records),
            key=lambda r: (_number(r, "hs_sort_order"), r.id),
        )
        change = sum(
            (
                _number(r, "hs_value")
                if r.properties.get("hs_type") == "FIXED"
                else (amount * _number(r, "hs_value") / 100).quantize(CENT, ROUND_HALF_UP)
                for r in adjustments
            ),
            Decimal(0),
        )
        amount = amount - change if name == "discounts" else amount + change
    return max(amount, Decimal(0))


def default_dates(now_ms: int) -> dict[str, str]:
    """`hs_invoice_date` and `hs_due_date` when a draft is created without them (30 days' terms)."""
    return {"hs_invoice_date": iso_from_ms(now_ms), "hs_due_date": iso_from_ms(now_ms + 30 * DAY_MS)}
