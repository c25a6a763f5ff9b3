"""Property values: validation and normalisation of what is written (NOTES §1.3).

Values travel as strings. A write is checked against the property's definition
and every failure of one input is reported together, in the shape of HubSpot's
"Property values were not valid: [...]" message.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from emulators.hubspot import assumptions
from emulators.hubspot.errors import ApiError
from emulators.hubspot.schema import PropertyDefinition
from emulators.hubspot.state import iso_from_ms

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def as_text(value: object) -> str | None:
    """JSON values as HubSpot stores them: strings; booleans lower-case; None clears."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_ms(value: str) -> int | None:
    """Epoch milliseconds from an epoch-ms string or an ISO-8601 date or datetime."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(parsed.timestamp() * 1000)


def parse_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def normalize(definition: PropertyDefinition, raw: object) -> tuple[str | None, dict | None]:
    """(stored value or None to clear, failure or None)."""
    value = as_text(raw)
    if value is None or value == "":
        return None, None
    name = definition.name

    def failure(code: str, message: str) -> tuple[None, dict]:
        return None, {
            "isValid": False,
            "message": message,
            "error": code,
            "name": name,
            "localizedErrorMessage": message,
        }

    if definition.type == "number":
        if parse_number(value) is None:
            return failure("INVALID_DECIMAL", f"{value} was not a valid number.")
        return value, None
    if definition.type in ("datetime", "date"):
        ms = parse_ms(value)
        if ms is None:
            return failure("INVALID_DATE", f"{value} was not a valid date or timestamp.")
        if definition.type == "date":
            return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat(), None
        return iso_from_ms(ms), None
    if definition.type == "bool":
        if value.lower() not in ("true", "false"):
            return failure("INVALID_BOOLEAN", f"{value} was not a valid boolean (true or false).")
        return value.lower(), None
    if definition.type == "enumeration":
        allowed = [o["value"] for o in definition.options]
        chosen = value.split(";") if definition.field_type == "checkbox" else [value]
        bad = [v for v in chosen if v not in allowed]
        if bad:
            return failure("INVALID_OPTION", f"{bad[0]} was not one of the allowed options: [{', '.join(allowed)}]")
        return value, None
    if name == "email" and not EMAIL.match(value):
        return failure("INVALID_EMAIL", f"Email address {value} is invalid")
    return value, None


def validate_input(
    definitions: dict[str, PropertyDefinition], properties: dict, hub_id: int, allow_read_only: frozenset = frozenset()
) -> dict[str, str | None]:
    """Check a write's properties; return {name: stored value or None}, or raise one 400."""
    if not isinstance(properties, dict):
        raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON: `properties` must be an object")
    cleaned: dict[str, str | None] = {}
    failures = []
    for name, raw in properties.items():
        definition = definitions.get(name)
        if definition is None:
            message = f'Property "{name}" does not exist'
            failures.append(
                {
                    "isValid": False,
                    "message": message,
                    "error": "PROPERTY_DOESNT_EXIST",
                    "name": name,
                    "localizedErrorMessage": message,
                }
            )
            continue
        if definition.read_only and name not in allow_read_only:
            message = f"{name} is a read only property; its value cannot be set."
            failures.append(
                {
                    "isValid": False,
                    "message": message,
                    "error": "READ_ONLY_VALUE",
                    "name": name,
                    "localizedErrorMessage": message,
                }
            )
            continue
        value, failure = normalize(definition, raw)
        if failure:
            failures.append(failure)
        else:
            cleaned[name] = value
    if failures:
        for failure in failures:
            failure["portalId"] = hub_id
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            assumptions.PROPERTY_ERROR_FORMAT.format(json=json.dumps(failures, separators=(",", ":"))),
            errors=[
                {"message": f["message"], "code": f["error"], "context": {"propertyName": [f["name"]]}}
                for f in failures
            ],
        )
    return cleaned
