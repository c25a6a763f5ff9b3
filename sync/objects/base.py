"""What an object type declares, so that the runner can sync it without knowing what it is.

An object type is a subclass of `ObjectType` with its names, mappings and rules as class attributes,
and hooks for what only it needs; an instance is registered in `sync.objects`. The runner
(sync.runner) owns the loop — detect, page, read, plan, write, remember — and asks the object type
at each step. Every attribute below has a documented default, so a simple object type is a short
class; none is probed with `getattr`.

The object type speaks *canonical fields*: the names the planner merges on, the same on both
sides ("email", "quantity"). It turns a raw HubSpot record and a raw QBO entity into engine
`Record`s, and canonical changes back into each API's body.

Compound records (an invoice and its lines) declare `line_fields` and the four line mappings; the
runner reads a HubSpot record's associated line items and a QBO document's `Line` array, and
writes lines back (HubSpot line items created, updated, archived and associated; QBO lines in a
full update, since QBO replaces all lines). Associations a record needs (an invoice's customer)
are declared as `Association`s; the runner reads them as fields and writes them as associations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sync.engine import HUBSPOT, QUICKBOOKS, Filter, Line, Plan, Record, SyncRules

if TYPE_CHECKING:
    from sync.clients.errors import ApiError
    from sync.clients.hubspot import HubSpotClient
    from sync.clients.quickbooks import QuickBooksClient
    from sync.store.links import LinkStore
    from sync.store.models import RecordLink, SyncSettings


@dataclass(frozen=True)
class Association:
    """A record's tie to a record of another synced object type, synced as a field.

    The canonical value is the *QBO id* of the associated record on both sides: QBO names it in
    `qbo_field` ({"value": id}); HubSpot associates the record with the linked partner of that id.
    An associated record that is not linked yet is a dependency: the record waits for it.
    """

    name: str  # the canonical field ("customer")
    object_type: str  # our object type of the associated record ("contacts")
    hubspot_object: str  # HubSpot's object type ("contacts")
    qbo_field: str  # the reference on the QBO entity ("CustomerRef")


@dataclass(frozen=True)
class LineReference:
    """A line's tie to a synced record of another type (an invoice line's product), synced as a line field.

    The canonical value is the QBO id of the referenced record when that record is linked, else None:
    an unlinked item and a line item without a product agree, and the reference appears once the
    record links. HubSpot holds the linked partner's id in `hubspot_property`."""

    name: str  # the canonical line field ("item")
    object_type: str  # ours ("products")
    hubspot_property: str  # on the HubSpot line ("hs_product_id")


@dataclass
class RunContext:
    """What an object type's hooks may use during a run: the clients, this object's link store and
    the sync's stored choices."""

    hubspot: HubSpotClient
    qbo: QuickBooksClient
    links: LinkStore
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. contacts: the display-name rule
    filters: Mapping[str, str] = field(default_factory=dict)  # stored filter names, keyed by source side
    set_up_at: datetime | None = None
    home_currency: str | None = None  # the QBO company's
    notes: list[str] = field(default_factory=list)  # said with every record this run creates or updates


