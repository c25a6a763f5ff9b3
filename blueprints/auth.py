"""HubSpot install and sign-in: the same OAuth flow; `state` bound to the browser session."""

from __future__ import annotations

import secrets

from flask import Blueprint, redirect, render_template, request, session, url_for

from blueprints import current_runtime, sessions
from sync.clients import errors
from sync.clients.hubspot import HubSpotOAuth
from sync.connect import install_or_sign_in

bp = Blueprint("auth", __name__)


def message_page(title: str, body: str, status: int = 400):
    return render_template("message.html", title=title, body=body), status


@bp.get("/oauth/hubspot/install")
@bp.get("/signin")
def install():
    """Send the browser to HubSpot's authorize page with our scopes and a fresh state."""
    state = secrets.token_urlsafe(32)
    session["hubspot_oauth_state"] = state
    return redirect(HubSpotOAuth(current_runtime().config).authorize_url(state))


@bp.get("/oauth/hubspot/callback")
def callback():
    expected = session.pop("hubspot_oauth_state", None)
    if request.args.get("error"):
        return message_page(
            "HubSpot did not connect Ledgersync", request.args.get("error_description") or request.args["error"]
        )
    if not expected or not secrets.compare_digest(expected, request.args.get("state", "")):
        return message_page(
            "This sign-in link has expired",
            "The request did not come from this browser's sign-in, or was used already. "
            "Start again from the install or sign-in button.",
        )
    if not request.args.get("code"):
        return message_page("HubSpot sent no authorization code", "Start again from the install button.")
    try:
        signed_in = install_or_sign_in(current_runtime(), request.args["code"])
    except errors.ApiError as error:
        return message_page("HubSpot refused the sign-in", error.message, 502)
    sessions().end(session.get("sid"))  # a sign-in replaces whatever session this browser had
    session.clear()
    session.permanent = True
    session["sid"] = sessions().start(
        signed_in.installation_id,
        {
            "hub_id": signed_in.hub_id,
            "user_id": signed_in.user_id,
            "user_email": signed_in.user_email,
            "can_change": signed_in.can_change,
        },
    )
    return redirect(url_for("connection.show"))


@bp.post("/signout")
def signout():
    sessions().end(session.get("sid"))  # for good: the cookie, replayed, finds nothing
    session.clear()
    return redirect(url_for("home.index"))
