"""The CRM's object types, their default properties and association types.

Sources: NOTES.md §1.1 (names, type ids, scopes), §1.3–1.5 (default and
object-specific properties), §1.6 (HUBSPOT_DEFINED association type ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.hubspot import assumptions


@dataclass(frozen=True)
class ObjectType:
    name: str  # path name: "contacts"
    type_id: str  # "0-1"
    singular: str  # "contact" (association type names, webhook prefixes)
    scope: str  # "contacts" → crm.objects.contacts.read/write
    last_modified: str  # "lastmodifieddate" or "hs_lastmodifieddate"
    created: str  # "createdate" or "hs_createdate"
    get_defaults: tuple[str, ...]  # returned by GET when no `properties` is given
    search_defaults: tuple[str, ...]
    required: tuple[str, ...] = ()
    legacy_scopes: tuple[str, ...] = ()  # older scopes that also grant access
    mergeable: bool = False

    def read_scopes(self) -> tuple[str, ...]:
        return (f"crm.objects.{self.scope}.read", f"crm.objects.{self.scope}.write", *self.legacy_scopes)

    def write_scopes(self) -> tuple[str, ...]:
        return (f"crm.objects.{self.scope}.write", *self.legacy_scopes)


OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType(
            "contacts",
            "0-1",
            "contact",
            "contacts",
            "lastmodifieddate",
            "createdate",
            ("firstname", "lastname", "email"),
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
            mergeable=True,
        ),
        ObjectType(
            "companies",
            "0-2",
            "company",
            "companies",
            "hs_lastmodifieddate",
            "createdate",
            ("name", "domain"),
            ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            mergeable=True,
        ),
        ObjectType(
            "deals",
            "0-3",
            "deal",
            "deals",
            "hs_lastmodifieddate",
            "createdate",
            ("dealname", "amount", "dealstage", "pipeline", "closedate"),
            (
                "dealname",
                "amount",
                "closedate",
                "pipeline",
                "dealstage",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ),
        ),
        ObjectType(
            "products",
            "0-7",
            "product",
            "products",
            "hs_lastmodifieddate",
            "createdate",
            ("name", "description", "price"),
            ("name", "description", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            legacy_scopes=("e-commerce",),
        ),
        ObjectType(
            "line_items",
            "0-8",
            "line_item",
            "line_items",
            "hs_lastmodifieddate",
            "createdate",
            ("quantity", "amount", "price"),
            ("quantity", "amount", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            legacy_scopes=("e-commerce",),
        ),
        ObjectType(
            "invoices",
            "0-53",
            "invoice",
            "invoices",
            "hs_lastmodifieddate",
            "hs_createdate",
            ("hs_currency", "hs_invoice_status", "hs_number"),
            ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            required=("hs_currency",),
        ),
        ObjectType(
            "commerce_payments",
            "0-101",
            "commerce_payment",
            "commercepayments",
            "hs_lastmodifieddate",
            "hs_createdate",
            ("hs_initial_amount", "hs_latest_status", "hs_initiated_date"),
            ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
            required=("hs_initial_amount", "hs_initiated_date"),
        ),
        # Pricing details of a quote or invoice: discounts first, then fees, then taxes (discounts guide).
        # Their guides name the line-item scopes.
        *(
            ObjectType(
                name,
                type_id,
                singular,
                "line_items",
                "hs_lastmodifieddate",
                "hs_createdate",
                ("hs_label", "hs_type", "hs_value"),
                ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
                required=("hs_type", "hs_value"),
                legacy_scopes=("e-commerce",),
            )
            for name, singular, type_id in (
                ("discounts", "discount", "0-84"),
                ("fees", "fee", "0-85"),
                ("taxes", "tax", "0-86"),
            )
        ),
    )
}
BY_TYPE_ID = {t.type_id: t for t in OBJECT_TYPES.values()}
# Singular and upper-case forms appear in association paths and workflow payloads.
ALIASES = {
    **{t.singular: t for t in OBJECT_TYPES.values()},
    **{t.singular.upper(): t for t in OBJECT_TYPES.values()},
    "payments": OBJECT_TYPES["commerce_payments"],
    "commerce_payment": OBJECT_TYPES["commerce_payments"],
    "lineitem": OBJECT_TYPES["line_items"],
}


def resolve_object_type(name: str) -> ObjectType | None:
    """'contacts', '0-1', 'contact' and 'CONTACT' all name the contacts type."""
    return OBJECT_TYPES.get(name) or BY_TYPE_ID.get(name) or ALIASES.get(name) or ALIASES.get(name.lower())


@dataclass
class PropertyDefinition:
    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool
    field_type: str  # text | textarea | number | date | select | booleancheckbox | checkbox | …
    group_name: str
    description: str = ""
    options: list[dict] = field(default_factory=list)
    has_unique_value: bool = False
    read_only: bool = False  # value set by HubSpot only
    hubspot_defined: bool = True
    hidden: bool = False
    display_order: int = -1
    created_at: str = "2019-08-06T02:41:08.145Z"
    updated_at: str = "2019-08-06T02:41:08.145Z"

    def to_api(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {
                    "label": o["label"],
                    "value": o["value"],
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": o.get("hidden", False),
                    **({"description": o["description"]} if o.get("description") else {}),
                }
                for i, o in enumerate(self.options)
            ],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }


def _options(*values: str) -> list[dict]:
    return [{"label": v.replace("_", " ").capitalize(), "value": v} for v in values]


# name: (type, fieldType, read_only, options)
_STRING = ("string", "text", False, None)
_TEXTAREA = ("string", "textarea", False, None)
_NUMBER = ("number", "number", False, None)
_DATETIME = ("datetime", "date", False, None)
_DATE = ("date", "date", False, None)
_BOOL = ("bool", "booleancheckbox", False, [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}])
_RO_NUMBER = ("number", "number", True, None)
_RO_DATETIME = ("datetime", "date", True, None)
_RO_STRING = ("string", "text", True, None)

_ADDRESS = {name: _STRING for name in ("address", "address2", "city", "state", "zip", "country")}

_DEFAULT_PROPERTIES: dict[str, dict[str, tuple]] = {
    "contacts": {
        "email": _STRING,
        "firstname": _STRING,
        "lastname": _STRING,
        "phone": _STRING,
        "mobilephone": _STRING,
        "company": _STRING,
        "website": _STRING,
        "jobtitle": _STRING,
        **_ADDRESS,
        "lifecyclestage": (
            "enumeration",
            "radio",
            False,
            _options(
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
                "other",
            ),
        ),
        "associatedcompanyid": _RO_NUMBER,
        "hs_additional_emails": _RO_STRING,
        "hs_merged_object_ids": _RO_STRING,
        "createdate": _RO_DATETIME,
        "lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    "companies": {
        "name": _STRING,
        "domain": _STRING,
        "phone": _STRING,
        "website": _STRING,
        "industry": _STRING,
        "description": _TEXTAREA,
        **_ADDRESS,
        "hs_merged_object_ids": _RO_STRING,
        "createdate": _RO_DATETIME,
        "hs_lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    "deals": {
        "dealname": _STRING,
        "amount": _NUMBER,
        "dealstage": _STRING,
        "pipeline": _STRING,
        "closedate": _DATETIME,
        "createdate": _RO_DATETIME,
        "hs_lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    "products": {
        "name": _STRING,
        "description": _TEXTAREA,
        "price": _NUMBER,
        "hs_sku": _STRING,
        "hs_cost_of_goods_sold": _NUMBER,
        "hs_recurring_billing_period": _STRING,
        "hs_product_type": ("enumeration", "select", False, _options("inventory", "non_inventory", "service")),
        "hs_folder_id": _NUMBER,
        "hs_url": _STRING,
        "hs_images": _STRING,
        "recurringbillingfrequency": _STRING,
        "createdate": _RO_DATETIME,
        "hs_lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    "line_items": {
        "name": _STRING,
        "description": _TEXTAREA,
        "hs_sku": _STRING,
        "quantity": _NUMBER,
        "price": _NUMBER,
        "amount": _RO_NUMBER,
        "hs_product_id": _NUMBER,
        "hs_line_item_currency_code": _STRING,
        "discount": _NUMBER,
        "hs_discount_percentage": _NUMBER,
        "recurringbillingfrequency": _STRING,
        "hs_recurring_billing_start_date": _DATE,
        "hs_recurring_billing_end_date": _DATE,
        "hs_recurring_billing_period": _STRING,
        "hs_tax_rate_group_id": _STRING,
        "hs_position_on_quote": _NUMBER,
        "createdate": _RO_DATETIME,
        "hs_lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    "invoices": {
        "hs_currency": _STRING,
        "hs_invoice_date": _DATETIME,
        "hs_due_date": _DATETIME,
        "hs_invoice_status": ("enumeration", "select", False, _options("draft", "open", "paid", "voided")),
        "hs_number": _RO_STRING,
        "hs_title": _STRING,
        "hs_tax_id": _STRING,
        "hs_purchase_order_number": _STRING,
        "hs_comments": _TEXTAREA,
        "hs_invoice_billable": _BOOL,
        "hs_allowed_payment_methods": ("enumeration", "checkbox", False, _options("credit_or_debit_card", "ach")),
        "hs_invoice_payment_collection_method": ("enumeration", "select", False, _options("manual", "none")),
        "hs_allow_partial_payments": _BOOL,
        "hs_collect_address_types": _STRING,
        **{f"hs_recipient_shipping_{p}": _STRING for p in ("address", "address2", "city", "state", "zip", "country")},
        **{f"hs_recipient_company_{p}": _STRING for p in ("address", "address2", "city", "state", "zip")},
        "hs_custom_fields": _STRING,
        "hs_invoice_link": _RO_STRING,
        "hs_language": _STRING,
        "hs_locale": _STRING,
        "hs_pdf_download_link": _RO_STRING,
        "hs_invoice_source": _RO_STRING,
        "hs_external_invoice_status": _STRING,
        "hs_amount_billed": _RO_NUMBER,
        "hs_amount_paid": _RO_NUMBER,
        "hs_balance_due": _RO_NUMBER,
        "hs_subtotal": _RO_NUMBER,
        "hs_createdate": _RO_DATETIME,
        "hs_lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    "commerce_payments": {
        "hs_currency_code": _STRING,
        "hs_customer_email": _STRING,
        "hs_fees_amount": _NUMBER,
        "hs_initial_amount": _NUMBER,
        "hs_initiated_date": _DATETIME,
        "hs_internal_comment": _TEXTAREA,
        "hs_latest_status": (
            "enumeration",
            "select",
            False,
            _options(
                "processing",
                "succeeded",
                "failed",
                "partially_refunded",
                "refunded",
                "processing_refund",
                "disputed_won",
                "disputed_lost",
                "disputed_action_required",
                "disputed_awaiting_decision",
            ),
        ),
        "hs_payment_method_bank_or_issuer": _STRING,
        "hs_payment_method_last_4": _STRING,
        "hs_payment_method_type": (
            "enumeration",
            "select",
            False,
            _options("card", "ach", "cash", "check", "wire_transfer", "other", "sepa", "bacs", "pads"),
        ),
        "hs_payout_date": _DATETIME,
        "hs_processor_type": (
            "enumeration",
            "select",
            False,
            _options("hs_payments", "byo_stripe", "none", "quickbooks", "xero"),
        ),
        "hs_reference_number": _STRING,
        "hs_refunds_amount": _NUMBER,
        "hs_net_amount": _RO_NUMBER,
        "hs_payment_id": _RO_STRING,
        "hs_has_associated_invoice": ("bool", "booleancheckbox", True, _BOOL[3]),
        "hs_number_of_associated_invoices": _RO_NUMBER,
        "hs_payment_source_app": _RO_STRING,
        "hs_platform_fee": _RO_NUMBER,
        "hs_createdate": _RO_DATETIME,
        "hs_lastmodifieddate": _RO_DATETIME,
        "hs_object_id": _RO_NUMBER,
    },
    **{
        name: {  # the discounts guide's example: hs_label, hs_duration, hs_type, hs_value, hs_sort_order
            "hs_label": _STRING,
            "hs_duration": ("enumeration", "select", False, _options("ONCE", "FOREVER", "MONTHS")),
            "hs_type": ("enumeration", "select", False, _options("PERCENT", "FIXED")),
            "hs_value": _NUMBER,
            "hs_sort_order": _NUMBER,
            "hs_createdate": _RO_DATETIME,
            "hs_lastmodifieddate": _RO_DATETIME,
            "hs_object_id": _RO_NUMBER,
        }
        for name in ("discounts", "fees", "taxes")
    },
}


def default_property_groups(object_type: str) -> dict[str, dict]:
    """The group HubSpot's own properties of a type are in ("contactinformation"), as the API shows it."""
    singular = OBJECT_TYPES[object_type].singular
    name = f"{singular}{assumptions.DEFAULT_PROPERTY_GROUP_SUFFIX}"
    label = f"{singular.replace('_', ' ').capitalize()} information"
    return {name: {"name": name, "label": label, "displayOrder": 0, "archived": False}}