class ObjectType(ABC):
    # --- names --------------------------------------------------------------------------------------------
    name: ClassVar[str]  # ours: in the database, URLs and the CLI ("contacts")
    hubspot_object: ClassVar[str]  # HubSpot's object type ("contacts")
    qbo_entity: ClassVar[str]  # QBO's entity ("Customer")
    hubspot_modified_property: ClassVar[str] = "hs_lastmodifieddate"
    # Our unique property on the HubSpot record, holding the QBO id: HubSpot creates are upserts on it,
    # so a create repeated after a crash updates instead of duplicating.
    id_property: ClassVar[str]
    id_property_label: ClassVar[str] = "QuickBooks id (Ledgersync)"
    id_property_group: ClassVar[str]  # the HubSpot property group it is created in
    # Property groups of ours, created before our properties: (HubSpot object, name, label).
    property_groups: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    # What every HubSpot create of this type must carry besides its fields (an invoice: its currency).
    hubspot_create_properties: ClassVar[Mapping[str, str]] = {}
    # Properties of ours on the HubSpot record besides the id property: (name, label, field type), created once.
    extra_hubspot_properties: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    # Properties of ours on other HubSpot objects the type writes: (object, name, label, group, field type).
    other_hubspot_properties: ClassVar[tuple[tuple[str, str, str, str, str], ...]] = ()
    # A QBO create of this type that dies unanswered cannot be found again by a unique key (an invoice): each
    # create goes alone, under the request id its pending write keeps, so QBO answers a retry with the first.
    qbo_creates_alone: ClassVar[bool] = False
    # Fields that flow one way whatever the sync's direction (narrowed by it): field → direction.
    field_directions: ClassVar[Mapping[str, str]] = {}
    line_field_directions: ClassVar[Mapping[str, str]] = {}  # the same for line fields
    # Fields the object type writes itself (`write_own_fields`), not as properties of the record:
    # an invoice's payments are records of their own in HubSpot.
    written_by_object: ClassVar[tuple[str, ...]] = ()
    # QBO name lists hide inactive rows unless asked; transactions have no Active.
    qbo_has_active: ClassVar[bool] = True
    recommended_direction: ClassVar[str] = "two_way"  # a new sync's direction unless one is given
    directions: ClassVar[tuple[str, ...]] = ("two_way", "hubspot_to_qbo", "qbo_to_hubspot")  # those it supports
    checks_with_quickbooks: ClassVar[bool] = False  # set-up calls `check_with_quickbooks`

    # --- mappings --------------------------------------------------------------------------------------------
    hubspot_properties: ClassVar[Mapping[str, str]] = {}  # canonical field → HubSpot property
    default_fields: ClassVar[tuple[str, ...]] = ()  # the canonical fields synced, each can be turned off
    # Fields set when a record is created on the other side, never merged afterwards (products: the type,
    # which QBO does not let an item change freely); each can be turned off like a mapping.
    create_only_fields: ClassVar[tuple[str, ...]] = ()
    associations: ClassVar[tuple[Association, ...]] = ()

    # --- matching ------------------------------------------------------------------------------------------
    key_required: ClassVar[bool] = False  # no key → excluded, explained
    key_missing_reason: ClassVar[str] = (
        "it has no matching key (for example no email address), so it cannot be matched safely"
    )
    # (category, fix) when a key must be unique on each side: a new record sharing its key with another on
    # its own side fails with it (the reader then also looks up each side's own keys).
    duplicate_key: ClassVar[tuple[str, str] | None] = None
    hubspot_key_property: ClassVar[str | None] = None  # a unique HubSpot property to batch-read keys by

    # --- events ----------------------------------------------------------------------------------------------
    event_types: ClassVar[Mapping[str, str]] = {}  # webhook object type → the side it comes from
    # HubSpot object types whose changes re-plan the associated records of this type
    hubspot_triggers: ClassVar[tuple[str, ...]] = ()
    # QBO entities whose changes (read by the same CDC) re-plan records of this type: `quickbooks_triggered`
    # names them (an invoice's payment).
    quickbooks_triggers: ClassVar[tuple[str, ...]] = ()

    # --- filters, failures, deletes -------------------------------------------------------------------------
    recommended_filters: ClassVar[Mapping[str, str]] = {}  # set when the sync is set up: {side: filter name}
    filter_labels: ClassVar[Mapping[str, str]] = {}  # filter name → what it means, in words
    advice: ClassVar[Mapping[str, str]] = {}  # failure category → what the user can do
    qbo_delete_body: ClassVar[Mapping[str, Any] | None] = None  # a propagated delete: this sparse body

    # --- compound records --------------------------------------------------------------------------------------
    line_fields: ClassVar[tuple[str, ...]] = ()  # non-empty: records of this type have lines
    line_object: ClassVar[str] = "line_items"  # HubSpot's object type of a line
    line_properties: ClassVar[Mapping[str, str]] = {}  # canonical line field → HubSpot line item property
    line_references: ClassVar[tuple[LineReference, ...]] = ()
    # HubSpot's association type id from a line to its record (invoice 410): with it, a record's new line
    # items are created in one batch call, associated as they are made; without it, one by one.
    line_association_type: ClassVar[int | None] = None

    @property
    def has_lines(self) -> bool:
        return bool(self.line_fields)

    # --- rules ---------------------------------------------------------------------------------------------

    def rules(self, settings: SyncSettings) -> SyncRules:
        """The planner's rules from a sync's stored settings (fields turned off are left alone)."""
        mappings = settings.field_mappings or {}
        enabled = tuple(name for name in self.default_fields if mappings.get(name, {}).get("enabled", True))
        create_only = tuple(name for name in self.create_only_fields if mappings.get(name, {}).get("enabled", True))
        return SyncRules(
            direction=settings.direction,
            conflict_winner=settings.conflict_winner,
            fields=enabled + tuple(a.name for a in self.associations),
            create_fields=create_only,
            delete_policy=settings.delete_policy,
            filters=self.sync_filters(settings.filters),
            natural_key=self.natural_key_for(settings.options or {}),
            key_required=self.key_required,
            key_missing_reason=self.key_missing_reason,
            duplicate_key=self.duplicate_key,
            line_fields=self.line_fields,
            field_directions=self.field_directions,
            line_field_directions=self.line_field_directions,
        )

    def natural_key_for(self, options: Mapping[str, Any]) -> Callable[[Record], str | None]:
        """The key function under a sync's options (products: by name too, when asked)."""
        return self.natural_key

    def natural_key(self, record: Record) -> str | None:
        """The key two unlinked records match on (None: records of this type never match, they are created)."""
        return None

    def quickbooks_key_queries(self, keys: list[str]) -> list[str]:
        """QBO queries for the entities whose key is one of `keys` (none: no key lookup in QBO)."""
        return []

    def hubspot_key_search(self, keys: list[str]) -> list[dict] | None:
        """Search filter groups (ORed) for the HubSpot records whose key is one of `keys`, for a key that is
        not a unique property (None: use `hubspot_key_property`, or no lookup)."""
        return None

    def quickbooks_triggered(self, entity: str, raw: dict) -> set[str]:
        """The QBO ids of our records that a changed `entity` (one of `quickbooks_triggers`) concerns."""
        return set()

    def prepare(self, context: RunContext, rules: SyncRules) -> SyncRules:
        """Once at the start of a run: look up what the run needs (an account, a currency) into
        `context.options` / `context.notes`, and return the rules to run with."""
        return rules

    def sync_filters(self, stored: Mapping[str, str] | None) -> dict[str, Filter]:
        """The engine's filters for the stored filter names (sync.setup refuses unknown names)."""
        return {}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The sync's options as given by a user, checked (ValueError says what is wrong)."""
        return options

    def refuse_direction(self, direction: str, country: str | None) -> str | None:
        """Why this object cannot sync in `direction` for a QBO company of `country` (None: it can)."""
        return None

    def quickbooks_operation(self, changes: Mapping[str, Any]) -> str | None:
        """A QBO operation that carries these changes instead of an update ("void"), or None."""
        return None

    def check_with_quickbooks(self, qbo: QuickBooksClient, options: dict[str, Any], set_up_at: datetime) -> dict:
        """At set-up, when `checks_with_quickbooks`: the options checked against the QBO company and completed
        (products: the accounts items are created with). ValueError says what is wrong."""
        return options

    # --- records ---------------------------------------------------------------------------------------------

    def hubspot_read_properties(self) -> list[str]:
        return [*self.hubspot_properties.values(), self.id_property, self.hubspot_modified_property]

    def from_hubspot(self, raw: dict, extra: Mapping[str, Any] | None = None) -> Record:
        """A HubSpot record as canonical fields; `extra` holds what `enrich_hubspot` found for it."""
        properties = raw["properties"]
        fields = {name: blank_to_none(properties.get(prop)) for name, prop in self.hubspot_properties.items()}
        fields.update(extra or {})
        return Record(HUBSPOT, str(raw["id"]), fields, deleted=bool(raw.get("archived")))

    @abstractmethod
    def from_quickbooks(self, raw: dict) -> Record:
        """A QBO entity as canonical fields (a deleted or inactive one as a deleted record)."""

    def to_hubspot(self, changes: Mapping[str, Any]) -> dict[str, str]:
        """HubSpot properties for canonical changes (a cleared field is an empty string)."""
        return _properties(self.hubspot_properties, changes)

    @abstractmethod
    def to_quickbooks(
        self, changes: Mapping[str, Any], merged: Mapping[str, Any], creating: bool, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A QBO body for canonical changes; `merged` holds every field's agreed value (for whole objects)."""

    def hubspot_create_body(self, changes: Mapping[str, Any]) -> dict[str, str]:
        """The properties a HubSpot create sends (default: every change); what HubSpot refuses on create
        goes in `after_hubspot_create` instead (an invoice is created as a draft)."""
        return self.to_hubspot(changes)

    def after_hubspot_create(self, context: RunContext, record_id: str, changes: Mapping[str, Any]) -> dict[str, str]:
        """Once a record was created in HubSpot, with its lines and associations: what else it gets (an
        invoice: its contact's primary company), and the properties to set now that it is whole (its status)."""
        return {}

    # --- lines (compound records only) -------------------------------------------------------------------------

    def line_from_hubspot(self, raw: dict) -> Line:
        properties = raw["properties"]
        return Line(
            str(raw["id"]),
            {name: blank_to_none(properties.get(prop)) for name, prop in self.line_properties.items()},
        )

    def lines_known(self, raw: dict) -> bool:
        """Whether a QBO document's lines say what its lines are (a voided one's are zeroed: unknown, kept)."""
        return True

    def lines_from_quickbooks(self, raw: dict) -> list[Line]:
        """A QBO document's lines (default: each `Line` entry that `line_from_quickbooks` takes)."""
        lines = (self.line_from_quickbooks(entry) for entry in raw.get("Line") or [])
        return [line for line in lines if line is not None]

    def line_from_quickbooks(self, raw: dict) -> Line | None:
        """A QBO `Line` entry as a line (None: not one of ours, e.g. the subtotal; it is kept as it is).
        Every object type with `line_fields` defines it (checked when it is registered)."""
        raise TypeError(f"{self.name} has lines but does not read QBO lines")

    def line_to_hubspot(self, fields: Mapping[str, Any]) -> dict[str, str]:
        return _properties(self.line_properties, fields)

    def line_to_quickbooks(self, fields: Mapping[str, Any], existing: dict | None) -> dict[str, Any]:
        """A QBO `Line` entry with these canonical fields (`existing`: the entry they change).
        Every object type with `line_fields` defines it (checked when it is registered)."""
        raise TypeError(f"{self.name} has lines but does not write QBO lines")

    # --- creates -----------------------------------------------------------------------------------------------

    def find_lost_create(self, qbo: QuickBooksClient, body: Mapping[str, Any]) -> dict | None:
        """A QBO create that may have been made by a batch that died before answering: find it.
        Default None: the create is resent with its own request id, which QBO answers with the first
        create's result."""
        return None

    def create_note(self, changes: Mapping[str, Any], qbo_body: Mapping[str, Any] | None) -> str | None:
        """What to say of a record created from these changes (in QBO: with this body), beside "created"."""
        return None

    def failure_category(self, error: ApiError) -> str | None:
        """This object type's own category for a failure (None: the general one)."""
        return None

    def failure_message(self, category: str, body: Mapping[str, Any] | None, message: str) -> str:
        """A create's failure in the user's words (e.g. which name is taken)."""
        return message

    # --- hooks ----------------------------------------------------------------------------------------------------

    def enrich_hubspot(
        self, context: RunContext, records: dict[str, dict], unlinked: list[str]
    ) -> dict[str, dict[str, Any]]:
        """Extra fields for HubSpot records before planning, by id (read from elsewhere: a company name,
        a billing standing). They are not synced fields unless named in `default_fields`."""
        return {}

    def enrich_quickbooks(self, context: RunContext, records: dict[str, dict]) -> dict[str, dict[str, Any]]:
        """Extra fields for QBO entities before planning, by id (read from other entities: the payments
        applied to an invoice). Deleted entities are not asked about."""
        return {}

    def write_own_fields(
        self,
        context: RunContext,
        side: str,
        record_id: str,
        values: Mapping[str, Any],
        merged: Mapping[str, Any],
        fresh: bool = False,
    ) -> None:
        """Write the changed `written_by_object` fields of a record on `side` (`merged`: every field's agreed
        value; `fresh`: the record was just created by us, so nothing of these is there yet). It must be
        idempotent: after a crash it is called again with the same values. A type that names such fields
        defines it (checked when it is registered)."""
        return None  # a type without such fields writes nothing here

    def extra_changed_ids(self, context: RunContext, since: datetime | None, started: datetime) -> set[str]:
        """HubSpot ids to re-plan that no search or webhook of this type finds (a sweep of another object)."""
        return set()

    def adjust_plan(
        self,
        context: RunContext,
        plan: Plan,
        links: list[RecordLink],
        hub_records: Mapping[str, Record],
        qbo_records: Mapping[str, Record],
    ) -> Plan:
        """Add or change actions the planner cannot know of (a rename rule)."""
        return plan


def _properties(names: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """HubSpot properties (all strings) for canonical values; a cleared value is an empty string."""
    return {names[name]: "" if value is None else str(value) for name, value in values.items() if name in names}


def quoted(values: list[str]) -> str:
    """Strings for a QBO query's IN list: single-quoted, a quote escaped as \\'."""
    return ", ".join("'" + str(value).replace("'", "\\'") + "'" for value in values)


def blank_to_none(value: Any) -> Any:
    return None if value in ("", None) else value


__all__ = ["HUBSPOT", "QUICKBOOKS", "Association", "ObjectType", "RunContext"]
