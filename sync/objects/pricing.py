"""A QBO invoice's discount and sales tax, as HubSpot shows them: discount and tax records on the mirror.

HubSpot line items cannot have a negative price, and a mirror's amount billed must equal QBO's
`TotalAmt` to the cent. HubSpot prices an invoice as it prices a quote: the line items' subtotal,
less the discounts associated with it, plus fees, plus taxes (discounts guide). So a QBO discount
line becomes a HubSpot *discount* (fixed, QBO's own amount, labelled with its percentage when it
had one) and QBO's total tax a HubSpot *tax* (fixed, QBO's amount): each visible as what it is, and
the sum exact, since QBO's rounded amounts are carried rather than HubSpot recomputing percentages.

The invoice object type carries them as one field, `pricing` (a canonical JSON list, read the same
way on both sides); the writer makes the mirror's discounts and taxes match it. Every discount and
tax on a mirror is ours: a mirror is non-billable, so nobody prices it in HubSpot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sync.money import cents, money
from sync.objects.base import RunContext

KINDS = {"discount": ("discounts", 412), "tax": ("taxes", 416)}  # HubSpot object, association type to invoice
PROPERTIES = ("hs_label", "hs_type", "hs_value", "hs_sort_order")


def canonical(adjustments: Iterable[Mapping[str, Any]]) -> str | None:
    ordered = sorted(adjustments, key=lambda a: (a["kind"] != "discount", a["order"]))
    return json.dumps(ordered, separators=(",", ":"), sort_keys=True) if ordered else None


def in_quickbooks(invoice: Mapping[str, Any]) -> str | None:
    """The invoice's discount lines and total tax."""
    adjustments = []
    for entry in invoice.get("Line") or []:
        if entry.get("DetailType") != "DiscountLineDetail" or not Decimal(str(entry.get("Amount") or 0)):
            continue
        detail = entry.get("DiscountLineDetail") or {}
        label = "Discount"
        if detail.get("PercentBased") and detail.get("DiscountPercent") is not None:
            label += f" ({money(detail['DiscountPercent'])}%)"
        adjustments.append({"kind": "discount", "label": label, "amount": cents(entry["Amount"])})
    tax = invoice.get("TxnTaxDetail") or {}
    if Decimal(str(tax.get("TotalTax") or 0)):
        rates = sorted(
            {money((line.get("TaxLineDetail") or {}).get("TaxPercent")) for line in tax.get("TaxLine") or []} - {None}
        )
        label = "Sales tax" + (f" ({', '.join(f'{rate}%' for rate in rates)})" if rates else "")
        adjustments.append({"kind": "tax", "label": label, "amount": cents(tax["TotalTax"])})
    return canonical({**a, "order": index} for index, a in enumerate(adjustments))


def discount_in_quickbooks(invoice: Mapping[str, Any]) -> str | None:
    """The invoice's discount lines, summed (None: no discount)."""
    total = sum(
        (
            Decimal(str(entry.get("Amount") or 0))
            for entry in invoice.get("Line") or []
            if entry.get("DetailType") == "DiscountLineDetail"
        ),
        Decimal(0),
    )
    return cents(total) if total else None


def discount_in_hubspot(found: Mapping[str, list[tuple[str, dict]]], subtotal: Any) -> str | None:
    """A HubSpot invoice's discounts, summed in money: FIXED as they are, PERCENT of the line items' subtotal,
    half-up to the cent (as HubSpot prices an invoice: assumptions of the emulator, PRICING_ORDER)."""
    base = Decimal(str(subtotal or 0))
    total = Decimal(0)
    for _id, discount in found.get("discount", []):
        value = Decimal(str(discount.get("_value") or 0))
        total += value if discount.get("_type") != "PERCENT" else Decimal(cents(base * value / 100))
    return cents(total) if total else None


def write_discount_line(context: RunContext, qbo_invoice_id: str, value: str | None) -> None:
    """An invoice made in HubSpot gets its discounts as one QBO discount line (amount, not percentage, so the
    totals agree to the cent); its other lines are sent as they are (QBO replaces every line)."""
    current = context.qbo.read("Invoice", qbo_invoice_id)
    kept = [
        e for e in current.get("Line") or [] if e.get("DetailType") not in ("SubTotalLineDetail", "DiscountLineDetail")
    ]
    if Decimal(value or 0):
        kept.append(
            {
                "DetailType": "DiscountLineDetail",
                "Amount": Decimal(value),
                "DiscountLineDetail": {"PercentBased": False},
            }
        )
    context.qbo.full_update("Invoice", {**current, "Line": kept})


def in_hubspot(context: RunContext, invoice_ids: list[str]) -> dict[str, dict[str, list[tuple[str, dict]]]]:
    """The discounts and taxes on each HubSpot invoice: {invoice id: {kind: [(record id, adjustment)]}}."""
    found: dict[str, dict[str, list[tuple[str, dict]]]] = {i: {} for i in invoice_ids}
    if not invoice_ids:
        return found
    for kind, (hubspot_object, _type) in KINDS.items():
        linked = context.hubspot.associated_ids("invoices", hubspot_object, invoice_ids)
        wanted = sorted({record for ids in linked.values() for record in ids})
        raw = {r["id"]: r for r in context.hubspot.batch_read(hubspot_object, wanted, list(PROPERTIES))}
        for invoice_id in invoice_ids:
            entries = []
            for record_id in linked.get(invoice_id, []):
                properties = (raw.get(record_id) or {}).get("properties") or {}
                entries.append(
                    (
                        record_id,
                        {
                            "kind": kind,
                            "label": properties.get("hs_label") or None,
                            "amount": cents(properties.get("hs_value")),
                            # how HubSpot prices it, for a discount made in HubSpot (not compared)
                            "_type": properties.get("hs_type") or None,
                            "_value": properties.get("hs_value") or None,
                            "order": int(Decimal(properties.get("hs_sort_order") or 0)),
                        },
                    )
                )
            found[invoice_id][kind] = sorted(entries, key=lambda e: e[1]["order"])
    return found


def _compared(adjustment: Mapping[str, Any]) -> dict:
    return {k: v for k, v in adjustment.items() if not k.startswith("_")}


def value_in_hubspot(found: Mapping[str, list[tuple[str, dict]]]) -> str | None:
    return canonical(_compared(adjustment) for entries in found.values() for _id, adjustment in entries)


def write_pricing(context: RunContext, invoice_id: str, value: str | None, fresh: bool = False) -> None:
    """Make the mirror's discounts and taxes match `value`: those that differ are replaced (`fresh`: a
    mirror we just created, which has none)."""
    wanted = json.loads(value or "[]")
    there = {} if fresh else in_hubspot(context, [invoice_id])[invoice_id]
    for kind, (hubspot_object, association_type) in KINDS.items():
        mine = [a for a in wanted if a["kind"] == kind]
        current = there.get(kind, [])
        if [_compared(a) for _id, a in current] == mine:
            continue
        for record_id, _adjustment in current:
            context.hubspot.archive(hubspot_object, record_id)
        for adjustment in mine:
            properties = {
                "hs_label": adjustment["label"] or "",
                "hs_type": "FIXED",
                "hs_value": adjustment["amount"],
                "hs_sort_order": str(adjustment["order"]),
                "hs_duration": "ONCE",
            }
            association = {
                "to": {"id": invoice_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association_type}],
            }
            context.hubspot.create(hubspot_object, properties, [association])
