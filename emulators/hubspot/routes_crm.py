"""CRM objects v3 (NOTES §1.2): list, read, create, update, archive, batch, search, merge, GDPR delete."""

from __future__ import annotations

import bisect

from flask import Blueprint, current_app, g, request

from emulators.hubspot import assumptions
from emulators.hubspot.crm import Crm
from emulators.hubspot.errors import ApiError, json_response, no_content, not_found, validation
from emulators.hubspot.inputs import batch_inputs as _batch_inputs
from emulators.hubspot.inputs import json_body, optional_object, optional_string, record_id, string_list
from emulators.hubspot.schema import ObjectType, resolve_object_type
from emulators.hubspot.search import run_search
from emulators.hubspot.state import EmulatorState

bp = Blueprint("crm", __name__)
BATCH_LIMIT = 100
PAGE_LIMIT = 100


# --- helpers shared by the route modules -------------------------------------------------


def state() -> EmulatorState:
    return current_app.extensions["hubspot_emulator"]


def crm() -> Crm:
    """The token's account; its writes are the app's own (changeSource INTEGRATION, sourceId the app id)."""
    emulator = state()
    return Crm(emulator, emulator.accounts[g.token.hub_id], (assumptions.API_CHANGE_SOURCE, str(g.token.app_id)))


def require_scopes(*any_of: str) -> None:
    """403 MISSING_SCOPES unless the token has one of `any_of` (NOTES §2)."""
    if not set(any_of) & set(g.token.scopes):
        raise ApiError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more about required "
            "scopes here: https://developers.hubspot.com/scopes.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredScopes": list(any_of)},
                }
            ],
            links={"scopes": "https://developers.hubspot.com/scopes"},
        )


def object_type_of(name: str, write: bool = False) -> ObjectType:
    object_type = resolve_object_type(name)
    if object_type is None:
        raise ApiError(
            400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}", context={"objectType": [name]}
        )
    require_scopes(*(object_type.write_scopes() if write else object_type.read_scopes()))
    return object_type


def query_list(name: str) -> list[str] | None:
    """A query array given repeated (`?p=a&p=b`, the SDK) or comma-separated (`?p=a,b`)."""
    values = [v for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]
    return [v.strip() for v in values] or None


def flag(name: str) -> bool:
    return request.args.get(name, "false").lower() == "true"


def batch_inputs(body: dict, limit: int = BATCH_LIMIT) -> list[dict]:
    return _batch_inputs(body, limit)


def input_ids(inputs: list[dict]) -> list[tuple[str, str | None]]:
    """(id, idProperty) of each batch input, checked before anything is written: HubSpot reads the
    whole body into its model first, so one mistyped input refuses the request, not just that input."""
    return [
        (record_id(item, "id", f"inputs[{i}].id"), optional_string(item, "idProperty", f"inputs[{i}].idProperty"))
        for i, item in enumerate(inputs)
    ]


def batch_response(results: list[dict], errors: list[dict], started: str, success_status: int):
    body = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": state().clock.iso()}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return json_response(body, 207)
    return json_response(body, success_status)


def per_input_error(error: ApiError, **context: list[str]) -> dict:
    body = error.standard_error()
    body["context"] = {**body["context"], **context}
    return body


# --- single records -----------------------------------------------------------------------


@bp.get("/crm/v3/objects/<object_name>")
def list_page(object_name: str):
    object_type = object_type_of(object_name)
    try:
        limit = int(request.args.get("limit", 10))
    except ValueError:
        raise validation("limit must be an integer") from None
    if not 1 <= limit <= PAGE_LIMIT:
        raise validation(f"limit must be between 1 and {PAGE_LIMIT}", context={"limit": [str(limit)]})
    after = request.args.get("after")
    with state().lock:
        service = crm()
        table = service.table(object_type)
        if flag("archived"):
            ids = sorted(table.archived)
            source = table.archived
        else:
            ids, source = table.ordered_ids, table.records
        start = 0
        if after:
            try:
                start = bisect.bisect_left(ids, int(after))
            except ValueError:
                raise validation("after must be a record id cursor from paging.next.after") from None
        page_ids = ids[start : start + limit]
        results = [
            service.render(
                object_type,
                source[i],
                query_list("properties"),
                with_history=query_list("propertiesWithHistory"),
                associations=query_list("associations"),
            )
            for i in page_ids
        ]
        body = {"results": results}
        if start + limit < len(ids):
            next_after = str(ids[start + limit])
            body["paging"] = {"next": {"after": next_after, "link": f"?after={next_after}"}}
    return json_response(body)


