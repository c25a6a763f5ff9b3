"""Contacts ⇄ customers: the fields, how each side spells them, the matching key and the contact rules.

Canonical fields (the names the planner merges on) map to HubSpot contact properties and to QBO
Customer fields. Matching is on the trimmed, lower-cased email. A customer created in QBO from
HubSpot gets a DisplayName made of the contact's primary company's name, or first and last name
(the seed's rule), optionally through a template, and may follow renames (`rename`).

The rules only contacts have live here too: each contact's primary company name is read before
planning (display names); with the billing-contact filter, a new contact's standing as the billing
contact of an invoice is read, and changed invoices are swept for contacts whose webhook was lost.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sync.cursors import hubspot_changes
from sync.engine import HUBSPOT, QUICKBOOKS, Action, Filter, Plan, Record
from sync.objects.base import ObjectType, RunContext, blank_to_none, quoted
from sync.times import parse_time

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
ADDRESS_FIELDS = {
    "address": "Line1",
    "city": "City",
    "state": "CountrySubDivisionCode",
    "postal_code": "PostalCode",
    "country": "Country",
}
NAME_FORBIDDEN = str.maketrans({":": "-", "\t": " ", "\n": " "})

# --- recommended filters ------------------------------------------------------------------------------------
# Pre-set when the sync is set up (sync.setup), stored in SyncSettings.filters keyed by the source side:
# QBO → HubSpot takes every customer (no filter); HubSpot → QBO only the contacts someone actually bills.
BILLING_CONTACT = "billing_contact"
FILTER_LABELS = {
    BILLING_CONTACT: "billing contact of an invoice that is not a draft, created in HubSpot after the set-up date"
}
INVOICE_PROPERTIES = ("hs_invoice_status", "hs_createdate")
TEMPLATE_KEYS = ("company", "first_name", "last_name", "email", "name")


class Contacts(ObjectType):
    name = "contacts"
    hubspot_object = "contacts"
    qbo_entity = "Customer"
    hubspot_modified_property = "lastmodifieddate"
    id_property = "ledgersync_qbo_customer_id"
    id_property_label = "QuickBooks customer id (Ledgersync)"
    id_property_group = "contactinformation"
    hubspot_properties = HUBSPOT_PROPERTIES
    default_fields = tuple(HUBSPOT_PROPERTIES)
    key_required = True
    hubspot_key_property = "email"  # unique in HubSpot: a batch read by email finds a match without the search API
    event_types = {"contacts": HUBSPOT, "customer": QUICKBOOKS}
    # A renamed company changes its contacts' display names; an invoice opened, or associated, can make
    # its billing contact eligible.
    hubspot_triggers = ("companies", "invoices")
    recommended_filters = {HUBSPOT: BILLING_CONTACT}
    filter_labels = FILTER_LABELS
    advice = {
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
    # A propagated delete: QBO customers cannot be deleted, only made inactive (QBO's own "delete").
    qbo_delete_body = {"Active": False}

    def natural_key(self, record: Record) -> str | None:
        email = (record.fields.get("email") or "").strip().lower()
        return email or None

    def quickbooks_key_queries(self, keys: list[str]) -> list[str]:
        """The customers whose email is one of `keys` (QBO can filter on PrimaryEmailAddr; it compares
        without case, an emulator assumption, see emulators/README.md)."""
        return [f"select * from Customer where Active in (true, false) and PrimaryEmailAddr in ({quoted(keys)})"]  # noqa: S608

    def sync_filters(self, stored: Mapping[str, str] | None) -> dict[str, Filter]:
        found = {}
        for side, name in (stored or {}).items():
            if name == BILLING_CONTACT:
                found[side] = Filter(FILTER_LABELS[name], lambda r: bool(r.fields.get("billing_invoice")), _ambiguous)
        return found

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        if "template" in options:
            return {**options, "template": check_template(options["template"])}
        return options

    # --- records ---------------------------------------------------------------------------------------------

    def from_hubspot(self, raw: dict, extra: Mapping[str, Any] | None = None) -> Record:
        """`extra` may hold `primary_company` (the name of the contact's primary company, for the display
        name) and its billing standing (for the filter): neither is a synced field, so the planner never
        merges them."""
        record = super().from_hubspot(raw, extra)
        fields = dict(record.fields)
        for name in ("first_name", "last_name"):  # QBO refuses ":", tabs and newlines in name parts: the
            if fields[name]:  # canonical value is the cleaned one, so both sides agree and nothing echoes
                fields[name] = blank_to_none(clean_name(fields[name]))
        return replace(record, fields=fields)

    def from_quickbooks(self, customer: dict) -> Record:
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
            {k: blank_to_none(v) for k, v in fields.items()},
            deleted=customer.get("Active") is False,
        )

    def to_quickbooks(
        self, changes: Mapping[str, Any], merged: Mapping[str, Any], creating: bool, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A Customer body. DisplayName is set on create, and on a rename (see `adjust_plan`) only: a
        customer born in QBO is never renamed."""
        body: dict[str, Any] = {}
        if creating:
            body["DisplayName"] = display_name(merged, options)
        elif changes.get("display_name"):
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

    # --- creates ---------------------------------------------------------------------------------------------

    def find_lost_create(self, qbo, body: Mapping[str, Any]) -> dict | None:
        """DisplayName is unique in QBO: a customer of that name may be our lost create."""
        found = qbo.query(
            f"select * from Customer where DisplayName = {quoted([body['DisplayName']])} and Active in (true, false)"  # noqa: S608
        ).get("Customer", [])
        return found[0] if found else None

    def failure_message(self, category: str, body: Mapping[str, Any] | None, message: str) -> str:
        if category == "duplicate display name" and body:  # say which name
            taken = body.get("DisplayName")
            return f"“{taken}” is already the name of a QuickBooks customer, vendor or employee: {message}"
        return message

    # --- hooks -------------------------------------------------------------------------------------------------

    def enrich_hubspot(
        self, context: RunContext, records: dict[str, dict], unlinked: list[str]
    ) -> dict[str, dict[str, Any]]:
        extra: dict[str, dict[str, Any]] = {}
        for contact_id, company in _primary_company_names(context, sorted(records)).items():
            extra.setdefault(contact_id, {})["primary_company"] = company
        if context.filters.get(HUBSPOT) == BILLING_CONTACT:
            for contact_id, standing in _billing_standing(context, unlinked).items():
                extra.setdefault(contact_id, {}).update(standing)
        return extra

    def extra_changed_ids(self, context: RunContext, since: datetime | None, started: datetime) -> set[str]:
        """With the billing-contact filter, the unlinked contacts of invoices changed since the last run:
        a contact becomes eligible when its invoice is opened, and the invoice's webhook may be lost.
        (The first run reads every contact anyway; linked contacts need no eligibility.)"""
        if since is None or context.filters.get(HUBSPOT) != BILLING_CONTACT:
            return set()
        changed = hubspot_changes(context.hubspot, "invoices", "hs_lastmodifieddate", since, started)
        if not changed.records:
            return set()
        found = {
            contact
            for contacts in context.hubspot.associated_ids("invoices", "contacts", sorted(changed.records)).values()
            for contact in contacts
        }
        return found - context.links.linked_ids(HUBSPOT, found)

    def adjust_plan(self, context: RunContext, plan: Plan, links, hub_records, qbo_records) -> Plan:
        """The display-name renames (customers we created, when the setting `rename` allows): into the
        pair's planned QBO update, or as one of its own."""
        if not context.options.get("rename"):
            return plan
        planned = {a.link_id: a for a in plan.actions if a.kind == "update" and a.target_side == QUICKBOOKS}
        busy = {a.link_id for a in plan.actions if a.kind in ("fail", "wait", "tombstone", "delete", "relink")}
        for link in links:
            contact, customer = hub_records.get(link.hubspot_id), qbo_records.get(link.qbo_id)
            if contact is None or customer is None or link.id in busy or link.hubspot_deleted_at or link.qbo_deleted_at:
                continue
            name = rename_to(contact, customer, link.created_side == QUICKBOOKS, context.options)
            if name is None:
                continue
            action = planned.get(link.id)
            if action is not None:
                plan.actions[plan.actions.index(action)] = replace(
                    action, changes={**action.changes, "display_name": name}
                )
            else:
                plan.add(
                    Action(
                        "update",
                        contact,
                        target_side=QUICKBOOKS,
                        target_id=link.qbo_id,
                        link_id=link.id,
                        changes={"display_name": name},
                        base_after=dict(link.base_values or {}),
                        reason="the display-name rule renames a customer we created",
                    )
                )
        return plan


