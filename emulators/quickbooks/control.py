"""The QBO emulator's control API under /_emulator/ (documented in emulators/README.md)."""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, current_app, request

from emulators.quickbooks import faults
from emulators.quickbooks.companies import create_company
from emulators.quickbooks.entities import Writer, canonical_entity
from emulators.quickbooks.oauth import ACCOUNTING, _issue
from emulators.quickbooks.state import QboState

bp = Blueprint("control", __name__, url_prefix="/_emulator")


def state() -> QboState:
    return current_app.extensions["qbo_emulator"]


def _json(body: object, status: int = 200):
    return json.dumps(body), status, {"Content-Type": "application/json"}


def _error(message: str, status: int = 400):
    return _json({"error": message}, status)


def _body() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@bp.post("/reset")
def reset():
    state().reset()
    return _json({"reset": True})


@bp.post("/companies")
def create():
    """{"country": "US", "sandbox": false, "name"?, "currency"?, "multiCurrency"?, "customTxnNumbers"?,
    "bookCloseDate"?, "customFields"?: ["Crew #"], "realmId"?, "connect"?: true} → 201 with tokens."""
    body = _body()
    emulator = state()
    with emulator.lock:
        if body.get("realmId") in emulator.companies:
            return _error(f"company {body['realmId']} exists", 409)
        company = create_company(
            emulator,
            country=str(body.get("country", "US")),
            sandbox=bool(body.get("sandbox", False)),
            name=body.get("name"),
            currency=body.get("currency"),
            multi_currency=bool(body.get("multiCurrency")),
            realm_id=body.get("realmId"),
            custom_txn_numbers=bool(body.get("customTxnNumbers")),
            book_close_date=body.get("bookCloseDate"),
            custom_fields=body.get("customFields"),
        )
        answer = company.to_api()
        if body.get("connect", True):
            client_id = emulator.app.dev_client_id if company.sandbox else emulator.app.client_id
            tokens = _issue(company.realm_id, client_id, (ACCOUNTING,))
            answer.update(accessToken=tokens["access_token"], refreshToken=tokens["refresh_token"])
    return _json(answer, 201)


@bp.get("/companies/<realm_id>")
def read(realm_id: str):
    with state().lock:
        company = state().companies.get(realm_id)
        if company is None:
            return _error(f"no company {realm_id}", 404)
        return _json(company.to_api())


@bp.post("/companies/<realm_id>/seed")
def seed(realm_id: str):
    """{"entity": "Customer", "records": [{…}]} or {"entity", "count", "record": {… "{n}" …}}: writes as a
    user in QuickBooks would, with the same rules (and webhooks)."""
    body = _body()
    emulator = state()
    with emulator.lock:
        company = emulator.companies.get(realm_id)
        if company is None:
            return _error(f"no company {realm_id}", 404)
        entity = canonical_entity(str(body.get("entity", "")))
        records = body.get("records")
        if records is None:
            template = json.dumps(body.get("record") or {})
            records = [json.loads(template.replace("{n}", str(n))) for n in range(1, int(body.get("count", 0)) + 1)]
        writer = Writer(emulator, company)
        try:
            saved = [writer.save(entity, record, {}) for record in records]
        except faults.QboFault as error:
            return _json({"Fault": error.fault(), "created": 0}, error.status)
    return _json({"entity": entity, "created": len(saved), "ids": [s["Id"] for s in saved]}, 201)


@bp.post("/companies/<realm_id>/<entity>")
def ui_write(realm_id: str, entity: str):
    """A user's edit in QuickBooks: the body and ?operation= as the API takes them."""
    emulator = state()
    with emulator.lock:
        company = emulator.companies.get(realm_id)
        if company is None:
            return _error(f"no company {realm_id}", 404)
        name = canonical_entity(entity)
        try:
            saved = Writer(emulator, company).save(name, _body(), request.args.to_dict())
        except faults.QboFault as error:
            return _json({"Fault": error.fault()}, error.status)
    return _json({name: saved})


@bp.get("/requests")
def request_log():
    limit = int(request.args.get("limit", 100))
    with state().lock:
        emulator = state()
        return _json(
            {
                "total": sum(emulator.request_counts.values()),
                "byEndpoint": dict(sorted(emulator.request_counts.items())),
                "entries": emulator.request_log[-limit:] if limit else [],
            }
        )


@bp.delete("/requests")
def clear_requests():
    with state().lock:
        state().request_counts.clear()
        state().request_log.clear()
    return "", 204


