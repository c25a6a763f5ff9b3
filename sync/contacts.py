"""Contacts ⇄ customers: the fields, how each side spells them, and the matching key.

Canonical fields (the names the planner merges on) map to HubSpot contact
properties and to QBO Customer fields. Matching is on the trimmed, lower-cased
email. A customer created in QBO from HubSpot gets a DisplayName made of the
contact's company name, or first and last name (the seed's rule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sync.engine import HUBSPOT, QUICKBOOKS, Filter, Record

OBJECT_TYPE = "contacts"
HUBSPOT_OBJECT = "contacts"
QBO_ENTITY = "Customer"
MODIFIED_PROPERTY = "lastmodifieddate"
ID_PROPERTY = "ledgersync_qbo_customer_id"  # our unique property on contacts (crash-safe creates)

# canonical field → HubSpot property
HUBSPOT_PROPERTIES = {
    "email": "email",
    "first_name": "firstname",
    "last_name": "lastname",
    "phone": "phone",
    "company_name": "company",
    "address": "address",
    "city": "city",
    "state": "state",
    "postal_code": "zip",
    "country": "country",
}
DEFAULT_FIELDS = tuple(HUBSPOT_PROPERTIES)
ADDRESS_FIELDS = {
    "address": "Line1",
    "city": "City",
    "state": "CountrySubDivisionCode",
    "postal_code": "PostalCode",
    "country": "Country",
}
NAME_FORBIDDEN = str.maketrans({":": "-", "\t": " ", "\n": " "})


def natural_key(record: Record) -> str | None:
    email = (record.fields.get("email") or "").strip().lower()
    return email or None


# Webhook object types that name our records: HubSpot's and QBO's.
EVENT_TYPES = {"contacts": "hubspot", "customer": "quickbooks"}
# HubSpot object types whose changes re-plan the associated contacts (cross-object triggers, see
# sync.runner): a renamed company changes its contacts' display names; an invoice opened, or
# associated, can make its billing contact eligible.
HUBSPOT_TRIGGERS = ("companies", "invoices")
# What to tell the user for a failure category (shown with the error; the reason says what happened).
ADVICE = {
    "duplicate display name": (
        "QuickBooks requires a display name to be unique across customers, vendors and employees, and a"
        " record there already has this one. Keep one billing contact per company, or set a display-name"
        ' template that tells them apart, e.g. "{company} ({email})".'
    ),
    "linked to another record": (
        "That QuickBooks customer already syncs with another HubSpot contact, and a customer syncs with one"
        " contact. Keep one billing contact per company, or give this contact's customer another name."
    ),
}
# --- recommended filters ------------------------------------------------------------------------------------
# Pre-set when the sync is set up (sync.setup), stored in SyncSettings.filters keyed by the source side:
# QBO → HubSpot takes every customer (no filter); HubSpot → QBO only the contacts someone actually bills.
BILLING_CONTACT = "billing_contact"
RECOMMENDED_FILTERS = {HUBSPOT: BILLING_CONTACT}
FILTER_LABELS = {
    BILLING_CONTACT: "billing contact of an invoice that is not a draft, created in HubSpot after the set-up date"
}
INVOICE_PROPERTIES = ("hs_invoice_status", "hs_createdate")


def invoice_counts(invoice: dict, set_up_at: datetime, brought_in_by_sync: bool) -> bool:
    """Does this HubSpot invoice make its contact a billing contact? Not a draft, created after the
    sync was set up, and created in HubSpot (an invoice our sync brought in from QBO does not count)."""
    from sync.cursors import parse_time

    properties = invoice.get("properties") or {}
    created = parse_time(properties.get("hs_createdate") or properties.get("createdate"))
    status = (properties.get("hs_invoice_status") or "draft").lower()
    return status != "draft" and created is not None and created >= set_up_at and not brought_in_by_sync


def billing_standing(contact_id: str, invoice_ids: list[str], contacts_of: dict[str, list[str]]) -> dict[str, str]:
    """Fields for the filter: `billing_invoice` — an invoice (of those that count) whose one contact
    this is; else `billing_ambiguous` — one that counts but has several contacts (we never guess)."""
    for invoice_id in sorted(invoice_ids):
        if contacts_of.get(invoice_id) == [contact_id]:
            return {"billing_invoice": invoice_id}
    several = sorted(i for i in invoice_ids if len(contacts_of.get(i, [])) > 1)
    return {"billing_ambiguous": several[0]} if several else {}


def _ambiguous(record: Record) -> tuple[str, str, str | None] | None:
    invoice_id = record.fields.get("billing_ambiguous")
    if not invoice_id:
        return None
    return (
        "ambiguous billing contact",
        f"invoice {invoice_id} has several contacts, so its billing contact is not known (we do not guess)",
        "Keep one contact on the invoice (the one who pays it); the contact then syncs.",
    )


def sync_filters(stored: dict[str, str] | None) -> dict[str, Filter]:
    """The engine's filters for the stored filter names (unknown names are refused by sync.setup)."""
    found = {}
    for side, name in (stored or {}).items():
        if name == BILLING_CONTACT:
            found[side] = Filter(FILTER_LABELS[name], lambda r: bool(r.fields.get("billing_invoice")), _ambiguous)
    return found


