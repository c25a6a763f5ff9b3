"""HTTP handlers, one blueprint per module, all registered here.

Handlers stay thin: they parse and validate the request, call `sync/`, and
render. The two helpers below give a handler this app's runtime and a database
session that lives as long as the request.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, current_app, g, redirect, render_template, session, url_for
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from sync.runtime import Runtime
from sync.sessions import SessionStore
from sync.store.models import Installation

# Every form posts a CSRF token; the webhooks blueprint is exempt (its senders sign instead).
csrf = CSRFProtect()


def register_blueprints(app: Flask) -> None:
    from blueprints import auth, connection, health, home, quickbooks, webhooks

    for module in (health, home, auth, quickbooks, connection, webhooks):
        app.register_blueprint(module.bp)
    csrf.exempt(webhooks.bp)  # signed by the sender instead


def current_runtime() -> Runtime:
    return current_app.extensions["ledgersync"]


def db_session() -> Session:
    """The request's session; closed when the request ends (commit explicitly)."""
    if "db_session" not in g:
        g.db_session = current_runtime().database.sessionmaker()
    return g.db_session


def sessions() -> SessionStore:
    return SessionStore(current_runtime().jobs.connection)


def signed_in() -> dict | None:
    """The signed-in session's facts (installation, portal, user, rights), kept server-side: a cookie
    whose session was ended (signed out, expired, portal uninstalled) is refused and cleared."""
    if "signed_in" not in g:
        g.signed_in = sessions().get(session.get("sid"))
        if g.signed_in is None and session.get("sid"):
            session.clear()
    return g.signed_in


def signed_in_installation() -> Installation | None:
    """The signed-in portal's installation, or None. Every page and API call is scoped by it."""
    facts = signed_in()
    if facts is None:
        return None
    installation = db_session().get(Installation, facts["installation_id"])
    if installation is None or installation.status != "active" or installation.hub_id != facts.get("hub_id"):
        sessions().end(session.get("sid"))
        session.clear()
        return None
    return installation


def can_change() -> bool:
    """Whether the signed-in user may change this installation (set at sign-in: the installer and super
    admins); everyone else in the portal may look."""
    facts = signed_in()
    return bool(facts and facts.get("can_change"))


def change_rights_required(view: Callable) -> Callable:
    """For every route that changes something: signed in (else the home page) and allowed to change
    (else 403, saying who can). Everyone in the portal may look; only some may change."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if signed_in_installation() is None:
            return redirect(url_for("home.index"))
        if not can_change():
            body = (
                "You can look at this installation, but only the user who installed Ledgersync and the "
                "portal's super admins can change it. Ask one of them, or a super admin to give you that role."
            )
            return render_template("message.html", title="You can look but not change", body=body), 403
        return view(*args, **kwargs)

    return guarded
