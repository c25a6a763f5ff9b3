"""HTTP handlers, one blueprint per module, all registered here.

Handlers stay thin: they parse and validate the request, call `sync/`, and
render. The two helpers below give a handler this app's runtime and a database
session that lives as long as the request.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from sync.runtime import Runtime


def register_blueprints(app: Flask) -> None:
    from blueprints import health, home

    for module in (health, home):
        app.register_blueprint(module.bp)


def current_runtime() -> Runtime:
    return current_app.extensions["ledgersync"]


def db_session() -> Session:
    """The request's session; closed when the request ends (commit explicitly)."""
    if "db_session" not in g:
        g.db_session = current_runtime().database.sessionmaker()
    return g.db_session