def _primary_company_names(context: RunContext, contact_ids: list[str]) -> dict[str, str]:
    """Each contact's primary company's name (the customer display name's first choice)."""
    if not contact_ids:
        return {}
    primary = context.hubspot.primary_associations("contacts", "companies", contact_ids)
    names = {
        c["id"]: (c["properties"].get("name") or "").strip()
        for c in context.hubspot.batch_read("companies", sorted(set(primary.values())), ["name"])
    }
    return {contact: names[company] for contact, company in primary.items() if names.get(company)}


def _billing_standing(context: RunContext, contact_ids: list[str]) -> dict[str, dict[str, str]]:
    """For the billing-contact filter: each new contact's invoices that count (not a draft, created
    in HubSpot after set-up) and how many contacts each has. Only unlinked contacts are asked
    about: a linked one keeps syncing whatever the filter says."""
    if not contact_ids:
        return {}
    invoices_of = context.hubspot.associated_ids("contacts", "invoices", contact_ids)
    invoice_ids = sorted({i for ids in invoices_of.values() for i in ids})
    if not invoice_ids:
        return {}
    brought_in = context.links.of("invoices").created_by_sync(HUBSPOT, set(invoice_ids))
    counting = {
        invoice["id"]
        for invoice in context.hubspot.batch_read("invoices", invoice_ids, list(INVOICE_PROPERTIES))
        if invoice_counts(invoice, context.set_up_at, invoice["id"] in brought_in)
    }
    contacts_of = context.hubspot.associated_ids("invoices", "contacts", sorted(counting))
    return {
        contact_id: billing_standing(contact_id, [i for i in invoices if i in counting], contacts_of)
        for contact_id, invoices in invoices_of.items()
    }


def invoice_counts(invoice: dict, set_up_at: datetime, brought_in_by_sync: bool) -> bool:
    """Does this HubSpot invoice make its contact a billing contact? Not a draft, created after the
    sync was set up, and created in HubSpot (an invoice our sync brought in from QBO does not count)."""
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


def check_template(template: str | None) -> str | None:
    """A display-name template names only known fields, e.g. "{company} ({email})"; else ValueError."""
    if not template:
        return None
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


def display_name(fields: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> str:
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


def rename_to(contact: Record, customer: Record, created_by_sync: bool, options: Mapping[str, Any]) -> str | None:
    """The DisplayName a linked customer should now have, or None to leave it alone.

    Only customers our sync created, and only when the setting `rename` is on: the name then follows
    the contact's company (or name) as the display-name rule would name it today. A customer born in
    QBO is never renamed; the user named it there.
    """
    if not created_by_sync or not options.get("rename") or contact.deleted or customer.deleted:
        return None
    wanted = display_name(contact.fields, options)
    return wanted if wanted and wanted != customer.fields.get("display_name") else None
