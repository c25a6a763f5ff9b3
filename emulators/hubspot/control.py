"""The control API under `/_emulator/` (documented in emulators/README.md).

Tests, benchmarks and the demo use it to set the world up and to look inside:
accounts and users, bulk seeding, the request log, injected faults, the clock.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, request

from emulators.hubspot import assumptions
from emulators.hubspot.crm import Crm
from emulators.hubspot.errors import ApiError, json_response, no_content, not_found, validation
from emulators.hubspot.project import load_project
from emulators.hubspot.routes_crm import state
from emulators.hubspot.schema import resolve_object_type
from emulators.hubspot.state import ALL_SCOPES, Fault

bp = Blueprint("control", __name__, url_prefix="/_emulator")
TIERS = ("free", "starter", "professional", "enterprise")
PROCESSORS = (None, "hubspot_payments", "stripe")


@bp.errorhandler(ApiError)
def control_error(error: ApiError):
    return json_response(error.body(), error.status)


def _body() -> dict:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise validation("The request body must be a JSON object")
    return body


def _account(hub_id: int):
    account = state().accounts.get(hub_id)
    if account is None:
        raise not_found(f"No account {hub_id}")
    return account


@bp.post("/reset")
def reset():
    state().reset()
    return json_response({"reset": True})


@bp.post("/accounts")
def create_account():
    """Create a portal with a super admin who has installed the default app; returns its tokens."""
    body = _body()
    tier = body.get("tier", "professional")
    if tier not in TIERS:
        raise validation(f"tier must be one of {TIERS}")
    processor = body.get("paymentsProcessor")
    if processor not in PROCESSORS:
        raise validation(f"paymentsProcessor must be one of {PROCESSORS}")
    emulator = state()
    with emulator.lock:
        if body.get("portalId") in emulator.accounts:
            raise ApiError(409, "CONFLICT", f"Account {body['portalId']} exists")
        account = emulator.create_account(
            tier=tier,
            hub_id=body.get("portalId"),
            time_zone=body.get("timeZone", "US/Eastern"),
            currency=body.get("currency", "USD"),
            payments_processor=processor,
            allow_open_invoice_deletion=bool(body.get("allowOpenInvoiceDeletion", False)),
            **({"domain": body["domain"]} if body.get("domain") else {}),
        )
        admin = emulator.add_user(
            account, body.get("adminEmail", f"admin@portal-{account.hub_id}.example.com"), super_admin=True
        )
        for spec in body.get("users", []):
            emulator.add_user(account, spec["email"], bool(spec.get("superAdmin")), bool(spec.get("marketplaceAccess")))
        response = account.to_api()
        if body.get("installApp", True):
            scopes = tuple(body.get("scopes") or ALL_SCOPES)
            access, refresh = emulator.issue_tokens(account.hub_id, emulator.default_app.app_id, admin.user_id, scopes)
            response.update(
                accessToken=access.token, refreshToken=refresh.token, installedApps=sorted(account.installed_apps)
            )
    return json_response(response, 201)


@bp.get("/accounts/<int:hub_id>")
def read_account(hub_id: int):
    with state().lock:
        return json_response(_account(hub_id).to_api())


@bp.patch("/accounts/<int:hub_id>")
def update_account(hub_id: int):
    body = _body()
    with state().lock:
        account = _account(hub_id)
        if "paymentsProcessor" in body:
            if body["paymentsProcessor"] not in PROCESSORS:
                raise validation(f"paymentsProcessor must be one of {PROCESSORS}")
            account.payments_processor = body["paymentsProcessor"]
        for field, attribute in (
            ("tier", "tier"),
            ("timeZone", "time_zone"),
            ("currency", "currency"),
            ("allowOpenInvoiceDeletion", "allow_open_invoice_deletion"),
        ):
            if field in body:
                setattr(account, attribute, body[field])
        return json_response(account.to_api())


@bp.post("/accounts/<int:hub_id>/users")
def add_user(hub_id: int):
    body = _body()
    if not body.get("email"):
        raise validation("email is required")
    emulator = state()
    with emulator.lock:
        user = emulator.add_user(
            _account(hub_id), body["email"], bool(body.get("superAdmin")), bool(body.get("marketplaceAccess"))
        )
    return json_response(
        {
            "userId": user.user_id,
            "email": user.email,
            "superAdmin": user.super_admin,
            "marketplaceAccess": user.marketplace_access,
        },
        201,
    )


@bp.post("/accounts/<int:hub_id>/uninstall")
def uninstall(hub_id: int):
    """The portal uninstalls the default app: its tokens stop working."""
    emulator = state()
    with emulator.lock:
        account = _account(hub_id)
        app_id = emulator.default_app.app_id
        account.installed_apps.discard(app_id)
        for store in (emulator.access_tokens, emulator.refresh_tokens):
            for key in [k for k, t in store.items() if t.hub_id == hub_id and t.app_id == app_id]:
                del store[key]
    return json_response({"uninstalled": True})


@bp.post("/accounts/<int:hub_id>/seed")
def seed(hub_id: int):
    """Bulk-create records, bypassing auth and limits: {"objectType", "records": [{"properties", "associations"}]}
    or {"objectType", "count", "properties": {...with "{n}" placeholders}}."""
    body = _body()
    object_type = resolve_object_type(str(body.get("objectType", "")))
    if object_type is None:
        raise validation("objectType is required (contacts, companies, products, line_items, invoices, …)")
    records = body.get("records")
    if records is None:
        count = int(body.get("count", 0))
        template = body.get("properties") or {}
        records = [
            {"properties": {k: str(v).replace("{n}", str(n)) for k, v in template.items()}} for n in range(1, count + 1)
        ]
    emulator = state()
    with emulator.lock:
        service, _ = _ui_crm(hub_id, object_type.name)
        ids = [service.create(object_type, r.get("properties") or {}, r.get("associations")).id for r in records]
    return json_response({"objectType": object_type.name, "created": len(ids), "ids": [str(i) for i in ids]}, 201)


@bp.get("/requests")
def request_log():
    """Counts by endpoint and method (benchmarks read these), and the latest entries."""
    limit = int(request.args.get("limit", 100))
    with state().lock:
        emulator = state()
        entries = emulator.request_log[-limit:] if limit else []
        return json_response(
            {
                "total": sum(emulator.request_counts.values()),
                "byEndpoint": dict(sorted(emulator.request_counts.items())),
                "entries": entries,
            }
        )


@bp.delete("/requests")
def clear_request_log():
    with state().lock:
        state().request_counts.clear()
        state().request_log.clear()
    return no_content()


@bp.post("/faults")
def add_fault():
    """{"path": prefix, "method"?, "status"?, "latencyMs"?, "timeoutSeconds"?, "count"?: 1, "body"?}"""
    body = _body()
    if not body.get("path"):
        raise validation("path (a prefix of the request path) is required")
    if body.get("status") is None and not body.get("latencyMs") and not body.get("timeoutSeconds"):
        raise validation("give a status, a latencyMs or a timeoutSeconds")
    fault = Fault(
        fault_id=str(uuid.uuid4()),
        path_prefix=body["path"],
        method=body.get("method"),
        status=body.get("status"),
        latency_ms=int(body.get("latencyMs", 0)),
        timeout_seconds=body.get("timeoutSeconds"),
        remaining=int(body.get("count", 1)),
        body=body.get("body"),
    )
    with state().lock:
        state().faults.append(fault)
    return json_response(fault.to_api(), 201)


@bp.get("/faults")
def list_faults():
    with state().lock:
        return json_response({"results": [f.to_api() for f in state().faults if f.remaining > 0]})


@bp.delete("/faults")
def clear_faults():
    with state().lock:
        state().faults.clear()
    return no_content()


@bp.get("/clock")
def read_clock():
    clock = state().clock
    return json_response({"now": clock.iso(), "nowMs": clock.now_ms(), "speed": clock.speed})


@bp.post("/clock")
def move_clock():
    """{"advanceSeconds": N} moves time forward; {"speed": F} makes it run F times faster."""
    body = _body()
    clock = state().clock
    with state().lock:
        if "advanceSeconds" in body:
            seconds = float(body["advanceSeconds"])
            if seconds < 0:
                raise validation("the clock only moves forward")
            clock.advance(seconds)
        if "speed" in body:
            if float(body["speed"]) <= 0:
                raise validation("speed must be positive")
            clock.set_speed(float(body["speed"]))
    return read_clock()


@bp.post("/config")
def configure():
    """{"rateLimits": bool}"""
    body = _body()
    with state().lock:
        if "rateLimits" in body:
            state().rate_limits_enabled = bool(body["rateLimits"])
            state().rate_windows.clear()
        return json_response({"rateLimits": state().rate_limits_enabled})


@bp.post("/oauth/auto-approve")
def auto_approve():
    """{"userId": N} makes the authorize page approve at once as that user; {"userId": null} turns it off."""
    body = _body()
    emulator = state()
    with emulator.lock:
        user_id = body.get("userId")
        if user_id is not None and emulator.find_user(int(user_id)) is None:
            raise not_found(f"No user {user_id}")
        emulator.auto_approve = None if user_id is None else {"userId": int(user_id)}
    return json_response({"autoApprove": emulator.auto_approve})


# --- the app's project, webhooks and HubSpot calling the app (part 2) ---------------------------------------


@bp.post("/project")
def load_app_project():
    """{"folder": ".../hubspot_extensions", "proxy"?: {"https://declared.host": "http://localhost:8000"}}"""
    body = _body()
    if not body.get("folder"):
        raise validation("folder (the hubspot_extensions project folder) is required")
    project = load_project(body["folder"], body.get("proxy"))
    with state().lock:
        apply_project(state(), project)
    return json_response(project.to_api(), 201)


def apply_project(emulator, project) -> None:
    emulator.project = project
    emulator.default_app.scopes = tuple(dict.fromkeys(("oauth", *project.required_scopes, *project.optional_scopes)))
    emulator.default_app.name = project.app.get("name", emulator.default_app.name)


@bp.get("/project")
def read_project():
    project = state().project
    if project is None:
        raise not_found("No project loaded")
    return json_response(project.to_api())


def _ui_crm(hub_id: int, object_name: str):
    """A user editing in HubSpot's UI: writes whose webhooks say changeSource CRM_UI."""
    account = _account(hub_id)
    object_type = resolve_object_type(object_name)
    if object_type is None:
        raise validation(f"Unknown object type {object_name}")
    admin = next(iter(account.users.values()), None)
    source = (assumptions.UI_CHANGE_SOURCE, f"userId:{admin.user_id if admin else 0}")
    return Crm(state(), account, source), object_type