USES_PRIMARY_COMPANY = True  # the runner reads each contact's primary company name (display names)
HUBSPOT_KEY_PROPERTY = "email"  # unique in HubSpot: a batch read by email finds a match without the search API


def quickbooks_key_query(keys: list[str]) -> str:
    """A query for the customers whose email is one of `keys` (QBO can filter on PrimaryEmailAddr)."""
    quoted = ", ".join("'" + key.replace("'", "\\'") + "'" for key in keys)
    return f"select * from Customer where Active in (true, false) and PrimaryEmailAddr in ({quoted})"  # noqa: S608


def _blank_to_none(value: Any) -> Any:
    return None if value in ("", None) else value


def from_hubspot(record: dict, primary_company: str | None = None, billing: dict[str, str] | None = None) -> Record:
    """`primary_company` is the name of the contact's primary company (for the display name) and
    `billing` its standing as a billing contact (for the filter): neither is a synced field, so the
    planner never merges them."""
    properties = record["properties"]
    fields = {name: _blank_to_none(properties.get(prop)) for name, prop in HUBSPOT_PROPERTIES.items()}
    for name in ("first_name", "last_name"):  # QBO refuses ":", tabs and newlines in name parts: the
        if fields[name]:  # canonical value is the cleaned one, so both sides agree and nothing echoes
            fields[name] = _blank_to_none(clean_name(fields[name]))
    if primary_company:
        fields["primary_company"] = primary_company
    fields.update(billing or {})
    return Record(HUBSPOT, str(record["id"]), fields, deleted=bool(record.get("archived")))


def from_quickbooks(customer: dict) -> Record:
    if customer.get("status") == "Deleted":
        return Record(QUICKBOOKS, str(customer["Id"]), {}, deleted=True)
    address = customer.get("BillAddr") or {}
    fields = {
        "email": (customer.get("PrimaryEmailAddr") or {}).get("Address"),
        "first_name": customer.get("GivenName"),
        "last_name": customer.get("FamilyName"),
        "phone": (customer.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        "company_name": customer.get("CompanyName"),
        **{name: address.get(key) for name, key in ADDRESS_FIELDS.items()},
        "display_name": customer.get("DisplayName"),  # not a synced field: for the rename rule only
    }
    # An inactive customer is QBO's "deleted" for names (they cannot be deleted).
    return Record(
        QUICKBOOKS,
        str(customer["Id"]),
        {k: _blank_to_none(v) for k, v in fields.items()},
        deleted=customer.get("Active") is False,
    )


# A propagated delete: QBO customers cannot be deleted, only made inactive (QBO's own "delete").
QBO_DELETE_BODY = {"Active": False}


def to_hubspot(changes: dict[str, Any]) -> dict[str, str]:
    """HubSpot properties for canonical changes (a cleared field is an empty string)."""
    return {
        HUBSPOT_PROPERTIES[name]: "" if value is None else str(value)
        for name, value in changes.items()
        if name in HUBSPOT_PROPERTIES
    }


TEMPLATE_KEYS = ("company", "first_name", "last_name", "email", "name")


def check_template(template: str | None) -> str | None:
    """A display-name template names only known fields, e.g. "{company} ({email})"; else ValueError."""
    if not template:
        return None
    import string

    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"the display-name template is malformed: {error}") from error
    unknown = [n for n in names if n not in TEMPLATE_KEYS]
    if unknown or not names:
        raise ValueError(
            "the display-name template may use "
            + ", ".join("{" + k + "}" for k in TEMPLATE_KEYS)
            + (f" (not {', '.join(unknown)})" if unknown else ", and must use at least one")
        )
    return template


