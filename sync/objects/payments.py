"""What was paid on a QBO invoice, as HubSpot commerce payments on its mirror.

QBO keeps payments apart from invoices: a `Payment` has lines, each applying an amount to an invoice
(or taking a credit memo's credit), and one payment may pay several invoices. HubSpot's commerce
payment belongs to its invoice (association 542). So each *application* — one QBO payment's amount
on one invoice — becomes one HubSpot payment on that invoice's mirror, tagged with the QBO payment's
id in our property. The invoice object type carries an invoice's applications as one field,
`payments` (a canonical JSON list, read the same way on both sides), so the planner sees a payment
received, changed, voided, deleted or unapplied in QBO as a change of the invoice, and the writer
makes the mirror's payments match: create the new, update the changed, archive the gone. That keeps
the HubSpot invoice's balance due equal to QBO's `Balance` — a credit memo applied counts like a
payment — and it is idempotent: the payments are read back from HubSpot every time.

HubSpot records payments only where HubSpot payments or Stripe is set up (commerce payments guide).
Elsewhere the create is refused; the invoice still syncs and our own properties show what was paid.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sync.clients import errors
from sync.money import cents
from sync.objects.base import RunContext, quoted

PAYMENTS_OBJECT = "commerce_payments"
PAYMENT_ID_PROPERTY = "ledgersync_qbo_payment_id"
PAYMENT_PROPERTIES = (
    "hs_initial_amount",
    "hs_initiated_date",
    "hs_payment_method_type",
    "hs_reference_number",
    "hs_internal_comment",
    PAYMENT_ID_PROPERTY,
)
TO_INVOICE, TO_CONTACT = 542, 387  # association types from a payment (NOTES §1.5)
IDS_PER_QUERY = 100
UNAVAILABLE = "payments_unavailable"  # context.options: this portal refused a payment this run
COLLECTED_STATUSES = ("succeeded", "partially_refunded", "refunded")  # payments collected in HubSpot
COLLECTED_NOTE_MARK = "collected in HubSpot (Ledgersync)"  # on a QBO payment our sync made from a HubSpot one


def method_type(name: str | None, qbo_type: str | None) -> str:
    """HubSpot's `hs_payment_method_type` for a QBO payment method (by its name and type)."""
    text = (name or "").lower()
    if "cash" in text:
        return "cash"
    if "check" in text or "cheque" in text:
        return "check"
    if "wire" in text:
        return "wire_transfer"
    if "ach" in text.split() or "e-check" in text or "bank transfer" in text or "direct debit" in text:
        return "ach"
    if qbo_type == "CREDIT_CARD" or any(card in text for card in ("card", "visa", "master", "amex", "discover")):
        return "card"
    return "other"


def payment_methods(context: RunContext) -> dict[str, tuple[str, str]]:
    """QBO payment method id → (name, type), read once a run."""
    rows = context.qbo.query("select * from PaymentMethod").get("PaymentMethod", [])
    return {str(row["Id"]): (row.get("Name") or "", row.get("Type") or "") for row in rows}


def canonical(applications: Iterable[Mapping[str, Any]]) -> str | None:
    """An invoice's payments as one comparable value (None when there are none)."""
    ordered = sorted(applications, key=lambda a: (len(a["key"]), a["key"]))
    return json.dumps(ordered, separators=(",", ":"), sort_keys=True) if ordered else None