@bp.post("/accounts/<int:hub_id>/objects/<object_name>")
def ui_create(hub_id: int, object_name: str):
    body = _body()
    with state().lock:
        service, object_type = _ui_crm(hub_id, object_name)
        record = service.create(object_type, body.get("properties") or {}, body.get("associations"))
        return json_response(service.render(object_type, record, all_properties=True), 201)


@bp.patch("/accounts/<int:hub_id>/objects/<object_name>/<record_id>")
def ui_update(hub_id: int, object_name: str, record_id: str):
    body = _body()
    with state().lock:
        service, object_type = _ui_crm(hub_id, object_name)
        record = service.update(object_type, service.get(object_type, record_id), body.get("properties") or {})
        return json_response(service.render(object_type, record, all_properties=True))


@bp.delete("/accounts/<int:hub_id>/objects/<object_name>/<record_id>")
def ui_delete(hub_id: int, object_name: str, record_id: str):
    with state().lock:
        service, object_type = _ui_crm(hub_id, object_name)
        service.archive(object_type, service.get(object_type, record_id))
    return no_content()


@bp.post("/accounts/<int:hub_id>/objects/<object_name>/<record_id>/restore")
def ui_restore(hub_id: int, object_name: str, record_id: str):
    with state().lock:
        service, object_type = _ui_crm(hub_id, object_name)
        record = service.restore(object_type, record_id)
        return json_response(service.render(object_type, record, all_properties=True))


