"""Reading request input the way HubSpot does: a malformed value is a 400 VALIDATION_ERROR, never a 500.

HubSpot deserialises each body into a typed model before any logic runs, so a batch input that is
not an object, an `idProperty` that is not a string or a `limit` that is not a number is refused
with `400 {status: "error", category: "VALIDATION_ERROR", message}` (NOTES §2). The SDK treats a 5xx
as temporary and retries it, so an emulator that crashes on such input would make a client's bug
look like an outage. Every route reads its input through these helpers; the messages follow
HubSpot's "Invalid input JSON …" wording where it is known, and are assumptions otherwise
(emulators/hubspot/assumptions.py, INVALID_INPUT_PREFIX).
"""

from __future__ import annotations

from flask import request

from emulators.hubspot import assumptions
from emulators.hubspot.errors import validation


def invalid(where: str, expected: str):
    return validation(f"{assumptions.INVALID_INPUT_PREFIX}: {where} must be {expected}", context={where: [expected]})


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise validation(f"{assumptions.INVALID_INPUT_PREFIX}: the request body must be a JSON object")
    return body


def batch_inputs(body: dict, limit: int) -> list[dict]:
    """`inputs`: a list of at most `limit` objects."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise invalid("inputs", "a list")
    if len(inputs) > limit:
        raise validation(
            f"Batch size {len(inputs)} exceeds the limit of {limit} inputs", context={"inputs": [str(len(inputs))]}
        )
    for index, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise invalid(f"inputs[{index}]", "an object")
    return inputs


def optional_string(container: dict, key: str, where: str | None = None) -> str | None:
    """A string field that may be absent or null (e.g. `idProperty`)."""
    value = container.get(key)
    if value is None or isinstance(value, str):
        return value
    raise invalid(where or key, "a string")


def record_id(container: dict, key: str, where: str | None = None) -> str:
    """An object id: a string, or an integer (the spec says string; HubSpot also takes a JSON number)."""
    value = container.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise invalid(where or key, "a string id")


def optional_object(container: dict, key: str, where: str | None = None) -> dict:
    """An object field that may be absent or null: {} then."""
    value = container.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise invalid(where or key, "an object")


def optional_list(container: dict, key: str, where: str | None = None) -> list:
    value = container.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise invalid(where or key, "a list")


def string_list(container: dict, key: str, where: str | None = None) -> list[str] | None:
    """A list of strings (property names), or None when absent."""
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise invalid(where or key, "a list of strings")


def optional_bool(container: dict, key: str) -> bool | None:
    value = container.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid(key, "true or false")


def optional_int(container: dict, key: str) -> int | None:
    value = container.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise invalid(key, "an integer")


def objects(container: dict, key: str) -> list[dict]:
    """A list of objects that may be absent or null ([] then)."""
    values = optional_list(container, key)
    for index, value in enumerate(values):
        if not isinstance(value, dict):
            raise invalid(f"{key}[{index}]", "an object")
    return values


def int_arg(name: str, default: int) -> int:
    """An integer query parameter."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation(f"{name} must be an integer", context={name: [raw]}) from None
