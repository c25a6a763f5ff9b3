"""The emulator's WSGI app: routing, authentication, scopes, rate limits, faults, the request log."""

from __future__ import annotations

import time

from flask import Flask, g, request

from emulators.hubspot import assumptions
from emulators.hubspot.errors import ApiError, json_response
from emulators.hubspot.state import AccessToken, EmulatorState

RATE_LIMIT_MAX, RATE_LIMIT_WINDOW = 110, 10.0  # per account, OAuth apps (NOTES §2)
SEARCH_LIMIT_MAX, SEARCH_LIMIT_WINDOW = 5, 1.0
REQUEST_LOG_SIZE = 10_000
UNAUTHENTICATED_PREFIXES = ("/oauth", "/_emulator", "/static")

DEFAULT_APP_ID = 4_242_001
DEFAULT_CLIENT_ID = "ledgersync-emulator-client-id"
DEFAULT_CLIENT_SECRET = "ledgersync-emulator-client-secret"


def create_emulator(
    app_id: int = DEFAULT_APP_ID,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    rate_limits: bool = True,
) -> Flask:
    from emulators.hubspot import (
        control,
        oauth,
        routes_associations,
        routes_automation,
        routes_crm,
        routes_properties,
        routes_settings,
        routes_timeline,
    )

    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False
    state = EmulatorState(app_id, client_id, client_secret, rate_limits)
    app.extensions["hubspot_emulator"] = state
    for module in (
        routes_crm,
        routes_properties,
        routes_associations,
        routes_automation,
        routes_settings,
        routes_timeline,
        oauth,
        control,
    ):
        app.register_blueprint(module.bp)

    @app.before_request
    def gatekeeper():
        g.started = time.monotonic()
        g.token = None
        fault = _take_fault(state)
        if fault is not None:
            return fault
        if request.path.startswith(UNAUTHENTICATED_PREFIXES):
            return None
        with state.lock:
            g.token = _authenticate(state)
            return _rate_limit(state, g.token)

    @app.after_request
    def record(response):
        if not request.path.startswith("/_emulator"):
            _log_request(state, response.status_code)
            token: AccessToken | None = g.get("token")
            if token is not None and not _is_search() and "rate_remaining" in g:
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(RATE_LIMIT_WINDOW * 1000))
                response.headers["X-HubSpot-RateLimit-Max"] = str(RATE_LIMIT_MAX)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(g.rate_remaining)
        response.headers.setdefault("X-HubSpot-Correlation-Id", "emulator")
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return json_response(error.body(), error.status)

    @app.errorhandler(404)
    def unknown_path(_error):
        return json_response(
            ApiError(404, "OBJECT_NOT_FOUND", f"Unable to route {request.method} {request.path}").body(), 404
        )

    @app.errorhandler(405)
    def wrong_method(_error):
        return json_response(
            ApiError(405, "VALIDATION_ERROR", f"{request.method} is not supported on {request.path}").body(), 405
        )

    return app


def state_of(app: Flask) -> EmulatorState:
    return app.extensions["hubspot_emulator"]


def _is_search() -> bool:
    return request.method == "POST" and request.path.endswith("/search")


def _authenticate(state: EmulatorState) -> AccessToken:
    header = request.headers.get("Authorization", "")
    token_text = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = state.access_tokens.get(token_text) if token_text else None
    if token is None:
        raise ApiError(401, "INVALID_AUTHENTICATION", assumptions.INVALID_TOKEN_MESSAGE)
    expired_for = state.clock.now() - token.expires_at
    if expired_for >= 0:
        raise ApiError(
            401, "EXPIRED_AUTHENTICATION", assumptions.EXPIRED_TOKEN_MESSAGE.format(seconds=int(expired_for) + 1)
        )
    if token.hub_id not in state.accounts or token.app_id not in state.accounts[token.hub_id].installed_apps:
        raise ApiError(401, "INVALID_AUTHENTICATION", assumptions.INVALID_TOKEN_MESSAGE)
    return token


def _rate_limit(state: EmulatorState, token: AccessToken):
    if not state.rate_limits_enabled:
        g.rate_remaining = RATE_LIMIT_MAX
        return None
    now = state.clock.now()
    if _is_search():
        key, limit, window, policy = (
            ("search", token.hub_id),
            SEARCH_LIMIT_MAX,
            SEARCH_LIMIT_WINDOW,
            assumptions.SEARCH_RATE_LIMIT_POLICY,
        )
    else:
        key, limit, window, policy = (
            (token.hub_id, token.app_id),
            RATE_LIMIT_MAX,
            RATE_LIMIT_WINDOW,
            "TEN_SECONDLY_ROLLING",
        )
    hits = [t for t in state.rate_windows.get(key, []) if t > now - window]
    if len(hits) >= limit:
        state.rate_windows[key] = hits
        g.rate_remaining = 0
        response = json_response(rate_limit_body(policy), 429)
        if assumptions.RATE_LIMIT_RETRY_AFTER:
            response.headers["Retry-After"] = str(max(1, int(hits[0] + window - now) + 1))
        return response
    hits.append(now)
    state.rate_windows[key] = hits
    g.rate_remaining = limit - len(hits)
    return None


def _take_fault(state: EmulatorState):
    with state.lock:
        fault = next((f for f in state.faults if f.matches(request.method, request.path)), None)
        if fault is None:
            return None
        fault.remaining -= 1
    if fault.latency_ms:
        time.sleep(fault.latency_ms / 1000)
    if fault.timeout_seconds:
        time.sleep(fault.timeout_seconds)  # longer than the client waits: it sees a timeout
    if fault.status is None:
        return None  # latency only: carry on with the real answer
    if fault.body:
        body = fault.body
    elif fault.status == 429:
        body = rate_limit_body("TEN_SECONDLY_ROLLING")
    else:
        category = "INTERNAL_ERROR" if fault.status >= 500 else "VALIDATION_ERROR"
        body = {
            "status": "error",
            "message": f"Injected fault ({fault.status})",
            "correlationId": _uuid(),
            "category": category,
        }
    return json_response(body, fault.status)


def rate_limit_body(policy: str) -> dict:
    """The documented 429 body (NOTES §2), plus the `category` the spec's Error schema requires."""
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "category": assumptions.RATE_LIMIT_CATEGORY,
        "correlationId": _uuid(),
        "policyName": policy,
        "requestId": _uuid(),
    }


def _log_request(state: EmulatorState, status: int) -> None:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    endpoint = f"{request.method} {rule}"
    token = g.get("token")
    with state.lock:
        state.request_counts[endpoint] = state.request_counts.get(endpoint, 0) + 1
        state.request_log.append(
            {
                "method": request.method,
                "path": request.full_path.rstrip("?"),
                "endpoint": endpoint,
                "status": status,
                "portalId": token.hub_id if token else None,
                "at": state.clock.iso(),
                "durationMs": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 2),
            }
        )
        if len(state.request_log) > REQUEST_LOG_SIZE:
            del state.request_log[: len(state.request_log) - REQUEST_LOG_SIZE]


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())
