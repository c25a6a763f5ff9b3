"""The signed-in portal's page: its QuickBooks connection, status, warnings; connect, disconnect, uninstall."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, session, url_for
from sqlalchemy import select

from blueprints import (
    can_change,
    change_rights_required,
    current_runtime,
    db_session,
    signed_in,
    signed_in_installation,
)
from sync.connect import uninstall
from sync.store.models import Notification, QboCompany

bp = Blueprint("connection", __name__)


@bp.get("/connection")
def show():
    installation = signed_in_installation()
    if installation is None:
        return redirect(url_for("home.index"))
    companies = (
        db_session()
        .scalars(
            select(QboCompany).where(QboCompany.installation_id == installation.id, QboCompany.status != "disconnected")
        )
        .all()
    )
    notices = (
        db_session()
        .scalars(
            select(Notification)
            .where(Notification.installation_id == installation.id, Notification.read_at.is_(None))
            .order_by(Notification.created_at.desc())
        )
        .all()
    )
    return render_template(
        "connection.html",
        installation=installation,
        company=companies[0] if companies else None,
        notices=notices,
        user_email=(signed_in() or {}).get("user_email"),
        can_change=can_change(),
        sandbox=current_runtime().config.intuit_environment == "sandbox",
    )


@bp.post("/uninstall")
@change_rights_required
def remove():
    installation = signed_in_installation()
    uninstall(current_runtime(), installation.id)
    session.clear()
    return render_template(
        "message.html",
        title="Ledgersync was uninstalled",
        body="QuickBooks was disconnected and HubSpot's access removed. The sync history and "
        "record links are kept, so installing again resumes where you left off.",
    )