@bp.get("/crm/v3/objects/<object_name>/<record_id>")
def read(object_name: str, record_id: str):
    object_type = object_type_of(object_name)
    with state().lock:
        service = crm()
        record = service.find(object_type, record_id, request.args.get("idProperty"), archived=flag("archived"))
        if record is None:
            raise not_found("Object not found.  objectId are usually numeric.", id=[record_id])
        body = service.render(
            object_type,
            record,
            query_list("properties"),
            with_history=query_list("propertiesWithHistory"),
            associations=query_list("associations"),
        )
    return json_response(body)


@bp.post("/crm/v3/objects/<object_name>")
def create(object_name: str):
    object_type = object_type_of(object_name, write=True)
    body = json_body()
    with state().lock:
        service = crm()
        record = service.create(object_type, body.get("properties") or {}, body.get("associations"))
        return json_response(service.render(object_type, record, all_properties=True), 201)


@bp.patch("/crm/v3/objects/<object_name>/<record_id>")
def update(object_name: str, record_id: str):
    object_type = object_type_of(object_name, write=True)
    body = json_body()
    with state().lock:
        service = crm()
        record = service.get(object_type, record_id, request.args.get("idProperty"))
        service.update(object_type, record, body.get("properties") or {})
        return json_response(service.render(object_type, record, all_properties=True))


@bp.delete("/crm/v3/objects/<object_name>/<record_id>")
def archive(object_name: str, record_id: str):
    object_type = object_type_of(object_name, write=True)
    with state().lock:
        service = crm()
        record = service.find(object_type, record_id)
        if record is not None:  # archiving an unknown or archived id is a 204 too
            service.archive(object_type, record)
    return no_content()


# --- batches -------------------------------------------------------------------------------


@bp.post("/crm/v3/objects/<object_name>/batch/read")
def batch_read(object_name: str):
    object_type = object_type_of(object_name)
    body = json_body()
    inputs = batch_inputs(body)
    id_property = optional_string(body, "idProperty")
    properties = string_list(body, "properties") or None
    with_history = string_list(body, "propertiesWithHistory") or None
    ids = [wanted for wanted, _ in input_ids(inputs)]
    started = state().clock.iso()
    results, errors, missing = [], [], []
    with state().lock:
        service = crm()
        for wanted in ids:
            record = service.find(object_type, wanted, id_property, archived=flag("archived"))
            if record is None:
                missing.append(wanted)
                continue
            results.append(service.render(object_type, record, properties, with_history=with_history))
    if missing:
        errors.append(
            per_input_error(
                not_found(
                    f"Could not get some {object_type.name} objects, they may be "
                    "deleted or not exist. Check that ids are valid."
                ),
                ids=missing,
            )
        )
    return batch_response(results, errors, started, 200)


@bp.post("/crm/v3/objects/<object_name>/batch/create")
def batch_create(object_name: str):
    """All or nothing, unless every input has an objectWriteTraceId: then 207 with per-input errors."""
    object_type = object_type_of(object_name, write=True)
    inputs = batch_inputs(json_body())
    traced = bool(inputs) and all(item.get("objectWriteTraceId") for item in inputs)
    started = state().clock.iso()
    created, errors = [], []
    with state().lock:
        service = crm()
        for item in inputs:
            try:
                created.append(service.create(object_type, item.get("properties") or {}, item.get("associations")))
            except ApiError as error:
                if not traced:
                    for record in created:
                        service.purge(object_type, record)
                    raise
                errors.append(per_input_error(error, objectWriteTraceId=[str(item["objectWriteTraceId"])]))
        results = [service.render(object_type, record, all_properties=True) for record in created]
    return batch_response(results, errors, started, 201)