def applications_in_quickbooks(
    context: RunContext, invoices: Mapping[str, dict]
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Each invoice's applications, from the QBO payments its `LinkedTxn` names: those made in QBO (which go
    to HubSpot), and those our sync made from payments collected in HubSpot (which never come back)."""
    payment_ids = sorted(
        {
            str(linked["TxnId"])
            for invoice in invoices.values()
            for linked in invoice.get("LinkedTxn") or []
            if linked.get("TxnType") == "Payment"
        }
    )
    payments: dict[str, dict] = {}
    for start in range(0, len(payment_ids), IDS_PER_QUERY):
        statement = f"select * from Payment where Id in ({quoted(payment_ids[start : start + IDS_PER_QUERY])})"  # noqa: S608
        payments.update({str(row["Id"]): row for row in context.qbo.query(statement).get("Payment", [])})
    methods = context.options.get("payment_methods") or {}
    found: dict[str, str | None] = {}
    collected: dict[str, str | None] = {}
    for invoice_id, invoice in invoices.items():
        applications, from_hubspot = [], []
        for payment_id in sorted({p for p in payment_ids if _links(invoice, "Payment", p)}):
            payment = payments.get(payment_id)
            if payment is None:
                continue
            application = _application(payment, invoice_id, methods)
            if application is None:
                continue
            hubspot_id = collected_in_hubspot(payment)
            if hubspot_id:
                from_hubspot.append({"key": hubspot_id, "amount": application["amount"], "date": application["date"]})
            else:
                applications.append(application)
        found[invoice_id] = canonical(applications)
        collected[invoice_id] = canonical(from_hubspot)
    return found, collected


def collected_in_hubspot(payment: Mapping[str, Any]) -> str | None:
    """The HubSpot payment a QBO payment was made from by our sync (its reference, under our note)."""
    if COLLECTED_NOTE_MARK in str(payment.get("PrivateNote") or ""):
        return str(payment.get("PaymentRefNum") or "") or None
    return None


def _links(txn: dict, txn_type: str, txn_id: str) -> bool:
    return any(t.get("TxnType") == txn_type and str(t.get("TxnId")) == txn_id for t in txn.get("LinkedTxn") or [])


def _application(payment: dict, invoice_id: str, methods: Mapping[str, tuple[str, str]]) -> dict | None:
    amount = sum(
        (
            Decimal(str(line.get("Amount") or 0))
            for line in payment.get("Line") or []
            for linked in line.get("LinkedTxn") or []
            if linked.get("TxnType") == "Invoice" and str(linked.get("TxnId")) == invoice_id
        ),
        Decimal(0),
    )
    if not amount:
        return None
    credits = sorted(
        str(linked["TxnId"])
        for line in payment.get("Line") or []
        for linked in line.get("LinkedTxn") or []
        if linked.get("TxnType") == "CreditMemo"
    )
    method_ref = str((payment.get("PaymentMethodRef") or {}).get("value") or "")
    name, qbo_type = methods.get(method_ref, ((payment.get("PaymentMethodRef") or {}).get("name"), None))
    paid_in_money = Decimal(str(payment.get("TotalAmt") or 0))
    note = f"QuickBooks payment {payment['Id']}"
    if credits:
        note += f", with credit from credit memo {', '.join(credits)}"
    return {
        "key": str(payment["Id"]),
        "amount": cents(amount),
        "date": str(payment.get("TxnDate") or "")[:10] or None,
        # a payment made only of credit (a credit memo applied) has no method of its own
        "method": method_type(name, qbo_type) if paid_in_money else "other",
        "reference": payment.get("PaymentRefNum") or None,
        "note": note,
    }


def applications_in_hubspot(context: RunContext, invoice_ids: list[str]) -> dict[str, dict[str, tuple[str, dict]]]:
    """Our payments on each HubSpot invoice: {invoice id: {QBO payment id: (payment id, application)}}."""
    return {invoice_id: ours for invoice_id, (ours, _collected) in _hubspot_payments(context, invoice_ids).items()}


def payments_in_hubspot(
    context: RunContext, invoice_ids: list[str]
) -> dict[str, tuple[dict[str, tuple[str, dict]], str | None]]:
    """Per HubSpot invoice: our payments (as `applications_in_hubspot`), and the payments collected in HubSpot
    (succeeded, by HubSpot payments or Stripe) as one comparable value: what goes to QBO."""
    return _hubspot_payments(context, invoice_ids)


def _hubspot_payments(context: RunContext, invoice_ids: list[str]) -> dict[str, tuple[dict, str | None]]:
    if not invoice_ids:
        return {}
    linked = context.hubspot.associated_ids("invoices", PAYMENTS_OBJECT, invoice_ids)
    wanted = sorted({payment for ids in linked.values() for payment in ids})
    properties_read = [*PAYMENT_PROPERTIES, "hs_latest_status", "hs_processor_type", "hs_refunds_amount"]
    raw = {r["id"]: r for r in context.hubspot.batch_read(PAYMENTS_OBJECT, wanted, properties_read)}
    found: dict[str, tuple[dict, str | None]] = {}
    for invoice_id in invoice_ids:
        ours: dict[str, tuple[str, dict]] = {}
        collected = []
        for payment_id in linked.get(invoice_id, []):
            properties = (raw.get(payment_id) or {}).get("properties") or {}
            key = properties.get(PAYMENT_ID_PROPERTY)
            if key:  # ours: a QBO payment shown in HubSpot
                ours[key] = (payment_id, _from_hubspot(key, properties))
            elif properties.get("hs_latest_status") in COLLECTED_STATUSES:
                refunded = Decimal(str(properties.get("hs_refunds_amount") or 0))
                collected.append(
                    {
                        "key": str(payment_id),
                        "amount": cents(properties.get("hs_initial_amount")),
                        "date": (properties.get("hs_initiated_date") or "")[:10] or None,
                        **({"refunded": cents(refunded)} if refunded else {}),
                    }
                )
        found[invoice_id] = (ours, canonical(collected))
    return found


def write_collected(
    context: RunContext, qbo_invoice_id: str, value: str | None, customer_id: str | None, currency: str | None
) -> None:
    """Payments collected in HubSpot on an invoice our sync put in QBO become QBO payments applied to it,
    referenced by the HubSpot payment id and marked with our note (so they never come back as new)."""
    wanted = {a["key"]: a for a in json.loads(value or "[]")}
    invoice = context.qbo.read("Invoice", qbo_invoice_id)
    _found, there_value = applications_in_quickbooks(context, {qbo_invoice_id: invoice})
    there = {a["key"] for a in json.loads(there_value.get(qbo_invoice_id) or "[]")}
    for key, application in wanted.items():
        if key in there:
            continue
        body = {
            "CustomerRef": {"value": customer_id},
            "TotalAmt": Decimal(application["amount"]),
            "TxnDate": application.get("date") or None,
            "PaymentRefNum": key[:21],
            "PrivateNote": f"HubSpot payment {key}, {COLLECTED_NOTE_MARK}",
            "Line": [{"Amount": Decimal(application["amount"]),
                      "LinkedTxn": [{"TxnId": qbo_invoice_id, "TxnType": "Invoice"}]}],
        }  # fmt: skip
        if context.options.get("deposit_account_id"):
            body["DepositToAccountRef"] = {"value": context.options["deposit_account_id"]}
        if currency and currency != context.options.get("home_currency"):
            body["CurrencyRef"] = {"value": currency}
        # QBO answers a repeated request id with the first answer: a crash before we saw it makes no second one
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ledgersync:hubspot-payment:{key}"))
        context.qbo.create("Payment", {k: v for k, v in body.items() if v is not None}, request_id=request_id)


def _from_hubspot(key: str, properties: Mapping[str, Any]) -> dict:
    initiated = properties.get("hs_initiated_date") or ""
    return {
        "key": key,
        "amount": cents(properties.get("hs_initial_amount")),
        "date": initiated[:10] or None,
        "method": properties.get("hs_payment_method_type") or None,
        "reference": properties.get("hs_reference_number") or None,
        "note": properties.get("hs_internal_comment") or None,
    }


def _properties(application: Mapping[str, Any], currency: str | None) -> dict[str, str]:
    properties = {
        "hs_initial_amount": str(application["amount"]),
        "hs_initiated_date": f"{application['date']}T00:00:00Z" if application.get("date") else "",
        "hs_payment_method_type": application.get("method") or "other",
        "hs_reference_number": application.get("reference") or "",
        "hs_internal_comment": application.get("note") or "",
        PAYMENT_ID_PROPERTY: application["key"],
    }
    return {**properties, **({"hs_currency_code": currency} if currency else {})}


def write_payments(
    context: RunContext,
    invoice_id: str,
    value: str | None,
    contact_id: str | None,
    currency: str | None,
    fresh: bool = False,
) -> None:
    """Make the HubSpot invoice's payments (ours) match `value`: create, update, archive (`fresh`: an
    invoice we just created, which has none)."""
    if context.options.get(UNAVAILABLE):
        return
    wanted = {a["key"]: a for a in json.loads(value or "[]")}
    if not wanted and fresh:
        return
    there = {} if fresh else applications_in_hubspot(context, [invoice_id]).get(invoice_id, {})
    for key, (payment_id, current) in there.items():
        if key not in wanted:  # voided, deleted or unapplied in QBO
            context.hubspot.archive(PAYMENTS_OBJECT, payment_id)
        elif current != wanted[key]:
            context.hubspot.update(PAYMENTS_OBJECT, payment_id, _properties(wanted[key], None))
    for key, application in wanted.items():
        if key in there:
            continue
        associations = [_association(invoice_id, TO_INVOICE)] + (
            [_association(contact_id, TO_CONTACT)] if contact_id else []
        )
        properties = {
            **_properties(application, currency),
            "hs_latest_status": "succeeded",
            "hs_processor_type": "quickbooks",
        }
        try:
            context.hubspot.create(PAYMENTS_OBJECT, properties, associations)
        except errors.ValidationFailed as refusal:
            if "payment processing" not in (refusal.message or "").lower():
                raise
            # No HubSpot payments or Stripe in this portal: what was paid shows in our properties.
            context.options = {**context.options, UNAVAILABLE: True}
            context.notes.append("HubSpot records payments only with HubSpot payments or Stripe set up")
            return


def _association(record_id: str, type_id: int) -> dict:
    return {
        "to": {"id": record_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }
