"""Intuit OAuth 2.0 (NOTES §5): discovery, the authorize page, the bearer-token endpoint with
refresh-token rotation, revoke and userinfo — what intuit-oauth talks to."""

from __future__ import annotations

import base64
import html
import secrets
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, redirect, request

from emulators.quickbooks import assumptions
from emulators.quickbooks.state import Code, Grant, QboState

bp = Blueprint("oauth", __name__)
ACCOUNTING = "com.intuit.quickbooks.accounting"
KNOWN_SCOPES = {
    ACCOUNTING,
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "intuit_name",
}


def state() -> QboState:
    return current_app.extensions["qbo_emulator"]


def _json(body: dict, status: int = 200):
    import json

    return json.dumps(body), status, {"Content-Type": "application/json;charset=UTF-8"}


@bp.get("/.well-known/openid_configuration")
@bp.get("/.well-known/openid_configuration/")
@bp.get("/.well-known/openid_sandbox_configuration")
@bp.get("/.well-known/openid_sandbox_configuration/")
def discovery():
    """The discovery document, naming this emulator's endpoints (shape of the saved sandbox document)."""
    base = request.host_url.rstrip("/")
    return _json(
        {
            "issuer": f"{base}/op/v1",
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
            "jwks_uri": f"{base}/op/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }
    )


def _page(title: str, body: str, status: int = 200):
    document = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return document, status, {"Content-Type": "text/html; charset=utf-8"}


def _back(redirect_uri: str, **params):
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode({k: v for k, v in params.items() if v is not None}))


def _valid_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname == "localhost")


class ConsentPageError(Exception):
    """An authorize request answered with an error page (the redirect_uri is not trusted yet)."""

    def __init__(self, title: str, body: str) -> None:
        super().__init__(title)
        self.title, self.body = title, body


@bp.errorhandler(ConsentPageError)
def consent_page_error(error: ConsentPageError):
    return _page(error.title, error.body, 400)


def _check(args) -> tuple[str, str, tuple[str, ...]]:
    """The client id, redirect URI and scopes of an authorize request, or a ConsentPageError."""
    if state().app.environment_of(args.get("client_id", "")) is None:
        raise ConsentPageError("Unknown app", "<p>The client_id does not belong to any app.</p>")
    redirect_uri = args.get("redirect_uri", "")
    if not _valid_redirect(redirect_uri):
        raise ConsentPageError("Invalid redirect URI", "<p>The redirect_uri must be https (or http on localhost).</p>")
    if args.get("response_type", "code") != "code":
        raise ConsentPageError("Unsupported response type", "<p>Only response_type=code is supported.</p>")
    scopes = tuple(args.get("scope", "").split())
    if not scopes or set(scopes) - KNOWN_SCOPES:
        raise ConsentPageError(
            "Invalid scope", f"<p>Unknown or missing scopes: {html.escape(args.get('scope', ''))}</p>"
        )
    return args.get("client_id"), redirect_uri, scopes


@bp.get("/connect/oauth2")
def authorize():
    emulator = state()
    with emulator.lock:
        client_id, redirect_uri, scopes = _check(request.args)
        if emulator.auto_approve is not None:
            return _decide(client_id, redirect_uri, scopes, emulator.auto_approve, request.args.get("state"))
        companies = list(emulator.companies.values())
    options = "".join(
        f"<option value='{c.realm_id}'>{html.escape(c.name)} ({c.country}{', sandbox' if c.sandbox else ''})</option>"
        for c in companies
    )
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>" for k, v in request.args.items()
    )
    return _page(
        "Connect to QuickBooks",
        (
            f"<p>An app wants to connect to your QuickBooks company ({html.escape(' '.join(scopes))}).</p>"
            f"<form method='post' action='/connect/oauth2/decision'>{hidden}"
            f"<label for='realm'>Company</label> <select id='realm' name='realm_id'>{options}</select>"
            "<button type='submit' name='decision' value='approve'>Connect</button>"
            "<button type='submit' name='decision' value='deny'>Cancel</button></form>"
        ),
    )


@bp.post("/connect/oauth2/decision")
def decision():
    emulator = state()
    with emulator.lock:
        client_id, redirect_uri, scopes = _check(request.form)
        if request.form.get("decision") != "approve":
            return _back(redirect_uri, error="access_denied", state=request.form.get("state"))
        return _decide(client_id, redirect_uri, scopes, request.form.get("realm_id", ""), request.form.get("state"))