@bp.post("/crm/v3/objects/<object_name>/batch/update")
def batch_update(object_name: str):
    object_type = object_type_of(object_name, write=True)
    inputs = batch_inputs(json_body())
    ids = input_ids(inputs)
    started = state().clock.iso()
    results, errors = [], []
    with state().lock:
        service = crm()
        for item, (wanted, id_property) in zip(inputs, ids, strict=True):
            try:
                record = service.get(object_type, wanted, id_property)
                service.update(object_type, record, item.get("properties") or {})
                results.append(service.render(object_type, record, all_properties=True))
            except ApiError as error:
                errors.append(per_input_error(error, ids=[wanted]))
    return batch_response(results, errors, started, 200)


@bp.post("/crm/v3/objects/<object_name>/batch/upsert")
def batch_upsert(object_name: str):
    object_type = object_type_of(object_name, write=True)
    inputs = batch_inputs(json_body())
    ids = input_ids(inputs)
    started = state().clock.iso()
    results, errors = [], []
    with state().lock:
        service = crm()
        for item, (wanted, id_property) in zip(inputs, ids, strict=True):
            if not id_property:
                errors.append(per_input_error(validation("idProperty is required for upsert"), ids=[wanted]))
                continue
            try:
                record = service.find(object_type, wanted, id_property)
                properties = dict(optional_object(item, "properties"))
                if record is None:
                    properties.setdefault(id_property, wanted)
                    record = service.create(object_type, properties)
                    results.append({**service.render(object_type, record, all_properties=True), "new": True})
                else:
                    service.update(object_type, record, properties)
                    results.append({**service.render(object_type, record, all_properties=True), "new": False})
            except ApiError as error:
                errors.append(per_input_error(error, ids=[wanted]))
    return batch_response(results, errors, started, 200)


@bp.post("/crm/v3/objects/<object_name>/batch/archive")
def batch_archive(object_name: str):
    object_type = object_type_of(object_name, write=True)
    inputs = batch_inputs(json_body())
    with state().lock:
        service = crm()
        for wanted, _ in input_ids(inputs):
            record = service.find(object_type, wanted)
            if record is not None:
                service.archive(object_type, record)
    return no_content()


# --- search, merge, GDPR delete --------------------------------------------------------------


@bp.post("/crm/v3/objects/<object_name>/search")
def search(object_name: str):
    object_type = object_type_of(object_name)
    body = json_body()
    with state().lock:
        service = crm()
        table = service.table(object_type)
        records = [table.records[i] for i in table.ordered_ids]
        page, total, next_offset = run_search(
            object_type,
            service.account.properties[object_type.name],
            records,
            body,
            lambda record, to_type: set(service.associated(object_type.name, record.id, to_type)),
        )
        properties = string_list(body, "properties") or list(object_type.search_defaults)
        results = [service.render(object_type, record, properties) for record in page]
    response = {"total": total, "results": results}
    if next_offset is not None:
        response["paging"] = {"next": {"after": str(next_offset), "link": f"?after={next_offset}"}}
    return json_response(response)


@bp.post("/crm/v3/objects/<object_name>/merge")
def merge(object_name: str):
    object_type = object_type_of(object_name, write=True)
    body = json_body()
    if not body.get("primaryObjectId") or not body.get("objectIdToMerge"):
        raise validation("primaryObjectId and objectIdToMerge are required")
    primary, merged = record_id(body, "primaryObjectId"), record_id(body, "objectIdToMerge")
    with state().lock:
        service = crm()
        survivor = service.merge(object_type, primary, merged)
        return json_response(service.render(object_type, survivor, all_properties=True))


@bp.post("/crm/v3/objects/contacts/gdpr-delete")
def gdpr_delete():
    object_type = object_type_of("contacts", write=True)
    body = json_body()
    wanted, id_property = record_id(body, "objectId"), optional_string(body, "idProperty")
    with state().lock:
        service = crm()
        record = service.get(object_type, wanted, id_property)
        service.purge(object_type, record)
    return no_content()
