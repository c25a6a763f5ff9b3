"""The planner's data: what it is given and what it returns. Plain, immutable, no I/O.

Given
-----
``Record``    one record as read from one side, already normalized by the object's rules into
              *canonical fields* (the same names on both sides: "email", "display_name", …).
``Line``      a child of a compound record (an invoice line), with its own fields.
``Link``      the identity map entry pairing a HubSpot id with a QBO id, plus ``base``: the last
              synced value of every mapped field (and of every line), the common ancestor of the
              three-way merge. A link can carry a tombstone (one side deleted).
``SyncRules`` the object's settings as the planner needs them: direction, conflict winner, the
              enabled fields, the filters per direction, the delete policy, and the natural key.

Returned
--------
``Plan``      an ``Action`` per record that needs one (create, update, link, relink, delete,
              tombstone, skip, exclude, wait, fail). Writes carry ``changes`` (only the fields that
              change) and ``base_after``, the base to store once the write is read back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

HUBSPOT, QUICKBOOKS = "hubspot", "quickbooks"
Side = Literal["hubspot", "quickbooks"]
Direction = Literal["hubspot_to_qbo", "qbo_to_hubspot", "two_way"]
LINES = "lines"  # the key under which a compound record's lines live in changes and base


def other(side: str) -> str:
    return QUICKBOOKS if side == HUBSPOT else HUBSPOT


def flows(direction: str, source: str) -> bool:
    """Does a change on `source` go to the other side under `direction`? ("none": a field that flows
    against its sync's one way, which therefore never moves.)"""
    if direction == "none":
        return False
    return direction == "two_way" or (direction == "hubspot_to_qbo") == (source == HUBSPOT)


def narrowed(direction: str, own: str | None) -> str:
    """A field's direction within its sync's: never wider than the sync (a field of its own one way in a
    two-way sync flows that way; one against a one-way sync does not flow at all)."""
    if own is None or own == direction or own == "two_way":
        return direction
    return own if direction == "two_way" else "none"


@dataclass(frozen=True)
class Dependency:
    """Another record that must be linked before this one can be written (its customer, its product)."""

    object_type: str
    side: str
    id: str

    def __str__(self) -> str:
        return f"{self.object_type} {self.id} in {self.side}"


@dataclass(frozen=True)
class Line:
    id: str
    fields: Mapping[str, Any]
    depends_on: tuple[Dependency, ...] = ()


@dataclass(frozen=True)
class Record:
    side: str
    id: str
    fields: Mapping[str, Any]
    lines: tuple[Line, ...] | None = None  # None: not a compound record
    deleted: bool = False
    merged_into: str | None = None  # this id was merged into that surviving id
    depends_on: tuple[Dependency, ...] = ()
    created_by_sync: bool = False  # brought in by our own sync (filters can leave such records out)


@dataclass(frozen=True)
class Link:
    id: int
    hubspot_id: str | None
    qbo_id: str | None
    base: Mapping[str, Any] = field(default_factory=dict)
    # base[LINES] = {line_key: {field: value}}; line keys pair ids through `line_pairs`.
    line_pairs: Mapping[str, str] = field(default_factory=dict)  # hubspot line id → qbo line id
    tombstone: str | None = None  # the side whose record was deleted

    def id_on(self, side: str) -> str | None:
        return self.hubspot_id if side == HUBSPOT else self.qbo_id


@dataclass(frozen=True)
class Filter:
    """Which records may *start* syncing in one direction; a linked record keeps syncing."""

    name: str
    accepts: Callable[[Record], bool]
    # A record the filter cannot decide on without guessing fails instead of being left out:
    # (category, reason, fix), e.g. a contact whose invoice has several contacts.
    failure: Callable[[Record], tuple[str, str, str | None] | None] | None = None


@dataclass(frozen=True)
class SyncRules:
    direction: str = "two_way"
    conflict_winner: str = HUBSPOT
    fields: tuple[str, ...] = ()  # the enabled canonical fields
    create_fields: tuple[str, ...] = ()  # enabled fields a create carries that are never merged afterwards
    filters: Mapping[str, Filter] = field(default_factory=dict)  # keyed by the source side
    delete_policy: str = "keep"  # "keep": a delete leaves a tombstone; "propagate": deletes the other side
    natural_key: Callable[[Record], str | None] = lambda record: None
    key_required: bool = False  # no key → excluded, explained
    key_missing_reason: str = "it has no matching key (for example no email address), so it cannot be matched safely"
    # Set when a key must be unique on each side (products: a SKU): a new record whose key another record
    # on its own side has fails with this (category, fix) instead of being matched or created.
    duplicate_key: tuple[str, str] | None = None
    line_fields: tuple[str, ...] = ()
    # Fields that flow one way only, whatever the sync's direction (an invoice's QBO figures flow QBO → HubSpot):
    # field → "qbo_to_hubspot" | "hubspot_to_qbo", narrowed by the sync's own direction.
    field_directions: Mapping[str, str] = field(default_factory=dict)
    line_field_directions: Mapping[str, str] = field(default_factory=dict)  # the same, for line fields


@dataclass(frozen=True)
class Action:
    kind: Literal["create", "update", "link", "relink", "delete", "tombstone", "skip", "exclude", "wait", "fail"]
    source: Record | None = None
    target_side: str | None = None  # where the write goes
    target_id: str | None = None
    link_id: int | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    base_after: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    category: str | None = None  # fail: an error category the health pages group by
    fix: str | None = None  # fail: what the user can do
    filter_name: str | None = None  # exclude: the filter that left it out
    waiting_for: tuple[Dependency, ...] = ()
    # A compound record's line pairs after this plan ({hubspot line id: qbo line id}), when planning
    # paired lines the link did not know (the same new line found on both sides); None: as stored.
    line_pairs: Mapping[str, str] | None = None

    @property
    def writes(self) -> bool:
        return self.kind in ("create", "delete") or (self.kind in ("update", "link") and bool(self.changes))


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def writes(self) -> list[Action]:
        return [a for a in self.actions if a.writes]

    def of_kind(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def is_settled(self) -> bool:
        """Nothing to write: what a two-way sync reaches once every change has crossed."""
        return not self.writes()

    def waiting_on(self) -> set[Dependency]:
        return {d for a in self.actions if a.kind == "wait" for d in a.waiting_for}