@bp.post("/faults")
def add_fault():
    """{"path": prefix, "method"?, "status"?, "latencyMs"?, "timeoutSeconds"?, "count"?: 1, "body"?}"""
    body = _body()
    if not body.get("path") or (
        body.get("status") is None and not body.get("latencyMs") and not body.get("timeoutSeconds")
    ):
        return _error("give path and one of status, latencyMs, timeoutSeconds")
    fault = {
        "id": str(uuid.uuid4()),
        "path": body["path"],
        "method": body.get("method"),
        "status": body.get("status"),
        "latencyMs": int(body.get("latencyMs", 0)),
        "timeoutSeconds": body.get("timeoutSeconds"),
        "remaining": int(body.get("count", 1)),
        "body": body.get("body"),
    }
    with state().lock:
        state().faults.append(fault)
    return _json(fault, 201)


@bp.get("/faults")
def list_faults():
    with state().lock:
        return _json({"results": [f for f in state().faults if f["remaining"] > 0]})


@bp.delete("/faults")
def clear_faults():
    with state().lock:
        state().faults.clear()
    return "", 204


@bp.get("/clock")
def clock():
    emulator = state()
    return _json({"now": emulator.clock.iso(), "nowMs": emulator.clock.now_ms(), "speed": emulator.clock.speed})


@bp.post("/clock")
def move_clock():
    body = _body()
    emulator = state()
    with emulator.lock:
        if "advanceSeconds" in body:
            if float(body["advanceSeconds"]) < 0:
                return _error("the clock only moves forward")
            emulator.clock.advance(float(body["advanceSeconds"]))
        if "speed" in body:
            if float(body["speed"]) <= 0:
                return _error("speed must be positive")
            emulator.clock.set_speed(float(body["speed"]))
    return clock()


@bp.post("/config")
def configure():
    """{"rateLimits"?: bool, "refreshGraceSeconds"?: n, "refreshRotationSeconds"?: n}"""
    body = _body()
    emulator = state()
    with emulator.lock:
        if "rateLimits" in body:
            emulator.rate_limits_enabled = bool(body["rateLimits"])
            emulator.rate_windows.clear()
        for key, attribute in (
            ("refreshGraceSeconds", "refresh_grace_seconds"),
            ("refreshRotationSeconds", "refresh_rotation_seconds"),
        ):
            if key in body:
                try:
                    setattr(emulator, attribute, max(0.0, float(body[key])))
                except (TypeError, ValueError):
                    return _json({"error": f"{key} must be a number of seconds"}, 400)
        return _json(
            {
                "rateLimits": emulator.rate_limits_enabled,
                "refreshGraceSeconds": emulator.refresh_grace_seconds,
                "refreshRotationSeconds": emulator.refresh_rotation_seconds,
            }
        )


@bp.post("/oauth/auto-approve")
def auto_approve():
    """{"realmId": "…"} approves the authorize page at once for that company; null turns it off."""
    realm_id = _body().get("realmId")
    with state().lock:
        if realm_id is not None and realm_id not in state().companies:
            return _error(f"no company {realm_id}", 404)
        state().auto_approve = realm_id
    return _json({"autoApprove": realm_id})


@bp.post("/webhooks")
def webhook_settings():
    """{"url"?: target, "format"?: "cloudevents" | "legacy", "autoDeliver"?: bool}"""
    body = _body()
    dispatcher = state().webhooks
    if body.get("format") not in (None, "cloudevents", "legacy"):
        return _error("format must be cloudevents or legacy")
    with state().lock:
        if "url" in body:
            dispatcher.url = body["url"]
        dispatcher.format = body.get("format", dispatcher.format)
        dispatcher.auto_deliver = bool(body.get("autoDeliver", dispatcher.auto_deliver))
        return _json({"url": dispatcher.url, "format": dispatcher.format, "autoDeliver": dispatcher.auto_deliver})


@bp.post("/webhooks/deliver")
def deliver():
    return _json({"results": [d.to_api() for d in state().webhooks.deliver_due()]})


@bp.get("/webhooks/deliveries")
def deliveries():
    with state().lock:
        return _json(
            {
                "results": [d.to_api() for d in state().webhooks.deliveries],
                "pendingEvents": len(state().webhooks.pending),
            }
        )


@bp.post("/webhooks/faults")
def webhook_faults():
    body = _body()
    if body.get("action") not in ("drop", "duplicate", "reorder"):
        return _error("action must be drop, duplicate or reorder")
    with state().lock:
        state().webhooks.faults.extend([body["action"]] * int(body.get("count", 1)))
        return _json({"pending": state().webhooks.faults}, 201)
