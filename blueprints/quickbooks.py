"""Connecting a QuickBooks Online company to the signed-in portal, and disconnecting it."""

from __future__ import annotations

import secrets

from flask import Blueprint, redirect, request, session, url_for

from blueprints import can_change, change_rights_required, current_runtime, signed_in_installation
from blueprints.auth import message_page
from sync.clients import errors
from sync.clients.quickbooks import QuickBooksOAuth
from sync.connect import ConnectRefused, connect_quickbooks, disconnect_quickbooks

bp = Blueprint("quickbooks", __name__)


@bp.get("/oauth/quickbooks/connect")
@change_rights_required
def connect():
    state = secrets.token_urlsafe(32)
    session["qbo_oauth_state"] = state
    try:
        return redirect(QuickBooksOAuth(current_runtime().config).authorize_url(state))
    except errors.ApiError as error:
        return message_page("QuickBooks is unreachable", error.message, 502)


@bp.get("/oauth/quickbooks/callback")
def callback():
    installation = signed_in_installation()
    expected = session.pop("qbo_oauth_state", None)
    if installation is None:
        return message_page("Sign in first", "Sign in with HubSpot, then connect QuickBooks Online.")
    if not can_change():
        return message_page("You can look but not change", "Only the installer and super admins can connect.", 403)
    if request.args.get("error"):
        if request.args["error"] == "access_denied":
            body = (
                "QuickBooks did not grant access. If this is a sandbox company, it cannot be connected to a "
                "production installation: sandbox companies need the app's development keys."
            )
        else:
            body = f"QuickBooks answered: {request.args['error']}"
        return message_page("QuickBooks Online was not connected", body)
    if not expected or not secrets.compare_digest(expected, request.args.get("state", "")):
        return message_page(
            "This connection link has expired",
            "The request did not come from this browser, or was used already. Start again.",
        )
    if not request.args.get("code") or not request.args.get("realmId"):
        return message_page("QuickBooks sent an incomplete answer", "Start again from the connect button.")
    try:
        connect_quickbooks(current_runtime(), installation.id, request.args["code"], request.args["realmId"])
    except ConnectRefused as refusal:
        return message_page("This company cannot be connected", str(refusal), 409)
    except errors.ApiError as error:
        return message_page("QuickBooks refused the connection", error.message, 502)
    return redirect(url_for("connection.show"))


@bp.post("/quickbooks/disconnect")
@change_rights_required
def disconnect():
    installation = signed_in_installation()
    company_id = request.form.get("company_id", "")
    if not company_id.isascii() or not company_id.isdigit() or len(company_id) > 18:
        return message_page("Nothing to disconnect", "The form named no QuickBooks company.", 400)
    try:
        disconnect_quickbooks(current_runtime(), installation.id, int(company_id), keep_session=session.get("sid"))
    except ConnectRefused as refusal:
        return message_page("Nothing to disconnect", str(refusal), 404)
    return redirect(url_for("connection.show"))
