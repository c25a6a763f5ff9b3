"""The object types Ledgersync syncs, by name: one module each, registered here.

    from sync.objects import object_type
    object_type("contacts").qbo_entity  # "Customer"

Adding an object type: write its module (a subclass of `sync.objects.base.ObjectType`) and add an
instance to `REGISTERED`. The runner, the jobs, the webhooks' routing and the CLI find it here;
nothing else names it. Tests may `register` a type of their own.
"""

from __future__ import annotations

from sync.objects.base import Association, LineReference, ObjectType, RunContext
from sync.objects.contacts import Contacts
from sync.objects.invoices import Invoices
from sync.objects.products import Products

REGISTERED: dict[str, ObjectType] = {}


def register(kind: ObjectType) -> ObjectType:
    """Add an object type (a type with lines must read QBO lines, and write them if it syncs into QBO; a type
    that writes fields itself must define how: refused here, not mid-run)."""
    if kind.has_lines:
        writes_qbo = set(kind.directions) & {"two_way", "hubspot_to_qbo"}
        needed = ("line_from_quickbooks", "line_to_quickbooks") if writes_qbo else ("line_from_quickbooks",)
        missing = [name for name in needed if getattr(type(kind), name) is getattr(ObjectType, name)]
        if missing:
            raise TypeError(f"{kind.name} has line_fields but no {' or '.join(missing)}")
    if kind.written_by_object and type(kind).write_own_fields is ObjectType.write_own_fields:
        raise TypeError(f"{kind.name} names fields it writes itself ({', '.join(kind.written_by_object)}) but no"
                        " write_own_fields")  # fmt: skip
    REGISTERED[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    REGISTERED.pop(name, None)


def object_type(name: str) -> ObjectType:
    """The registered object type of that name (KeyError: not one we sync)."""
    return REGISTERED[name]


def names() -> list[str]:
    return sorted(REGISTERED)


def objects_for_event(webhook_object_type: str | None) -> tuple[str, ...]:
    """The object types whose runs a webhook about `webhook_object_type` concerns: the type that owns
    those records, and every type that it triggers (a company's change re-plans its contacts; a QBO
    payment, the invoices it is applied to). QBO webhooks name entities in lower case ("payment")."""
    if not webhook_object_type:
        return ()
    return tuple(
        kind.name
        for kind in REGISTERED.values()
        if webhook_object_type in kind.event_types
        or webhook_object_type in kind.hubspot_triggers
        or webhook_object_type in {entity.lower() for entity in kind.quickbooks_triggers}
    )


register(Contacts())
register(Products())
register(Invoices())

__all__ = [
    "REGISTERED",
    "Association",
    "LineReference",
    "ObjectType",
    "RunContext",
    "names",
    "object_type",
    "objects_for_event",
    "register",
    "unregister",
]
