"""A test-only object type with lines: HubSpot invoices (with line items, associated with a contact) ⇄
QBO sales receipts (with SalesItemLineDetail lines and a CustomerRef).

It exists to prove the runner's compound-record path — lines read, planned and written on both
sides, line pairs kept on the link, an association declared by the object type and written by the
runner — before invoices use it. It is registered by the tests that use it, never by the product.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.engine import HUBSPOT, QUICKBOOKS, Line, Record
from sync.objects import Association, ObjectType


def number(value: Any) -> str | None:
    """A quantity or price as canonical text: "2", "10.5" whether it came as 2, 2.0, "2.00" or "2"."""
    if value in (None, ""):
        return None
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except InvalidOperation:
        return str(value)


class InvoicesAsSalesReceipts(ObjectType):
    name = "test_receipts"
    hubspot_object = "invoices"
    qbo_entity = "SalesReceipt"
    id_property = "ledgersync_qbo_salesreceipt_id"
    id_property_label = "QuickBooks sales receipt id (Ledgersync tests)"
    id_property_group = "invoiceinformation"
    qbo_has_active = False
    hubspot_properties = {"title": "hs_title"}
    hubspot_create_properties = {"hs_currency": "USD"}  # HubSpot requires it on every invoice
    default_fields = ("title",)
    associations = (Association("customer", "contacts", "contacts", "CustomerRef"),)
    event_types = {"invoices": HUBSPOT, "salesreceipt": QUICKBOOKS}
    hubspot_triggers = ("line_items",)  # a line item edited alone re-plans its invoice
    line_fields = ("description", "quantity", "unit_price")
    line_properties = {"description": "name", "quantity": "quantity", "unit_price": "price"}

    def __init__(self, item_id: str = "1") -> None:
        self.item_id = item_id  # the QBO item every line sells (the test makes one)

    def from_quickbooks(self, raw: dict) -> Record:
        if raw.get("status") == "Deleted":
            return Record(QUICKBOOKS, str(raw["Id"]), {}, deleted=True)
        return Record(QUICKBOOKS, str(raw["Id"]), {"title": raw.get("PrivateNote") or None})

    def to_quickbooks(
        self, changes: Mapping[str, Any], merged: Mapping[str, Any], creating: bool, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {"PrivateNote": changes["title"] or ""} if "title" in changes else {}

    def line_from_hubspot(self, raw: dict) -> Line:
        line = super().line_from_hubspot(raw)
        fields = dict(line.fields)
        for name in ("quantity", "unit_price"):
            fields[name] = number(fields[name])
        return Line(line.id, fields)

    def line_from_quickbooks(self, raw: dict) -> Line | None:
        if raw.get("DetailType") != "SalesItemLineDetail":
            return None
        detail = raw.get("SalesItemLineDetail") or {}
        return Line(
            str(raw["Id"]),
            {
                "description": raw.get("Description") or None,
                "quantity": number(detail.get("Qty")),
                "unit_price": number(detail.get("UnitPrice")),
            },
        )

    def line_to_quickbooks(self, fields: Mapping[str, Any], existing: dict | None) -> dict[str, Any]:
        line = dict(existing or {"DetailType": "SalesItemLineDetail"})
        detail = dict(line.get("SalesItemLineDetail") or {"ItemRef": {"value": self.item_id}})
        quantity, price = Decimal(fields.get("quantity") or "0"), Decimal(fields.get("unit_price") or "0")
        detail.update(Qty=quantity, UnitPrice=price)
        line.update(Description=fields.get("description") or "", SalesItemLineDetail=detail, Amount=quantity * price)
        return line
