"""`POST /webhooks/hubspot` and `POST /webhooks/quickbooks`: verify, store, acknowledge — fast.

HubSpot's v3 signature covers the URI HubSpot called, which behind a proxy is
not `request.url`: it is rebuilt from APP_BASE_URL. Nothing slow happens here;
stored events are processed by the workers.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from blueprints import current_runtime, db_session
from sync.store.models import WebhookEvent
from sync.tasks.syncing import enqueue_for_events
from sync.webhooks import (
    MalformedDelivery,
    SignatureInvalid,
    parse_hubspot,
    parse_quickbooks,
    store_events,
    verify_hubspot_v3,
    verify_intuit,
)

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)


def _refused(reason: str, status: int = 401):
    log.warning("webhook refused", extra={"path": request.path, "reason": reason})
    return jsonify({"error": reason}), status


@bp.post("/webhooks/hubspot")
def hubspot():
    settings = current_runtime().config
    body = request.get_data()
    uri = settings.app_base_url + request.full_path.rstrip("?")
    try:
        verify_hubspot_v3(
            settings.hubspot_client_secret,
            "POST",
            uri,
            body,
            request.headers.get("X-HubSpot-Signature-v3"),
            request.headers.get("X-HubSpot-Request-Timestamp"),
        )
        events = parse_hubspot(body)
    except SignatureInvalid as error:
        return _refused(str(error))
    except MalformedDelivery as error:
        return _refused(f"malformed delivery: {error}", 400)
    return _store(events)


@bp.post("/webhooks/quickbooks")
def quickbooks():
    settings = current_runtime().config
    body = request.get_data()
    try:
        verify_intuit(settings.intuit_webhook_verifier_token, body, request.headers.get("intuit-signature"))
        events = parse_quickbooks(body)
    except SignatureInvalid as error:
        return _refused(str(error))
    except MalformedDelivery as error:
        return _refused(f"malformed delivery: {error}", 400)
    return _store(events)


def _store(events):
    session = db_session()
    counts = store_events(session, events)
    session.commit()
    installations = {
        i
        for (i,) in session.execute(
            select(WebhookEvent.installation_id)
            .where(WebhookEvent.status == "pending", WebhookEvent.installation_id.is_not(None))
            .distinct()
        )
    }
    for installation_id in installations:  # a queued run per touched object; the run does the work
        enqueue_for_events(current_runtime(), installation_id)
    log.info("webhook stored", extra={"path": request.path, **counts})
    return jsonify(counts), 200
