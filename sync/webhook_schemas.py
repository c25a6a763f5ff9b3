"""The shape of a webhook delivery, checked before anything is stored.

Two levels, because they fail differently. A *delivery* that is not what the sender sends (not
JSON, NaN or Infinity, nested past reason, the wrong top-level shape, over a thousand events) is
refused whole with a 400 and the reason: nothing in it can be trusted. An *event* inside a
well-formed delivery that we cannot use (not an object, a portal id of thirty digits, a time of
1e300, an entity that is a number) is kept aside as `ignored` with the reason, and the good events
of the same delivery are stored: refusing the delivery would make the sender retry all of them.

Every value that reaches a column is bounded to what the column holds, and ids are strings of
digits of a sane length, so no input can make PostgreSQL refuse the insert (a `DataError` would
fail every event of the delivery). Payloads are stored without NUL characters, which PostgreSQL's
JSON cannot hold.
"""

from __future__ import annotations

import json
import math
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_EVENTS = 1000  # both senders batch at most 100; a thousand is clearly not them
MAX_DEPTH = 32
MAX_PAYLOAD_CHARS = 16_000
MAX_REASON_CHARS = 500
DIGITS = r"^[0-9]{1,20}$"  # portal ids, realm ids, record ids: digits, at most 20 (int64 and then some)
LATEST_MS = 4_102_444_800_000  # 2100-01-01: a later occurredAt is not a time HubSpot sends


class MalformedDelivery(ValueError):
    """The delivery as a whole is not one the sender sends: refuse it (400) with this reason."""


def load_delivery(body: bytes) -> Any:
    """The delivery's JSON, or MalformedDelivery: JSON only (no NaN, no Infinity), and not nested deeper
    than any real delivery is."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedDelivery(f"the delivery is larger than {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body, parse_constant=_not_json)
    except RecursionError:
        raise MalformedDelivery("the delivery is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedDelivery(f"the delivery is not JSON: {error}") from None
    if _depth(document) > MAX_DEPTH:
        raise MalformedDelivery(f"the delivery is nested deeper than {MAX_DEPTH} levels")
    return document


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON value")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


class _Id(fields.Field):
    """An id given as digits: a JSON integer or a string of digits (≤ 20), loaded as a string."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("must be an id: digits, as a number or a string")
        text = str(value)
        if not text.isascii() or not text.isdigit() or len(text) > 20:
            raise ValidationError("must be an id of at most 20 digits")
        return text


class _Millis(fields.Field):
    """Epoch milliseconds, a finite integer between 1970 and 2100."""

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValidationError("must be a time in epoch milliseconds")
        if value != int(value) or not 0 <= value <= LATEST_MS:
            raise ValidationError("must be epoch milliseconds between 1970 and 2100")
        return int(value)


class HubSpotEventSchema(Schema):
    """One event of a HubSpot delivery (classic `contact.*` kinds and generic `object.*` ones)."""

    class Meta:
        unknown = INCLUDE  # HubSpot adds fields; they are kept in the payload

    subscriptionType = fields.String(validate=validate.Length(1, 64))
    eventType = fields.String(validate=validate.Length(1, 64))
    portalId = _Id(required=True)
    appId = _Id()
    objectId = _Id()
    fromObjectId = _Id()
    toObjectId = _Id()
    objectTypeId = fields.String(validate=validate.Regexp(r"^[0-9]{1,4}-[0-9]{1,12}$"))
    occurredAt = _Millis()
    eventId = _Id()
    attemptNumber = fields.Integer(strict=True, validate=validate.Range(0, 1000))
    propertyName = fields.String(validate=validate.Length(max=256))
    changeSource = fields.String(validate=validate.Length(max=64))

    @validates_schema
    def _names_its_kind(self, data, **_kwargs) -> None:
        if not data.get("subscriptionType") and not data.get("eventType"):
            raise ValidationError("an event names its subscriptionType")


class CloudEventSchema(Schema):
    """One QuickBooks event in the CloudEvents format: `qbo.customer.updated.v1` and its ids."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(validate=validate.Length(1, 128))
    type = fields.String(required=True, validate=validate.Regexp(r"^qbo\.[a-z]{1,32}\.[a-z]{1,16}\.v[0-9]{1,3}$"))
    intuitaccountid = fields.String(required=True, validate=validate.Regexp(DIGITS))
    intuitentityid = fields.String(required=True, validate=validate.Regexp(DIGITS))
    time = fields.String(validate=validate.Length(max=64))


class LegacyEntitySchema(Schema):
    """One entity of a legacy `eventNotifications[].dataChangeEvent.entities[]` list."""

    class Meta:
        unknown = INCLUDE

    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z]{1,32}$"))
    id = fields.String(required=True, validate=validate.Regexp(DIGITS))
    operation = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z]{1,16}$"))
    lastUpdated = fields.String(validate=validate.Length(max=64))
    deletedId = fields.String(validate=validate.Regexp(DIGITS))


def reason_of(error: ValidationError) -> str:
    """A validation error as one bounded line, naming each field."""
    messages = error.messages
    if isinstance(messages, dict):
        text = "; ".join(
            f"{field}: {' '.join(map(str, m)) if isinstance(m, list) else m}" for field, m in messages.items()
        )
    else:
        text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
    return text[:MAX_REASON_CHARS]


def _joined(problem: Any) -> str:
    return " ".join(map(str, problem)) if isinstance(problem, list) else str(problem)


def clean_payload(value: Any) -> dict[str, Any]:
    """What is stored of an event: NUL characters removed (PostgreSQL's JSON cannot hold them), and a
    payload too large to be a real event kept as a bounded excerpt."""
    cleaned = _without_nul(value)
    if not isinstance(cleaned, dict):
        cleaned = {"value": cleaned}
    text = json.dumps(cleaned, default=str)
    if len(text) > MAX_PAYLOAD_CHARS:
        return {"excerpt": text[:MAX_PAYLOAD_CHARS], "truncated": True}
    return cleaned


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(str(k)): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
