"""The timeline: app events for new apps (v4), and the legacy v3 API as an app without templates sees it.

App-event types come from the project's `app-events/*-hsmeta.json`; an
occurrence names its type by uid (or "ae<appId>_<uid>"), a CRM record, and
properties that must match the type's (see `assumptions`).

Sources (looked up for this; the reference NOTES cover only the legacy v3 API):
developers.hubspot.com/docs/apps/developer-platform/add-features/app-events/reference (the `app-event`
component in `app/app-events/*-hsmeta.json`, ≤ 750 types, `timeline` scope required) and
…/app-events/send-event-occurrences (`POST /integrators/timeline/v4/events` with eventTypeName,
objectId, id, properties; occurrences are immutable; eventTypeName is the uid or fullyQualifiedName).
"""

from __future__ import annotations

from flask import Blueprint, g

from emulators.hubspot import assumptions
from emulators.hubspot.errors import ApiError, json_response, not_found, validation
from emulators.hubspot.routes_crm import batch_inputs, batch_response, crm, json_body, require_scopes, state
from emulators.hubspot.schema import resolve_object_type

bp = Blueprint("timeline", __name__)


def _event_type(name: str) -> tuple[str, dict]:
    project = state().project
    types = project.app_events if project else {}
    uid = name.split("_", 1)[1] if name.startswith(f"ae{state().default_app.app_id}_") else name
    if uid not in types:
        raise not_found(f"No app event type {name}", eventTypeName=[name])
    return uid, types[uid]


def _occurrence(item: dict) -> dict:
    if not isinstance(item, dict) or not item.get("eventTypeName") or not item.get("objectId"):
        raise validation("eventTypeName and objectId are required")
    uid, event_type = _event_type(str(item["eventTypeName"]))
    declared = {p["name"]: p for p in event_type.get("properties", [])}
    properties = item.get("properties") or {}
    unknown = sorted(set(properties) - set(declared))
    if unknown:
        raise validation(f"Properties not in event type {uid}: {unknown}", context={"properties": unknown})
    for name, spec in declared.items():
        value = properties.get(name)
        if value is None:
            continue
        options = [o["value"] for o in spec.get("options", [])]
        if spec.get("type") == "enumeration" and str(value) not in options:
            raise validation(f"{name}: {value} is not one of {options}")
        if spec.get("type") == "number":
            try:
                float(value)
            except (TypeError, ValueError):
                raise validation(f"{name}: {value} is not a number") from None
    object_type = resolve_object_type(str(event_type.get("objectType", "contacts")))
    if object_type is None or crm().find(object_type, str(item["objectId"])) is None:
        raise validation(f"No {event_type.get('objectType')} {item['objectId']} to put the event on")
    now = state().clock.iso()
    stored = {
        "id": str(item.get("id") or f"{uid}-{len(state().timeline_events.get(g.token.hub_id, [])) + 1}"),
        "eventTypeName": f"ae{state().default_app.app_id}_{uid}",
        "objectId": str(item["objectId"]),
        "objectTypeId": object_type.type_id,
        "timestamp": item.get("timestamp") or now,
        "properties": {k: str(v) for k, v in properties.items()},
        "createdAt": now,
    }
    events = state().timeline_events.setdefault(g.token.hub_id, [])
    events[:] = [e for e in events if e["id"] != stored["id"]]  # the same id again replaces (idempotency)
    events.append(stored)
    return stored


@bp.post("/integrators/timeline/v4/events")
def create_event():
    require_scopes("timeline")
    body = json_body()
    with state().lock:
        return json_response(_occurrence(body), assumptions.APP_EVENT_CREATE_STATUS)


@bp.post("/integrators/timeline/v4/events/batch")
def create_events():
    require_scopes("timeline")
    inputs = batch_inputs(json_body(), 500)
    started = state().clock.iso()
    results, errors = [], []
    with state().lock:
        for item in inputs:
            try:
                results.append(_occurrence(item))
            except ApiError as error:
                errors.append(error.standard_error())
    return batch_response(results, errors, started, 201)


@bp.route("/integrators/timeline/v3/events", methods=["POST"])
@bp.route("/integrators/timeline/v3/events/batch/create", methods=["POST"])
def legacy_create():
    """This app defines no v1/v3 event templates, so none of its legacy events can be created."""
    require_scopes("timeline")
    body = json_body()
    template = body.get("eventTemplateId") or next(
        (i.get("eventTemplateId") for i in body.get("inputs", []) if isinstance(i, dict)), None
    )
    raise ApiError(
        assumptions.LEGACY_TIMELINE_STATUS,
        "OBJECT_NOT_FOUND",
        f"Event template {template} not found for this app; new apps use app events (/integrators/timeline/v4/events)",
        context={"eventTemplateId": [str(template)]},
    )


@bp.get("/integrators/timeline/v3/events/<template_id>/<event_id>")
def legacy_read(template_id: str, event_id: str):
    require_scopes("timeline")
    raise ApiError(
        assumptions.LEGACY_TIMELINE_STATUS,
        "OBJECT_NOT_FOUND",
        f"Event template {template_id} not found for this app",
        context={"eventTemplateId": [template_id]},
    )
