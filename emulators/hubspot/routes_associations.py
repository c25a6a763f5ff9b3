"""Associations v4 (NOTES §1.6): default and labelled, single and batch, list, archive, labels."""

from __future__ import annotations

from flask import Blueprint, request

from emulators.hubspot import assumptions, rules
from emulators.hubspot.crm import Crm
from emulators.hubspot.errors import ApiError, json_response, no_content, not_found, validation
from emulators.hubspot.inputs import int_arg, invalid, optional_list, record_id
from emulators.hubspot.routes_crm import batch_inputs, batch_response, crm, json_body, object_type_of, state
from emulators.hubspot.schema import ASSOCIATION_TYPES, ObjectType, association_type, default_association

bp = Blueprint("associations", __name__)
BATCH_CREATE_LIMIT, BATCH_READ_LIMIT = 2_000, 1_000


def _types(from_name: str, to_name: str, write: bool) -> tuple[ObjectType, ObjectType]:
    return object_type_of(from_name, write), object_type_of(to_name)


def _record_id(service: Crm, object_type: ObjectType, record_id: object) -> int:
    record = service.find(object_type, str(record_id))
    if record is None:
        raise not_found(f"No {object_type.name} with ID {record_id} exists", id=[str(record_id)])
    return record.id


def _id_of(item: dict, key: str, where: str) -> str:
    """The id of `{"from": {"id": …}}`-style references; the reference must be an object."""
    reference = item.get(key)
    if not isinstance(reference, dict):
        raise invalid(where, "an object with an id")
    return record_id(reference, "id", f"{where}.id")


def _label_entries(from_type: ObjectType, to_type: ObjectType, type_ids: set[int]) -> list[dict]:
    entries = []
    for type_id in sorted(type_ids):
        spec = association_type(from_type.name, to_type.name, type_id)
        entry = {"category": "HUBSPOT_DEFINED", "typeId": type_id}
        if spec and spec.label:  # the spec has `label` optional and non-nullable (the docs show null)
            entry["label"] = spec.label
        entries.append(entry)
    return entries


def _labels_between(service: Crm, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int) -> dict:
    type_ids = service.associated(from_type.name, from_id, to_type.name).get(to_id, set())
    # The spec types these ids as strings (the docs' example shows numbers); we follow the spec.
    return {
        "fromObjectTypeId": from_type.type_id,
        "fromObjectId": str(from_id),
        "toObjectTypeId": to_type.type_id,
        "toObjectId": str(to_id),
        "labels": [e["label"] for e in _label_entries(from_type, to_type, type_ids) if "label" in e],
    }


def _spec_type_ids(from_type: ObjectType, to_type: ObjectType, specs: object) -> set[int]:
    if not isinstance(specs, list) or not specs:
        raise validation("Association types must be a non-empty list of {associationCategory, associationTypeId}")
    type_ids = set()
    for spec in specs:
        type_id = (spec or {}).get("associationTypeId")
        if association_type(from_type.name, to_type.name, type_id) is None:
            raise validation(
                f"{type_id} is not a valid association type between {from_type.name} and {to_type.name}",
                context={"associationTypeId": [str(type_id)]},
            )
        type_ids.add(type_id)
    return type_ids


def _associate(
    service: Crm, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int, type_ids: set[int]
) -> None:
    for type_id in type_ids:
        service.associate(from_type, from_id, to_type, to_id, type_id)
    _recompute(service, from_type, from_id, to_type, to_id)


def _recompute(service: Crm, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int) -> None:
    for object_type, changed_id in ((from_type, from_id), (to_type, to_id)):
        record = service.table(object_type).records.get(changed_id)
        if record is not None:
            rules.after_change(service, object_type, record)


def _default_pair(service, from_type, from_id, to_type, to_id) -> list[dict]:
    spec = default_association(from_type.name, to_type.name)
    if spec is None:
        raise validation(f"{from_type.name} cannot be associated with {to_type.name}")
    _associate(service, from_type, from_id, to_type, to_id, {spec.type_id})
    reverse = default_association(to_type.name, from_type.name)
    return [
        {
            "from": {"id": str(to_id)},
            "to": {"id": str(from_id)},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": reverse.type_id},
        },
        {
            "from": {"id": str(from_id)},
            "to": {"id": str(to_id)},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": spec.type_id},
        },
    ]


