"""HTTP handlers, one blueprint per module, all registered here.

Handlers stay thin: they parse and validate the request, call `sync/`, and
render. The two helpers below give a handler this app's runtime and a database
session that lives as long as the request.
"""

from __future__ import annotations

from flask import Flask, current_app, g, session
from sqlalchemy.orm import Session

from sync.runtime import Runtime
from sync.store.models import Installation


def register_blueprints(app: Flask) -> None:
    from app import csrf
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


def signed_in_installation() -> Installation | None:
    """The signed-in portal's installation, or None. Every page and API call is scoped by it."""
    installation_id = session.get("installation_id")
    if installation_id is None:
        return None
    installation = db_session().get(Installation, installation_id)
    if installation is None or installation.status != "active" or installation.hub_id != session.get("hub_id"):
        session.clear()
        return None
    return installation