def clean_name(text: str) -> str:
    """A name as QBO accepts it: ":" becomes "-", tabs and newlines spaces, runs of spaces one."""
    return " ".join(str(text).translate(NAME_FORBIDDEN).split())


def display_name(fields: dict[str, Any], options: dict[str, Any] | None = None) -> str:
    """The DisplayName of a customer we create (the seed's rule).

    The contact's primary company's name, or first + last name when there is none (or when the
    setting `use_company` is off); an optional template (e.g. "{company} ({email})") avoids clashes,
    since DisplayName is unique across QBO customers, vendors and employees. Characters QBO refuses
    in names are replaced.
    """
    options = options or {}
    person = " ".join(part for part in (fields.get("first_name"), fields.get("last_name")) if part)
    company = fields.get("primary_company") or fields.get("company_name") or ""
    name = (company if options.get("use_company", True) else "") or person or fields.get("email") or ""
    template = options.get("template")
    if template:
        values = {
            "company": company,
            "first_name": fields.get("first_name") or "",
            "last_name": fields.get("last_name") or "",
            "email": fields.get("email") or "",
            "name": name,
        }
        name = template.format(**values)
    return clean_name(name)[:500]  # QBO's limit


def rename_to(contact: Record, customer: Record, created_by_sync: bool, options: dict[str, Any]) -> str | None:
    """The DisplayName a linked customer should now have, or None to leave it alone.

    Only customers our sync created, and only when the setting `rename` is on: the name then follows
    the contact's company (or name) as the display-name rule would name it today. A customer born in
    QBO is never renamed; the user named it there.
    """
    if not created_by_sync or not options.get("rename") or contact.deleted or customer.deleted:
        return None
    wanted = display_name(contact.fields, options)
    return wanted if wanted and wanted != customer.fields.get("display_name") else None


def to_quickbooks(
    changes: dict[str, Any], merged: dict[str, Any], creating: bool, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Customer body for canonical changes; `merged` holds every field's agreed value (for whole objects).

    DisplayName is set on create only: a customer born in QBO is never renamed.
    """
    body: dict[str, Any] = {}
    if creating:
        body["DisplayName"] = display_name(merged, options)
    elif changes.get("display_name"):  # a rename (see `rename_to`)
        body["DisplayName"] = changes["display_name"]
    simple = {"first_name": "GivenName", "last_name": "FamilyName", "company_name": "CompanyName"}
    for name, key in simple.items():
        if name in changes:
            body[key] = changes[name] or ""
    if "email" in changes:
        body["PrimaryEmailAddr"] = {"Address": changes["email"] or ""}
    if "phone" in changes:
        body["PrimaryPhone"] = {"FreeFormNumber": changes["phone"] or ""}
    if any(name in changes for name in ADDRESS_FIELDS):  # QBO replaces BillAddr whole
        body["BillAddr"] = {key: merged.get(name) or "" for name, key in ADDRESS_FIELDS.items()}
    return body