@bp.post("/webhooks/config")
def webhook_config():
    """{"autoDeliver": bool}: off, deliveries wait for POST /_emulator/webhooks/deliver."""
    body = _body()
    state().webhooks.auto_deliver = bool(body.get("autoDeliver", True))
    return json_response({"autoDeliver": state().webhooks.auto_deliver})


@bp.post("/webhooks/deliver")
def deliver_now():
    """Send every pending or due delivery now; answers with what happened to each."""
    delivered = state().webhooks.deliver_due()
    return json_response({"results": [d.to_api() for d in delivered]})


@bp.get("/webhooks/deliveries")
def list_deliveries():
    with state().lock:
        return json_response(
            {
                "results": [d.to_api() for d in state().webhooks.deliveries],
                "pendingEvents": sum(len(e) for e in state().webhooks.pending.values()),
            }
        )


@bp.post("/webhooks/faults")
def webhook_faults():
    """{"action": "drop" | "duplicate" | "reorder", "count"?: 1}: applied to the next deliveries."""
    body = _body()
    if body.get("action") not in ("drop", "duplicate", "reorder"):
        raise validation("action must be drop, duplicate or reorder")
    with state().lock:
        state().webhooks.faults.extend([body["action"]] * int(body.get("count", 1)))
        return json_response({"pending": list(state().webhooks.faults)}, 201)


