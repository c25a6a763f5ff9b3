"""OAuth (NOTES §3): the authorize page, `/oauth/v1/token`, token info, refresh-token delete.

The authorize page is a real consent page a browser can use: pick the user
(and so the portal), then "Connect app". For tests and the demo, the control
API's auto-approve switch answers at once as a chosen user.
"""

from __future__ import annotations

import html
import secrets
import uuid
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, redirect, request

from emulators.hubspot import assumptions
from emulators.hubspot.errors import json_response, no_content
from emulators.hubspot.routes_crm import state
from emulators.hubspot.state import App, AuthorizationCode

bp = Blueprint("oauth", __name__)


class OAuthError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@bp.errorhandler(OAuthError)
def oauth_error(error: OAuthError):
    return json_response(
        {
            "status": error.status,
            "message": error.message,
            "correlationId": str(uuid.uuid4()),
            "category": "VALIDATION_ERROR",
        },
        assumptions.OAUTH_ERROR_STATUS,
    )


def _page(title: str, body: str, status: int = 200):
    document = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return document, status, {"Content-Type": "text/html; charset=utf-8"}


def valid_redirect_uri(uri: str) -> bool:
    """https, or http on localhost; a host name, never an IP address (NOTES §3)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host == "localhost")


def _back(redirect_uri: str, **params: str):
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode({k: v for k, v in params.items() if v is not None}))


class ConsentPageError(Exception):
    """An authorize request HubSpot answers with an error page (no redirect: the redirect_uri is not trusted)."""

    def __init__(self, title: str, body: str) -> None:
        super().__init__(title)
        self.title, self.body = title, body


@bp.errorhandler(ConsentPageError)
def consent_page_error(error: ConsentPageError):
    return _page(error.title, error.body, 400)


def _check_request(args) -> tuple[App, str, tuple[str, ...]]:
    """The app, redirect URI and scopes of an authorize request, or a ConsentPageError."""
    emulator = state()
    app = next((a for a in emulator.apps.values() if a.client_id == args.get("client_id")), None)
    if app is None:
        raise ConsentPageError("Unknown app", "<p>The client_id does not belong to any app.</p>")
    redirect_uri = args.get("redirect_uri", "")
    if not valid_redirect_uri(redirect_uri):
        raise ConsentPageError(
            "Invalid redirect URL",
            "<p>The redirect_uri must be https (or http on localhost) and name a host, not an IP address.</p>",
        )
    project = emulator.project
    if project is not None and project.redirect_urls and redirect_uri not in project.redirect_urls:
        listed = html.escape(", ".join(project.redirect_urls))
        raise ConsentPageError("Invalid redirect URL", f"<p>The redirect_uri is not one of the app's: {listed}.</p>")
    scopes = tuple(s for s in (args.get("scope", "") + " " + args.get("optional_scope", "")).split() if s)
    not_allowed = [s for s in scopes if s not in app.scopes]
    if project is not None:  # the install URL must ask for every required scope
        not_allowed += [f"(missing required) {s}" for s in project.required_scopes if s not in scopes]
    if not_allowed or not args.get("scope"):
        problem = html.escape(" ".join(not_allowed) or "(none requested)")
        raise ConsentPageError(
            "Couldn't complete the connection",
            f"<p>The app developer doesn't have permissions to request the set of scopes: {problem}.</p>",
        )
    return app, redirect_uri, scopes


@bp.get("/oauth/authorize")
@bp.get("/oauth/<int:hub_id>/authorize")
def authorize(hub_id: int | None = None):
    emulator = state()
    with emulator.lock:
        app, redirect_uri, scopes = _check_request(request.args)
        if emulator.auto_approve is not None:
            return _decide(app, redirect_uri, scopes, int(emulator.auto_approve["userId"]))
        users = [
            (account, user)
            for account in emulator.accounts.values()
            for user in account.users.values()
            if hub_id is None or account.hub_id == hub_id
        ]
    options = "".join(
        f"<option value='{u.user_id}'>{html.escape(u.email)} — portal {a.hub_id}</option>" for a, u in users
    )
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>" for k, v in request.args.items()
    )
    return _page(
        f"Connect {app.name} to HubSpot",
        (
            f"<p>{html.escape(app.name)} is requesting access to: {html.escape(', '.join(scopes))}.</p>"
            f"<form method='post' action='/oauth/authorize/decision'>{hidden}"
            f"<label for='user'>Choose an account</label> <select id='user' name='user_id'>{options}</select>"
            "<button type='submit' name='decision' value='approve'>Connect app</button>"
            "<button type='submit' name='decision' value='deny'>Cancel</button></form>"
        ),
    )


@bp.post("/oauth/authorize/decision")
def decision():
    emulator = state()
    with emulator.lock:
        app, redirect_uri, scopes = _check_request(request.form)
        if request.form.get("decision") != "approve":
            return _back(
                redirect_uri,
                error="access_denied",
                error_description="The user cancelled the install.",
                state=request.form.get("state"),
            )
        return _decide(app, redirect_uri, scopes, int(request.form.get("user_id", 0)))


def _decide(app: App, redirect_uri: str, scopes: tuple[str, ...], user_id: int):
    emulator = state()
    source = request.args if request.method == "GET" else request.form
    found = emulator.find_user(user_id)
    if found is None:
        return _page("Unknown user", "<p>No such HubSpot user.</p>", 400)
    account, user = found
    if app.app_id not in account.installed_apps and not user.can_install_apps:
        return _back(
            redirect_uri,
            error=assumptions.NO_INSTALL_RIGHTS_ERROR,
            error_description="You don't have permission to install apps in this account. "
            "Ask a super admin or a user with App Marketplace access.",
            state=source.get("state"),
        )
    code = AuthorizationCode(
        code=secrets.token_urlsafe(24),
        hub_id=account.hub_id,
        app_id=app.app_id,
        user_id=user.user_id,
        scopes=scopes,
        redirect_uri=redirect_uri,
        expires_at=emulator.clock.now() + assumptions.AUTHORIZATION_CODE_SECONDS,
    )
    emulator.codes[code.code] = code
    return _back(redirect_uri, code=code.code, state=source.get("state"))


@bp.post("/oauth/v1/token")
def token():
    emulator = state()
    form = request.form
    with emulator.lock:
        app = next((a for a in emulator.apps.values() if a.client_id == form.get("client_id")), None)
        if app is None or not secrets.compare_digest(app.client_secret, form.get("client_secret", "")):
            raise OAuthError("BAD_CLIENT_ID", "missing or invalid client_id or client_secret")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = emulator.codes.pop(form.get("code", ""), None)
            if code is None or code.app_id != app.app_id or code.expires_at < emulator.clock.now():
                raise OAuthError("BAD_AUTH_CODE", "missing or unknown auth code")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError("BAD_REDIRECT_URI", "redirect_uri does not match the one used to authorize")
            access, refresh = emulator.issue_tokens(code.hub_id, app.app_id, code.user_id, code.scopes)
        elif grant == "refresh_token":
            refresh = emulator.refresh_tokens.get(form.get("refresh_token", ""))
            if refresh is None or refresh.app_id != app.app_id:
                raise OAuthError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            access, refresh = emulator.issue_tokens(
                refresh.hub_id, app.app_id, refresh.user_id, refresh.scopes, refresh=refresh
            )
        else:
            raise OAuthError("BAD_GRANT_TYPE", f"unsupported grant_type {grant!r}")
        return json_response(
            {
                "token_type": "bearer",
                "refresh_token": refresh.token,
                "access_token": access.token,
                "expires_in": assumptions.ACCESS_TOKEN_SECONDS,
                "token_use": "access_token",
                "hub_id": access.hub_id,
                "user_id": access.user_id,
                "scopes": list(access.scopes),
            }
        )


@bp.get("/oauth/v1/access-tokens/<token_text>")
def access_token_info(token_text: str):
    emulator = state()
    with emulator.lock:
        access = emulator.access_tokens.get(token_text)
        remaining = int(access.expires_at - emulator.clock.now()) if access else -1
        if access is None or remaining <= 0:
            raise OAuthError("BAD_ACCESS_TOKEN", "missing, unknown or expired access token")
        account = emulator.accounts[access.hub_id]
        user = account.users.get(access.user_id)
        return json_response(
            {
                "token": access.token,
                "user": user.email if user else None,
                "hub_domain": account.domain,
                "scopes": list(access.scopes),
                "hub_id": access.hub_id,
                "app_id": access.app_id,
                "expires_in": remaining,
                "user_id": access.user_id,
                "token_type": "access",
                "is_private_distribution": False,
            }
        )


@bp.get("/oauth/v1/refresh-tokens/<token_text>")
def refresh_token_info(token_text: str):
    emulator = state()
    with emulator.lock:
        refresh = emulator.refresh_tokens.get(token_text)
        if refresh is None:
            raise OAuthError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        account = emulator.accounts[refresh.hub_id]
        user = account.users.get(refresh.user_id)
        return json_response(
            {
                "token": refresh.token,
                "user": user.email if user else None,
                "hub_domain": account.domain,
                "scopes": list(refresh.scopes),
                "hub_id": refresh.hub_id,
                "client_id": emulator.apps[refresh.app_id].client_id,
                "user_id": refresh.user_id,
                "token_type": "refresh",
            }
        )


@bp.delete("/oauth/v1/refresh-tokens/<token_text>")
def delete_refresh_token(token_text: str):
    """Deletes the refresh token only; the app stays installed (NOTES §3)."""
    emulator = state()
    with emulator.lock:
        if emulator.refresh_tokens.pop(token_text, None) is None:
            raise OAuthError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
    return no_content()