def default_properties(object_type: str) -> dict[str, PropertyDefinition]:
    group = f"{OBJECT_TYPES[object_type].singular}information"
    definitions = {}
    for order, (name, (type_, field_type, read_only, options)) in enumerate(_DEFAULT_PROPERTIES[object_type].items()):
        definitions[name] = PropertyDefinition(
            name=name,
            label=name.removeprefix("hs_").replace("_", " ").capitalize(),
            type=type_,
            field_type=field_type,
            group_name=group,
            options=list(options or []),
            read_only=read_only,
            has_unique_value=(object_type == "contacts" and name == "email"),
            display_order=order,
        )
    return definitions


@dataclass(frozen=True)
class AssociationType:
    from_type: str
    to_type: str
    type_id: int
    label: str | None = None


# (from, to, id, reverse id, label). NOTES §1.6; the first listed for a pair is its default.
_ASSOCIATIONS = [
    ("contacts", "companies", 279, 280, None),
    ("contacts", "companies", 1, 2, "Primary"),
    ("deals", "companies", 5, 6, "Primary"),
    ("deals", "companies", 341, 342, None),
    ("contacts", "deals", 4, 3, None),
    ("deals", "line_items", 19, 20, None),
    ("invoices", "deals", 175, 176, None),
    ("invoices", "contacts", 177, 178, None),
    ("invoices", "companies", 179, 180, None),
    ("invoices", "line_items", 409, 410, None),
    ("invoices", "commerce_payments", 541, 542, None),
    ("commerce_payments", "contacts", 387, 388, None),
    ("commerce_payments", "companies", 389, 390, None),
    ("commerce_payments", "deals", 391, 392, None),
    ("commerce_payments", "line_items", 395, 396, None),
    ("invoices", "discounts", 411, 412, None),
    ("invoices", "fees", 413, 414, None),
    ("invoices", "taxes", 415, 416, None),
]