@bp.put("/crm/v4/objects/<from_name>/<from_id>/associations/default/<to_name>/<to_id>")
def create_default(from_name: str, from_id: str, to_name: str, to_id: str):
    from_type, to_type = _types(from_name, to_name, write=True)
    started = state().clock.iso()
    with state().lock:
        service = crm()
        results = _default_pair(
            service, from_type, _record_id(service, from_type, from_id), to_type, _record_id(service, to_type, to_id)
        )
    return batch_response(results, [], started, 200)


@bp.put("/crm/v4/objects/<from_name>/<from_id>/associations/<to_name>/<to_id>")
def create_labelled(from_name: str, from_id: str, to_name: str, to_id: str):
    from_type, to_type = _types(from_name, to_name, write=True)
    specs = request.get_json(silent=True)
    with state().lock:
        service = crm()
        source, target = _record_id(service, from_type, from_id), _record_id(service, to_type, to_id)
        _associate(service, from_type, source, to_type, target, _spec_type_ids(from_type, to_type, specs))
        return json_response(_labels_between(service, from_type, source, to_type, target), 201)


@bp.get("/crm/v4/objects/<from_name>/<from_id>/associations/<to_name>")
def list_associations(from_name: str, from_id: str, to_name: str):
    from_type, to_type = _types(from_name, to_name, write=False)
    limit = min(int_arg("limit", 500), 500)
    after = int_arg("after", 0)
    with state().lock:
        service = crm()
        source = _record_id(service, from_type, from_id)
        targets = sorted(service.associated(from_type.name, source, to_type.name).items())
        page = [t for t in targets if t[0] > after][:limit]
        body = {
            "results": [
                {"toObjectId": str(to_id), "associationTypes": _label_entries(from_type, to_type, ids)}
                for to_id, ids in page
            ]
        }
        if len([t for t in targets if t[0] > after]) > limit:
            body["paging"] = {"next": {"after": str(page[-1][0]), "link": f"?after={page[-1][0]}"}}
    return json_response(body)


@bp.delete("/crm/v4/objects/<from_name>/<from_id>/associations/<to_name>/<to_id>")
def archive_pair(from_name: str, from_id: str, to_name: str, to_id: str):
    from_type, to_type = _types(from_name, to_name, write=True)
    with state().lock:
        service = crm()
        source, target = _record_id(service, from_type, from_id), _record_id(service, to_type, to_id)
        service.disassociate(from_type, source, to_type, target)
        _recompute(service, from_type, source, to_type, target)
    return no_content()


def _batch_pairs(from_name: str, to_name: str, write_pair, needs: str, status: int, partial_status: int):
    """A batch of {from, to, …} inputs: each pair written by `write_pair(service, from_type, source,
    to_type, target, item)` → its results; a bad pair is a per-input error, never the whole batch.
    `partial_status`: what HubSpot answers when some inputs failed (207, or 200 where the spec says so)."""
    from_type, to_type = _types(from_name, to_name, write=True)
    inputs = batch_inputs(json_body(), BATCH_CREATE_LIMIT)
    started = state().clock.iso()
    results, errors = [], []
    with state().lock:
        service = crm()
        for item in inputs:
            try:
                source = _record_id(service, from_type, item["from"]["id"])
                target = _record_id(service, to_type, item["to"]["id"])
                results += write_pair(service, from_type, source, to_type, target, item)
            except ApiError as error:
                errors.append(error.standard_error())
            except (KeyError, TypeError):
                errors.append(validation(f"Each input needs {needs}").standard_error())
    response = batch_response(results, errors, started, status)
    if errors:
        response.status_code = partial_status
    return response


@bp.post("/crm/v4/associations/<from_name>/<to_name>/batch/associate/default")
def batch_default(from_name: str, to_name: str):
    def write_pair(service, from_type, source, to_type, target, _item):
        return _default_pair(service, from_type, source, to_type, target)

    # The spec documents only a 200 here, with `errors` and `numErrors` in the body, and SDK v12
    # deserialises only a 200 (a 207 makes it return None): some inputs failing is still a 200.
    return _batch_pairs(
        from_name, to_name, write_pair, "from.id and to.id", 200, assumptions.DEFAULT_BATCH_PARTIAL_STATUS
    )


