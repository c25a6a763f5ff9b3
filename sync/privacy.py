"""A HubSpot privacy deletion (GDPR delete) purges what we keep about that person.

HubSpot sends `contact.privacyDeletion` when a contact is deleted for privacy reasons. The sync
itself treats it like any delete (the planner's rules: a tombstone, or with the "propagate"
policy the QBO customer is made inactive; QBO keeps its own books). On top of that, our copies
of the person's data go: the link's last synced values, a pending write, error texts, activity
messages, and the webhook payloads that carried property values. What stays is the bare HubSpot
id on the tombstoned link, so that the person is never created again from the other side.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.store.models import RecordLink, SyncActivity, WebhookEvent

PURGED = "personal data removed after a HubSpot privacy deletion"
# Webhook fields that never hold personal data (propertyValue, for one, does).
_KEPT_EVENT_FIELDS = ("eventId", "subscriptionId", "portalId", "appId", "occurredAt", "subscriptionType", "objectId")


def is_privacy_deletion(event_type: str) -> bool:
    return event_type.endswith(".privacyDeletion")


def purge_person(session: Session, installation_id: int, object_type: str, hubspot_ids: set[str]) -> int:
    """Remove our copies of these HubSpot records' personal data; returns how many links were purged."""
    if not hubspot_ids:
        return 0
    ids = sorted(hubspot_ids)
    links = list(
        session.scalars(
            select(RecordLink).where(
                RecordLink.installation_id == installation_id,
                RecordLink.object_type == object_type,
                RecordLink.hubspot_id.in_(ids),
            )
        )
    )
    for link in links:
        link.base_values, link.pending_write = {}, None
        if link.error_message:
            link.error_message = PURGED
        if link.excluded_reason:
            link.excluded_reason = PURGED
    session.execute(
        update(SyncActivity)
        .where(
            SyncActivity.installation_id == installation_id,
            SyncActivity.object_type == object_type,
            SyncActivity.hubspot_id.in_(ids),
        )
        .values(message=PURGED, details={})
    )
    events = session.scalars(
        select(WebhookEvent).where(
            WebhookEvent.installation_id == installation_id,
            WebhookEvent.source == "hubspot",
            WebhookEvent.object_type == object_type,
            WebhookEvent.object_id.in_(ids),
        )
    )
    for event in events:
        event.payload = {k: v for k, v in (event.payload or {}).items() if k in _KEPT_EVENT_FIELDS}
    return len(links)