def _decide(client_id: str, redirect_uri: str, scopes: tuple[str, ...], realm_id: str, state_token: str | None):
    emulator = state()
    company = emulator.companies.get(realm_id)
    if company is None:
        return _page("Unknown company", "<p>No such QuickBooks company.</p>", 400)
    environment = emulator.app.environment_of(client_id)
    if (environment == "sandbox") != company.sandbox:
        # Sandbox companies take Development keys only, production companies Production keys only.
        return _back(redirect_uri, error=assumptions.SANDBOX_WITH_PRODUCTION_KEYS_ERROR, state=state_token)
    code = Code(
        secrets.token_urlsafe(48),
        realm_id,
        client_id,
        scopes,
        redirect_uri,
        emulator.clock.now() + assumptions.AUTHORIZATION_CODE_SECONDS,
    )
    emulator.codes[code.code] = code
    return _back(redirect_uri, code=code.code, state=state_token, realmId=realm_id)


def _client_credentials() -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, secret
        except (ValueError, UnicodeDecodeError):
            return "", ""
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _issue(realm_id: str, client_id: str, scopes: tuple[str, ...], keep_refresh: str | None = None) -> dict:
    emulator = state()
    now = emulator.clock.now()
    access = secrets.token_urlsafe(64)
    emulator.access_tokens[access] = Grant(realm_id, client_id, scopes, now + assumptions.ACCESS_TOKEN_SECONDS)
    refresh = keep_refresh
    if refresh is None:
        refresh = f"AB11{secrets.token_urlsafe(36)}"
        emulator.refresh_tokens[refresh] = Grant(
            realm_id, client_id, scopes, now + assumptions.REFRESH_TOKEN_SECONDS, issued_at=now
        )
    # No id_token: intuit-oauth would validate it against a JWKS, and we only issue it for openid (unsupported).
    return {
        "token_type": "bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": assumptions.ACCESS_TOKEN_SECONDS,
        "x_refresh_token_expires_in": assumptions.REFRESH_TOKEN_SECONDS,
    }


@bp.post("/oauth2/v1/tokens/bearer")
def token():
    emulator = state()
    client_id, secret = _client_credentials()
    with emulator.lock:
        if emulator.app.environment_of(client_id, secret) is None:
            return _json({"error": "invalid_client"}, 401)
        grant_type = request.form.get("grant_type")
        now = emulator.clock.now()
        if grant_type == "authorization_code":
            code = emulator.codes.pop(request.form.get("code", ""), None)
            if (
                code is None
                or code.client_id != client_id
                or code.expires_at < now
                or code.redirect_uri != request.form.get("redirect_uri")
            ):
                return _json({"error": "invalid_grant"}, 400)
            return _json(_issue(code.realm_id, client_id, code.scopes))
        if grant_type == "refresh_token":
            presented = request.form.get("refresh_token", "")
            grant = emulator.refresh_tokens.get(presented)
            usable = (
                grant is not None
                and grant.client_id == client_id
                and grant.expires_at > now
                and (grant.replaced_at is None or now - grant.replaced_at < emulator.refresh_grace_seconds)
            )
            if not usable:
                return _json({"error": "invalid_grant"}, 400)
            if grant.replaced_at is None and now - grant.issued_at < emulator.refresh_rotation_seconds:
                # Younger than the rotation period: the same refresh token comes back, its rolling
                # 100 days starting again (assumptions.REFRESH_ROTATION_SECONDS).
                grant.expires_at = now + assumptions.REFRESH_TOKEN_SECONDS
                return _json(_issue(grant.realm_id, client_id, grant.scopes, keep_refresh=presented))
            grant.replaced_at = grant.replaced_at or now  # rotated out: the new one must be used from now on
            return _json(_issue(grant.realm_id, client_id, grant.scopes))
        return _json({"error": "unsupported_grant_type"}, 400)


@bp.post("/v2/oauth2/tokens/revoke")
def revoke():
    """Revoking either token disconnects the app from the company: every token of that grant goes."""
    emulator = state()
    client_id, secret = _client_credentials()
    body = request.get_json(silent=True) or {}
    with emulator.lock:
        if emulator.app.environment_of(client_id, secret) is None:
            return _json({"error": "invalid_client"}, 401)
        presented = body.get("token", "")
        grant = emulator.refresh_tokens.get(presented) or emulator.access_tokens.get(presented)
        if grant is None:
            return _json({"error": "invalid_token"}, 400)
        for store in (emulator.refresh_tokens, emulator.access_tokens):
            for key in [k for k, g in store.items() if g.realm_id == grant.realm_id and g.client_id == client_id]:
                del store[key]
    return "", 200


@bp.get("/v1/openid_connect/userinfo")
def userinfo():
    emulator = state()
    header = request.headers.get("Authorization", "")
    with emulator.lock:
        grant = emulator.access_tokens.get(header[7:].strip() if header.lower().startswith("bearer ") else "")
        if grant is None or grant.expires_at <= emulator.clock.now():
            return _json({"error": "invalid_token"}, 401)
        return _json(
            {
                "sub": grant.user_sub,
                "email": "owner@example.com",
                "emailVerified": True,
                "givenName": "Quinn",
                "familyName": "Owner",
                "phoneNumber": "+1 6505555555",
                "phoneNumberVerified": False,
            }
        )
