"""CRM search (NOTES §1.4): filter groups, operators, one sort, offset paging, the 10,000 cap."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from emulators.hubspot import assumptions
from emulators.hubspot.errors import validation
from emulators.hubspot.inputs import invalid, objects, optional_list, optional_string
from emulators.hubspot.schema import ObjectType, PropertyDefinition, resolve_object_type
from emulators.hubspot.state import Record
from emulators.hubspot.values import parse_ms, parse_number

OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS, MAX_LIMIT, MAX_QUERY_CHARS = 5, 6, 18, 200, 3000
QUERY_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email", "phone", "company", "hs_additional_emails"),
    "companies": ("name", "domain", "website", "phone"),
}


def comparable(definition: PropertyDefinition | None, value: str | None) -> object:
    """A value in a form that compares the way HubSpot compares that property type."""
    if value is None:
        return None
    kind = definition.type if definition else "string"
    if kind == "number":
        return parse_number(value)
    if kind in ("datetime", "date"):
        return parse_ms(value)
    if kind == "enumeration":
        return value  # enumerations compare case-sensitively
    return value.lower()


def tokens(value: str) -> list[str]:
    return [t for t in re.split(assumptions.CONTAINS_TOKEN_SPLIT, value.lower()) if t]


def contains_token(value: str | None, wanted: str) -> bool:
    if value is None:
        return False
    wanted = wanted.lower()
    if "*" in wanted:
        return fnmatch.fnmatchcase(value.lower(), wanted) or any(fnmatch.fnmatchcase(t, wanted) for t in tokens(value))
    return wanted in tokens(value) or wanted == value.lower()


def compile_filter(
    object_type: ObjectType,
    definitions: dict[str, PropertyDefinition],
    spec: dict,
    associated: Callable[[Record, str], set[int]],
) -> Callable[[Record], bool]:
    name, operator = spec.get("propertyName"), spec.get("operator", "EQ")
    if not name or operator not in OPERATORS:
        raise validation(f"Invalid filter: propertyName is required and operator must be one of {sorted(OPERATORS)}")
    if name.startswith("associations."):
        target = resolve_object_type(name.split(".", 1)[1])
        if target is None or operator not in ("EQ", "IN", "NEQ", "NOT_IN"):
            raise validation(f"Unsupported association filter {name} {operator}")
        wanted = {int(v) for v in (spec.get("values") or [spec.get("value")]) if str(v).isdigit()}
        negate = operator in ("NEQ", "NOT_IN")
        return lambda r: bool(associated(r, target.name) & wanted) != negate
    definition = definitions.get(name)
    if definition is None:
        raise validation(
            f"There was a problem with the request. Property {name} does not exist", context={"propertyName": [name]}
        )

    def value_of(record: Record) -> str | None:
        return record.properties.get(name)

    if operator == "HAS_PROPERTY":
        return lambda r: bool(value_of(r))
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: not value_of(r)
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        wanted = str(spec.get("value", ""))
        negate = operator == "NOT_CONTAINS_TOKEN"
        return lambda r: contains_token(value_of(r), wanted) != negate
    if operator in ("IN", "NOT_IN"):
        values = spec.get("values")
        if not isinstance(values, list):
            raise validation(f"{operator} needs `values`, a list")
        wanted_set = {comparable(definition, str(v)) for v in values}
        if operator == "IN":
            return lambda r: comparable(definition, value_of(r)) in wanted_set
        return lambda r: comparable(definition, value_of(r)) not in wanted_set
    if operator == "BETWEEN":
        low, high = comparable(definition, str(spec.get("value"))), comparable(definition, str(spec.get("highValue")))
        if low is None or high is None:
            raise validation("BETWEEN needs `value` and `highValue`")

        def between(record: Record) -> bool:
            value = comparable(definition, value_of(record))
            return value is not None and low <= value <= high

        return between
    target_value = comparable(definition, None if spec.get("value") is None else str(spec.get("value")))
    if operator == "EQ":
        return lambda r: comparable(definition, value_of(r)) == target_value
    if operator == "NEQ":
        return lambda r: comparable(definition, value_of(r)) != target_value
    if target_value is None:
        raise validation(f"{operator} needs a `value` of the property's type", context={"propertyName": [name]})
    compare = {
        "LT": lambda a: a < target_value,
        "LTE": lambda a: a <= target_value,
        "GT": lambda a: a > target_value,
        "GTE": lambda a: a >= target_value,
    }[operator]

    def ordered(record: Record) -> bool:
        value = comparable(definition, value_of(record))
        try:
            return value is not None and compare(value)
        except TypeError:
            return False

    return ordered


def parse_sort(sorts: list) -> tuple[str, bool] | None:
    """(property, descending) from `[{"propertyName", "direction"}]` or `["-createdate"]`."""
    if not sorts:
        return None
    if len(sorts) > 1:
        raise validation("Only one sort is allowed")
    sort = sorts[0]
    if isinstance(sort, str):
        return sort.lstrip("-"), sort.startswith("-")
    if isinstance(sort, dict) and sort.get("propertyName") and isinstance(sort["propertyName"], str):
        return sort["propertyName"], str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
    raise validation('Invalid sort: use {"propertyName": …, "direction": "ASCENDING"|"DESCENDING"}')


def run_search(
    object_type: ObjectType,
    definitions: dict[str, PropertyDefinition],
    records: list[Record],
    request: dict,
    associated: Callable[[Record, str], set[int]],
) -> tuple[list[Record], int, int | None]:
    """(page of records, total, next offset or None)."""
    if not isinstance(request, dict):
        raise validation("Invalid input JSON: the search request must be an object")
    groups = [
        optional_list(group, "filters", f"filterGroups[{i}].filters")
        for i, group in enumerate(objects(request, "filterGroups"))
    ]
    for i, filters in enumerate(groups):
        for j, spec in enumerate(filters):
            if not isinstance(spec, dict):
                raise invalid(f"filterGroups[{i}].filters[{j}]", "an object")
            optional_string(spec, "propertyName", f"filterGroups[{i}].filters[{j}].propertyName")
            optional_string(spec, "operator", f"filterGroups[{i}].filters[{j}].operator")
    if len(groups) > MAX_GROUPS:
        raise validation(f"Too many filter groups: {len(groups)} (maximum {MAX_GROUPS})")
    if any(len(filters) > MAX_FILTERS_PER_GROUP for filters in groups):
        raise validation(f"Too many filters in a filter group (maximum {MAX_FILTERS_PER_GROUP})")
    if sum(len(filters) for filters in groups) > MAX_FILTERS:
        raise validation(f"Too many filters (maximum {MAX_FILTERS} in all groups)")
    query = request.get("query")
    if query is not None and len(str(query)) > MAX_QUERY_CHARS:
        raise validation(f"The query is longer than {MAX_QUERY_CHARS} characters")
    limit = request.get("limit", 10)
    if not isinstance(limit, int) or limit < 0 or limit > MAX_LIMIT:
        raise validation(f"limit must be between 0 and {MAX_LIMIT}", context={"limit": [str(limit)]})
    try:
        offset = int(request.get("after") or 0)
    except (TypeError, ValueError):
        raise validation("`after` must be an integer offset, as a string") from None
    if offset >= assumptions.SEARCH_RESULT_CAP:
        raise validation(
            f"Search results are capped at {assumptions.SEARCH_RESULT_CAP}; "
            "narrow the filters instead of paging further."
        )

    compiled = [[compile_filter(object_type, definitions, f, associated) for f in filters] for filters in groups]
    matches = [r for r in records if not compiled or any(all(f(r) for f in group) for group in compiled)]
    if query:
        words = [w.lower() for w in str(query).split() if w]
        fields = QUERY_PROPERTIES.get(object_type.name, ("name", "hs_sku", "description"))
        matches = [
            r for r in matches if all(any(w in (r.properties.get(f) or "").lower() for f in fields) for w in words)
        ]
    sort = parse_sort(optional_list(request, "sorts"))
    if sort:
        name, descending = sort
        definition = definitions.get(name)
        present = [r for r in matches if r.properties.get(name)]
        absent = [r for r in matches if not r.properties.get(name)]
        present.sort(key=lambda r: (comparable(definition, r.properties[name]), r.id), reverse=descending)
        matches = present + absent
    total = len(matches)
    page = matches[offset : offset + limit]
    next_offset = offset + limit
    if next_offset >= min(total, assumptions.SEARCH_RESULT_CAP):
        next_offset = None
    return page, total, next_offset
