"""The properties API: list, read, create (including unique-value properties), update, archive; and
property groups (list, read, create, update, archive)."""

from __future__ import annotations

import re

from flask import Blueprint, g

from emulators.hubspot.errors import ApiError, json_response, no_content, not_found, validation
from emulators.hubspot.inputs import invalid, objects, optional_bool, optional_int, optional_string
from emulators.hubspot.routes_crm import json_body, require_scopes, state
from emulators.hubspot.schema import ObjectType, PropertyDefinition, resolve_object_type

bp = Blueprint("properties", __name__)

TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file", "select", "radio"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
    "phone_number": {"phonenumber"},
}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _object_type(name: str, write: bool) -> ObjectType:
    object_type = resolve_object_type(name)
    if object_type is None:
        raise ApiError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    scopes = [f"crm.schemas.{object_type.scope}.write"]
    if not write:
        scopes += [f"crm.schemas.{object_type.scope}.read", *object_type.read_scopes()]
    require_scopes(*scopes, *object_type.legacy_scopes)
    return object_type


def _definitions(object_type: ObjectType) -> dict[str, PropertyDefinition]:
    return state().accounts[g.token.hub_id].properties[object_type.name]


def _groups(object_type: ObjectType) -> dict[str, dict]:
    return state().accounts[g.token.hub_id].property_groups[object_type.name]


def _live_group(object_type: ObjectType, name: str) -> dict:
    group = _groups(object_type).get(name)
    if group is None or group["archived"]:
        raise not_found(f"Unable to find property group {name} for {object_type.name}")
    return group


def _check_group(object_type: ObjectType, name: str) -> None:
    group = _groups(object_type).get(name)
    if group is None or group["archived"]:
        raise validation(f"Property group {name} does not exist", context={"groupName": [name]})


@bp.get("/crm/v3/properties/<object_name>/groups")
def list_groups(object_name: str):
    object_type = _object_type(object_name, write=False)
    with state().lock:
        return json_response({"results": [dict(v) for v in _groups(object_type).values() if not v["archived"]]})


@bp.post("/crm/v3/properties/<object_name>/groups")
def create_group(object_name: str):
    object_type = _object_type(object_name, write=True)
    body = json_body()
    for field in ("name", "label"):
        optional_string(body, field)
    display_order = optional_int(body, "displayOrder")
    missing = [k for k in ("name", "label") if not body.get(k)]
    if missing:
        raise validation(f"Missing required fields: {', '.join(missing)}", context={"fields": missing})
    if not NAME.match(body["name"]):
        raise validation(f"Invalid property group name {body['name']!r}: lower-case letters, digits and underscores")
    with state().lock:
        groups = _groups(object_type)
        existing = groups.get(body["name"])
        if existing is not None and not existing["archived"]:
            raise ApiError(
                409, "OBJECT_ALREADY_EXISTS", f"A property group named '{body['name']}' already exists.",
                context={"name": [body["name"]]},
            )  # fmt: skip
        group = {
            "name": body["name"],
            "label": body["label"],
            "displayOrder": -1 if display_order is None else display_order,
            "archived": False,
        }
        groups[body["name"]] = group
        return json_response(dict(group), 201)


@bp.get("/crm/v3/properties/<object_name>/groups/<group_name>")
def read_group(object_name: str, group_name: str):
    object_type = _object_type(object_name, write=False)
    with state().lock:
        group = _live_group(object_type, group_name)
        return json_response(dict(group))


@bp.patch("/crm/v3/properties/<object_name>/groups/<group_name>")
def update_group(object_name: str, group_name: str):
    object_type = _object_type(object_name, write=True)
    body = json_body()
    optional_string(body, "label")
    display_order = optional_int(body, "displayOrder")
    with state().lock:
        group = _live_group(object_type, group_name)
        if body.get("label"):
            group["label"] = body["label"]
        if display_order is not None:
            group["displayOrder"] = display_order
        return json_response(dict(group))


@bp.delete("/crm/v3/properties/<object_name>/groups/<group_name>")
def archive_group(object_name: str, group_name: str):
    object_type = _object_type(object_name, write=True)
    with state().lock:
        group = _live_group(object_type, group_name)
        if any(d.group_name == group_name for d in _definitions(object_type).values()):
            raise validation(f"Property group {group_name} still has properties; move or archive them first")
        group["archived"] = True
    return no_content()