ASSOCIATION_TYPES: dict[tuple[str, str], list[AssociationType]] = {}
REVERSE_TYPE_ID: dict[int, int] = {}
for _from, _to, _id, _reverse, _label in _ASSOCIATIONS:
    ASSOCIATION_TYPES.setdefault((_from, _to), []).append(AssociationType(_from, _to, _id, _label))
    ASSOCIATION_TYPES.setdefault((_to, _from), []).append(AssociationType(_to, _from, _reverse, _label))
    REVERSE_TYPE_ID[_id], REVERSE_TYPE_ID[_reverse] = _reverse, _id
PRIMARY_TYPE_IDS = {1, 2, 5, 6}


def association_type(from_type: str, to_type: str, type_id: int) -> AssociationType | None:
    return next((a for a in ASSOCIATION_TYPES.get((from_type, to_type), []) if a.type_id == type_id), None)


def default_association(from_type: str, to_type: str) -> AssociationType | None:
    """The unlabeled type between two object types (what `associations/default` creates)."""
    return next((a for a in ASSOCIATION_TYPES.get((from_type, to_type), []) if a.label is None), None)


def association_target(from_type: str, type_id: int) -> str | None:
    """The object type that association type `type_id` points to from `from_type`."""
    for (source, target), types in ASSOCIATION_TYPES.items():
        if source == from_type and any(a.type_id == type_id for a in types):
            return target
    return None
