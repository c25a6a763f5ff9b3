"""Webhooks in: verify the sender, split the delivery into events, route them to tenants, store them once.

The database is the source of truth: an event is stored before the delivery is
acknowledged, and processed from there. Deliveries repeat and arrive out of
order, and HubSpot's eventId "is not guaranteed to be unique", so an event is
recognised by a hash of its *content* (without eventId or attemptNumber): a
redelivery, or the same change sent twice, is stored once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sync.store.models import Installation, QboCompany, WebhookEvent
from sync.times import parse_time
from sync.webhook_schemas import (  # noqa: F401 - MalformedDelivery is part of this module's interface
    DIGITS,
    MAX_EVENTS,
    CloudEventSchema,
    HubSpotEventSchema,
    LegacyEntitySchema,
    MalformedDelivery,
    clean_payload,
    load_delivery,
    reason_of,
)

log = logging.getLogger(__name__)
MAX_TIMESTAMP_AGE_MS = 5 * 60 * 1000  # HubSpot v3: reject requests older than 5 minutes
# v3 signs the URI with these escapes decoded (HubSpot's documented list).
_V3_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
HUBSPOT_OBJECT_TYPES = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-7": "products",
    "0-8": "line_items",
    "0-53": "invoices",
    "0-101": "commerce_payments",
}
CLASSIC_PREFIXES = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "product": "products",
    "line_item": "line_items",
}


# Schemas are built once: each load is independent, so one instance serves every delivery.
HUBSPOT_EVENT, CLOUD_EVENT, LEGACY_ENTITY = HubSpotEventSchema(), CloudEventSchema(), LegacyEntitySchema()


class SignatureInvalid(Exception):
    """The request was not signed by the sender it claims to come from."""


def verify_hubspot_v3(
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int | None = None,
) -> None:
    """HubSpot's v3 signature over method + URI + body + timestamp; the URI is the one HubSpot called."""
    if not signature or not timestamp or not timestamp.isdigit():
        raise SignatureInvalid("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now_ms - int(timestamp)) > MAX_TIMESTAMP_AGE_MS:
        raise SignatureInvalid("X-HubSpot-Request-Timestamp is more than 5 minutes away")
    for encoded, plain in _V3_DECODED.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    message = method.encode() + uri.encode() + body + timestamp.encode()
    expected = base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, signature):
        raise SignatureInvalid("X-HubSpot-Signature-v3 does not match")


def verify_intuit(verifier_token: str, body: bytes, signature: str | None) -> None:
    """Intuit's `intuit-signature`: base64(HMAC-SHA256(verifier token, raw body))."""
    if not signature:
        raise SignatureInvalid("missing intuit-signature")
    expected = base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, signature):
        raise SignatureInvalid("intuit-signature does not match")


