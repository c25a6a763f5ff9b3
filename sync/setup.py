"""Setting a sync up for one object of one company: the service the CLI (and later the settings pages) call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sync.runtime import Runtime
from sync.store.models import DIRECTIONS, QboCompany, SyncSettings, utcnow

DIRECTION_NAMES = {"two-way": "two_way", "hubspot-to-qbo": "hubspot_to_qbo", "qbo-to-hubspot": "qbo_to_hubspot"}


def set_up(
    runtime: Runtime,
    company_id: int,
    object_type: str,
    direction: str = "two_way",
    winner: str = "hubspot",
    delete_policy: str = "keep",
    options: dict[str, Any] | None = None,
) -> SyncSettings:
    """Set up (or change) a sync. `options` are merged into the stored ones (contacts:
    {"use_company": bool, "template": "{company} ({email})"} — the display-name rule)."""
    direction = DIRECTION_NAMES.get(direction, direction)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTION_NAMES)}")
    if winner not in ("hubspot", "quickbooks"):
        raise ValueError("the conflict winner is hubspot or quickbooks")
    with runtime.database.session() as session:
        company = session.get(QboCompany, company_id)
        if company is None or company.status != "connected":
            raise ValueError("connect QuickBooks Online first")
        settings = session.scalar(
            select(SyncSettings).where(
                SyncSettings.qbo_company_id == company_id, SyncSettings.object_type == object_type
            )
        )
        if settings is None:
            settings = SyncSettings(
                installation_id=company.installation_id,
                qbo_company_id=company_id,
                object_type=object_type,
                set_up_at=utcnow(),
            )
            session.add(settings)
        settings.direction, settings.conflict_winner, settings.delete_policy = direction, winner, delete_policy
        settings.status, settings.paused_reason = "active", None
        if options:
            if "template" in options:
                from sync.contacts import check_template

                options = {**options, "template": check_template(options["template"])}
            settings.options = {**(settings.options or {}), **options}
        session.flush()
        return settings