@bp.get("/crm/v3/properties/<object_name>")
def list_properties(object_name: str):
    object_type = _object_type(object_name, write=False)
    with state().lock:
        return json_response({"results": [d.to_api() for d in _definitions(object_type).values()]})


@bp.get("/crm/v3/properties/<object_name>/<property_name>")
def read_property(object_name: str, property_name: str):
    object_type = _object_type(object_name, write=False)
    with state().lock:
        definition = _definitions(object_type).get(property_name)
        if definition is None:
            raise not_found(f"Unable to find property {property_name} for {object_type.name}")
        return json_response(definition.to_api())


def _options(body: dict) -> list[dict]:
    """`options`: [{label, value, description?, displayOrder?, hidden?}], as the spec's OptionInput."""
    options = objects(body, "options")
    for index, option in enumerate(options):
        for field in ("label", "value"):
            if not isinstance(option.get(field), str):
                raise invalid(f"options[{index}].{field}", "a string")
        optional_string(option, "description", f"options[{index}].description")
        optional_int(option, "displayOrder")
        optional_bool(option, "hidden")
    return [dict(option) for option in options]


@bp.post("/crm/v3/properties/<object_name>")
def create_property(object_name: str):
    object_type = _object_type(object_name, write=True)
    body = json_body()
    for field in ("name", "label", "type", "fieldType", "groupName", "description"):
        optional_string(body, field)
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise validation(f"Missing required fields: {', '.join(missing)}", context={"fields": missing})
    name, type_, field_type = body["name"], body["type"], body["fieldType"]
    options, has_unique_value = _options(body), optional_bool(body, "hasUniqueValue")
    hidden, display_order = optional_bool(body, "hidden"), optional_int(body, "displayOrder")
    if not NAME.match(name) or name.startswith("hs_"):
        raise validation(
            f"Invalid property name {name!r}: lower-case letters, digits and underscores, "
            "starting with a letter, and not hs_"
        )
    if type_ not in TYPES or field_type not in TYPES[type_]:
        raise validation(f"fieldType {field_type!r} is not valid for type {type_!r}")
    if type_ == "enumeration" and not options:
        raise validation("An enumeration property needs options")
    now = state().clock.iso()
    with state().lock:
        _check_group(object_type, body["groupName"])
        definitions = _definitions(object_type)
        if name in definitions:
            raise ApiError(
                409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.", context={"name": [name]}
            )
        definition = PropertyDefinition(
            name=name,
            label=body["label"],
            type=type_,
            field_type=field_type,
            group_name=body["groupName"],
            description=body.get("description") or "",
            options=options,
            has_unique_value=bool(has_unique_value),
            hubspot_defined=False,
            hidden=bool(hidden),
            display_order=-1 if display_order is None else display_order,
            created_at=now,
            updated_at=now,
        )
        definitions[name] = definition
        return json_response(definition.to_api(), 201)


@bp.patch("/crm/v3/properties/<object_name>/<property_name>")
def update_property(object_name: str, property_name: str):
    object_type = _object_type(object_name, write=True)
    body = json_body()
    for field in ("label", "description", "groupName"):
        optional_string(body, field)
    optional_bool(body, "hidden")
    if "options" in body:
        body["options"] = _options(body)
    with state().lock:
        definition = _definitions(object_type).get(property_name)
        if definition is None:
            raise not_found(f"Unable to find property {property_name} for {object_type.name}")
        if definition.hubspot_defined:
            raise validation(f"{property_name} is a HubSpot-defined property; its definition is read-only")
        if body.get("groupName") is not None:
            _check_group(object_type, body["groupName"])
        for field, attribute in (
            ("label", "label"),
            ("description", "description"),
            ("groupName", "group_name"),
            ("hidden", "hidden"),
            ("options", "options"),
        ):
            if body.get(field) is not None:
                setattr(definition, attribute, body[field])
        definition.updated_at = state().clock.iso()
        return json_response(definition.to_api())


@bp.delete("/crm/v3/properties/<object_name>/<property_name>")
def archive_property(object_name: str, property_name: str):
    object_type = _object_type(object_name, write=True)
    with state().lock:
        definitions = _definitions(object_type)
        definition = definitions.get(property_name)
        if definition is None:
            raise not_found(f"Unable to find property {property_name} for {object_type.name}")
        if definition.hubspot_defined:
            raise validation(f"{property_name} is a HubSpot-defined property and cannot be archived")
        del definitions[property_name]
    return no_content()