@dataclass(frozen=True)
class IncomingEvent:
    source: str  # "hubspot" | "quickbooks"
    account_id: str  # portal id or realm id
    event_type: str  # contact.propertyChange, object.creation, Customer.Update, …
    object_type: str | None
    object_id: str | None
    occurred_at: datetime | None
    payload: dict[str, Any]
    rejected: str | None = None  # why this event cannot be used: kept aside as `ignored`

    @property
    def dedupe_key(self) -> str:
        content = {k: v for k, v in self.payload.items() if k not in ("eventId", "attemptNumber", "id")}
        canonical = json.dumps([self.source, self.account_id, content], sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _rejected(source: str, raw: Any, reason: str, account_id: Any = None) -> IncomingEvent:
    """An event we cannot use, stored aside with the reason; nothing of it reaches a tenant."""
    account = str(account_id) if isinstance(account_id, int | str) and not isinstance(account_id, bool) else ""
    account = account if account.isascii() and account.isdigit() and len(account) <= 20 else "unknown"
    return IncomingEvent(source, account, "invalid", None, None, None, clean_payload(raw), rejected=reason)


def parse_hubspot(body: bytes) -> list[IncomingEvent]:
    """A HubSpot delivery: a JSON array of events (MalformedDelivery when it is not)."""
    events = load_delivery(body)
    if not isinstance(events, list):
        raise MalformedDelivery("a HubSpot delivery is a JSON array of events")
    if len(events) > MAX_EVENTS:
        raise MalformedDelivery(f"a HubSpot delivery holds at most {MAX_EVENTS} events")
    parsed = []
    for raw in events:
        if not isinstance(raw, dict):
            parsed.append(_rejected("hubspot", raw, "an event is a JSON object"))
            continue
        try:
            event = HUBSPOT_EVENT.load(raw)
        except ValidationError as error:
            parsed.append(_rejected("hubspot", raw, reason_of(error), raw.get("portalId")))
            continue
        kind = event.get("subscriptionType") or event.get("eventType")
        prefix = kind.split(".", 1)[0]
        object_type = (
            HUBSPOT_OBJECT_TYPES.get(event.get("objectTypeId")) if prefix == "object" else CLASSIC_PREFIXES.get(prefix)
        )
        occurred = event.get("occurredAt")
        parsed.append(
            IncomingEvent(
                "hubspot",
                event["portalId"],
                kind,
                object_type,
                event.get("objectId", event.get("fromObjectId")),  # associationChange names fromObjectId
                datetime.fromtimestamp(occurred / 1000, UTC) if occurred is not None else None,
                clean_payload(raw),
            )
        )
    return parsed


def parse_quickbooks(body: bytes) -> list[IncomingEvent]:
    """CloudEvents (an array) or the legacy `eventNotifications` format; a delivery may hold several realms."""
    document = load_delivery(body)
    if isinstance(document, list):
        if len(document) > MAX_EVENTS:
            raise MalformedDelivery(f"a QuickBooks delivery holds at most {MAX_EVENTS} events")
        return [_cloud_event(raw) for raw in document]
    if isinstance(document, dict) and "eventNotifications" in document:
        notifications = document["eventNotifications"]
        if not isinstance(notifications, list):
            raise MalformedDelivery("eventNotifications is a list of notifications")
        parsed = [event for notification in notifications for event in _legacy_events(notification)]
        if len(parsed) > MAX_EVENTS:
            raise MalformedDelivery(f"a QuickBooks delivery holds at most {MAX_EVENTS} events")
        return parsed
    raise MalformedDelivery("not a QuickBooks webhook delivery (a CloudEvents array or eventNotifications)")


def _cloud_event(raw: Any) -> IncomingEvent:
    if not isinstance(raw, dict):
        return _rejected("quickbooks", raw, "an event is a JSON object")
    try:
        event = CLOUD_EVENT.load(raw)
    except ValidationError as error:
        return _rejected("quickbooks", raw, reason_of(error), raw.get("intuitaccountid"))
    _qbo, entity, verb, _version = event["type"].split(".")  # qbo.customer.updated.v1
    return IncomingEvent(
        "quickbooks",
        event["intuitaccountid"],
        f"{entity}.{verb}",
        entity,
        event["intuitentityid"],
        parse_time(event.get("time")),
        clean_payload(raw),
    )


def _legacy_events(notification: Any) -> list[IncomingEvent]:
    if not isinstance(notification, dict):
        return [_rejected("quickbooks", notification, "a notification is a JSON object")]
    realm = notification.get("realmId")
    if not isinstance(realm, str) or not re.fullmatch(DIGITS, realm):
        return [_rejected("quickbooks", notification, "realmId: must be a realm id (digits)")]
    change = notification.get("dataChangeEvent")
    entities = change.get("entities") if isinstance(change, dict) else None
    if not isinstance(entities, list):
        return [_rejected("quickbooks", notification, "dataChangeEvent.entities: must be a list", realm)]
    parsed = []
    for raw in entities:
        if not isinstance(raw, dict):
            parsed.append(_rejected("quickbooks", {"realmId": realm, "entity": raw}, "an entity is an object", realm))
            continue
        try:
            entity = LEGACY_ENTITY.load(raw)
        except ValidationError as error:
            parsed.append(_rejected("quickbooks", {"realmId": realm, **raw}, reason_of(error), realm))
            continue
        name = entity["name"].lower()
        parsed.append(
            IncomingEvent(
                "quickbooks",
                realm,
                f"{name}.{entity['operation'].lower()}",
                name,
                entity["id"],
                parse_time(entity.get("lastUpdated")),
                clean_payload({"realmId": realm, **raw}),
            )
        )
    return parsed


def store_events(session: Session, events: list[IncomingEvent]) -> dict[str, int]:
    """Route and store each event once; unknown or uninstalled tenants are kept as `ignored`."""
    counts = {"stored": 0, "duplicates": 0, "ignored": 0}
    tenants: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    for event in events:
        key = (event.source, event.account_id)
        if key not in tenants:
            tenants[key] = _tenant(session, event.source, event.account_id)
        installation_id, company_id = tenants[key] if event.rejected is None else (None, None)
        status = "pending" if installation_id is not None else "ignored"
        reason = event.rejected or (None if installation_id is not None else "no active installation for this account")
        row = WebhookEvent(
            source=event.source,
            account_id=event.account_id,
            installation_id=installation_id,
            qbo_company_id=company_id,
            event_type=event.event_type[:64],
            object_type=event.object_type,
            object_id=event.object_id,
            occurred_at=event.occurred_at,
            dedupe_key=event.dedupe_key,
            payload=event.payload,
            status=status,
            error=reason,
        )
        try:
            with session.begin_nested():  # a duplicate fails alone, not the whole delivery
                session.add(row)
        except IntegrityError:
            counts["duplicates"] += 1
            continue
        counts["ignored" if status == "ignored" else "stored"] += 1
    return counts


def _tenant(session: Session, source: str, account_id: str) -> tuple[int | None, int | None]:
    if source == "hubspot":
        if not account_id.isdigit():
            return None, None
        installation = session.scalar(
            select(Installation).where(Installation.hub_id == int(account_id), Installation.status == "active")
        )
        return (installation.id, None) if installation else (None, None)
    company = session.scalar(
        select(QboCompany).where(QboCompany.realm_id == account_id, QboCompany.status == "connected")
    )
    return (company.installation_id, company.id) if company else (None, None)