@bp.post("/cards/fetch")
def card_fetch():
    """{"portalId", "objectType", "objectId", "userId"?, "card"?, "url"?, "method"?, "body"?}: a user opens a
    record with the app card; the emulator makes the card's hubspot.fetch and returns what the app answered."""
    body = _body()
    for name in ("portalId", "objectType", "objectId"):
        if not body.get(name):
            raise validation(f"{name} is required")
    result = state().calls.card_fetch(
        int(body["portalId"]),
        str(body["objectType"]),
        str(body["objectId"]),
        card=body.get("card"),
        user_id=body.get("userId"),
        url=body.get("url"),
        method=body.get("method", "GET"),
        body=body.get("body"),
    )
    return json_response(result)


@bp.post("/actions/execute")
def execute_action():
    """{"portalId", "action": uid, "objectType", "objectId", "inputFields"?, "workflowId"?}: a workflow runs it."""
    body = _body()
    for name in ("portalId", "action", "objectType", "objectId"):
        if not body.get(name):
            raise validation(f"{name} is required")
    execution = state().calls.execute_action(
        int(body["portalId"]),
        body["action"],
        str(body["objectType"]),
        str(body["objectId"]),
        body.get("inputFields") or {},
        int(body.get("workflowId", 192_814_114)),
    )
    return json_response(execution.to_api(), 201)


@bp.get("/actions/executions")
def list_executions():
    with state().lock:
        return json_response({"results": [e.to_api() for e in state().calls.executions.values()]})


@bp.get("/actions/executions/<callback_id>")
def read_execution(callback_id: str):
    with state().lock:
        execution = state().calls.executions.get(callback_id)
        if execution is None:
            raise not_found(f"No execution {callback_id}")
        return json_response(execution.to_api())


@bp.post("/actions/process")
def process_actions():
    """Run due action retries and expire finished blocks now (the background thread does it too)."""
    state().calls.process_due()
    return list_executions()


@bp.post("/actions/options")
def fetch_options():
    """{"portalId", "action", "inputFieldName", "inputFields"?, "q"?, "after"?}: the workflow editor asks."""
    body = _body()
    for name in ("portalId", "action", "inputFieldName"):
        if not body.get(name):
            raise validation(f"{name} is required")
    return json_response(
        state().calls.fetch_options(
            int(body["portalId"]),
            body["action"],
            body["inputFieldName"],
            body.get("inputFields"),
            body.get("q"),
            body.get("after"),
        )
    )


@bp.get("/accounts/<int:hub_id>/timeline")
def timeline(hub_id: int):
    with state().lock:
        _account(hub_id)
        return json_response({"results": list(state().timeline_events.get(hub_id, []))})