@bp.post("/crm/v4/associations/<from_name>/<to_name>/batch/create")
def batch_create(from_name: str, to_name: str):
    def write_pair(service, from_type, source, to_type, target, item):
        _associate(service, from_type, source, to_type, target, _spec_type_ids(from_type, to_type, item.get("types")))
        return [_labels_between(service, from_type, source, to_type, target)]

    return _batch_pairs(from_name, to_name, write_pair, "from.id, to.id and types", 201, 207)


@bp.post("/crm/v4/associations/<from_name>/<to_name>/batch/read")
def batch_read(from_name: str, to_name: str):
    from_type, to_type = _types(from_name, to_name, write=False)
    inputs = batch_inputs(json_body(), BATCH_READ_LIMIT)
    ids = [record_id(item, "id", f"inputs[{index}].id") for index, item in enumerate(inputs)]
    started = state().clock.iso()
    results, errors = [], []
    with state().lock:
        service = crm()
        for wanted in ids:
            record = service.find(from_type, wanted)
            if record is None:
                errors.append(not_found(f"No {from_type.name} with ID {wanted} exists", ids=[wanted]).standard_error())
                continue
            targets = sorted(service.associated(from_type.name, record.id, to_type.name).items())
            if not targets:
                errors.append(
                    not_found(
                        f"No {to_type.name} is associated with {from_type.singular} {record.id}.",
                        fromObjectId=[str(record.id)],
                    ).standard_error()
                )
                continue
            results.append(
                {
                    "from": {"id": str(record.id)},
                    "to": [
                        {"toObjectId": str(to_id), "associationTypes": _label_entries(from_type, to_type, ids)}
                        for to_id, ids in targets
                    ],
                }
            )
    return batch_response(results, errors, started, 200)


@bp.post("/crm/v4/associations/<from_name>/<to_name>/batch/archive")
def batch_archive(from_name: str, to_name: str):
    from_type, to_type = _types(from_name, to_name, write=True)
    inputs = batch_inputs(json_body(), BATCH_CREATE_LIMIT)
    pairs = []
    for index, item in enumerate(inputs):
        source = _id_of(item, "from", f"inputs[{index}].from")
        targets = optional_list(item, "to", f"inputs[{index}].to")
        for position, target in enumerate(targets):
            if not isinstance(target, dict):
                raise invalid(f"inputs[{index}].to[{position}]", "an object")
        pairs.append((source, [record_id(t, "id", f"inputs[{index}].to[].id") for t in targets]))
    with state().lock:
        service = crm()
        for source_id, target_ids in pairs:
            source = service.find(from_type, source_id)
            if source is None:
                continue
            for target_id in target_ids:
                target_record = service.find(to_type, target_id)
                if target_record is not None:
                    service.disassociate(from_type, source.id, to_type, target_record.id)
                    _recompute(service, from_type, source.id, to_type, target_record.id)
    return no_content()


@bp.post("/crm/v4/associations/<from_name>/<to_name>/batch/labels/archive")
def batch_archive_labels(from_name: str, to_name: str):
    from_type, to_type = _types(from_name, to_name, write=True)
    inputs = batch_inputs(json_body(), BATCH_CREATE_LIMIT)
    triples = []
    for index, item in enumerate(inputs):
        types = optional_list(item, "types", f"inputs[{index}].types")
        if not all(isinstance(t, dict) for t in types):
            raise invalid(f"inputs[{index}].types", "a list of {associationCategory, associationTypeId}")
        triples.append(
            (
                _id_of(item, "from", f"inputs[{index}].from"),
                _id_of(item, "to", f"inputs[{index}].to"),
                {t.get("associationTypeId") for t in types},
            )
        )
    with state().lock:
        service = crm()
        for source_id, target_id, type_ids in triples:
            source, target = service.find(from_type, source_id), service.find(to_type, target_id)
            if source is None or target is None:
                continue
            service.disassociate(from_type, source.id, to_type, target.id, type_ids)
            _recompute(service, from_type, source.id, to_type, target.id)
    return no_content()


@bp.get("/crm/v4/associations/<from_name>/<to_name>/labels")
def labels(from_name: str, to_name: str):
    from_type, to_type = _types(from_name, to_name, write=False)
    return json_response(
        {
            "results": [
                {"category": "HUBSPOT_DEFINED", "typeId": a.type_id, **({"label": a.label} if a.label else {})}
                for a in ASSOCIATION_TYPES.get((from_type.name, to_type.name), [])
            ]
        }
    )
