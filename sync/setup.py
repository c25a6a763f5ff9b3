"""Setting a sync up for one object of one company: the service the CLI (and later the settings pages) call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sync.objects import REGISTERED, names
from sync.objects import object_type as registered
from sync.runtime import Runtime
from sync.store.models import DIRECTIONS, QboCompany, RecordLink, SyncBacklog, SyncSettings, utcnow

DIRECTION_NAMES = {"two-way": "two_way", "hubspot-to-qbo": "hubspot_to_qbo", "qbo-to-hubspot": "qbo_to_hubspot"}


def set_up(
    runtime: Runtime,
    company_id: int,
    object_type: str,
    direction: str | None = None,
    winner: str = "hubspot",
    delete_policy: str | None = None,
    options: dict[str, Any] | None = None,
    filters: dict[str, str | None] | None = None,
    fields: dict[str, bool] | None = None,
) -> SyncSettings:
    """Set up (or change) a sync. `options` are merged into the stored ones (contacts:
    {"use_company": bool, "template": "{company} ({email})", "rename": bool} — the display-name rule;
    `rename` lets it rename the customers our sync created when the contact's company or name changes).

    products: {"match_by_name": bool, "income_account_id", "expense_account_id", "allow_inventory": bool,
    "asset_account_id"}, checked against the QBO company (its accounts) when they change.

    `direction` None keeps a sync's direction, or gives a new one its object type's recommended one
    (products: QBO → HubSpot). `fields` turns default mappings on or off ({"phone": False}); a field
    turned off is left alone on both sides. A new sync starts with the object's recommended filters;
    `filters` ({side: name or None}) changes them ({"hubspot": None}: every HubSpot record may start syncing)."""
    if object_type not in REGISTERED:
        raise ValueError(f"unknown object type {object_type!r} (synced: {', '.join(names())})")
    kind = registered(object_type)
    direction = DIRECTION_NAMES.get(direction, direction) if direction is not None else None
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTION_NAMES)}")
    if winner not in ("hubspot", "quickbooks"):
        raise ValueError("the conflict winner is hubspot or quickbooks")
    if delete_policy not in (None, "keep", "propagate"):
        raise ValueError("deletes are kept or propagated")
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
            settings.filters = dict(kind.recommended_filters)
            session.add(settings)
        if fields:
            known = (*kind.default_fields, *kind.create_only_fields)
            unknown = sorted(set(fields) - set(known))
            if unknown:
                raise ValueError(f"unknown field {', '.join(unknown)} (the mappings are: {', '.join(known)})")
            mappings = dict(settings.field_mappings or {})
            for name, enabled in fields.items():
                mappings[name] = {**mappings.get(name, {}), "enabled": bool(enabled)}
            settings.field_mappings = mappings
        if filters is not None:
            before = dict(settings.filters or {})
            settings.filters = _checked_filters(object_type, {**before, **filters})
            if settings.filters != before and settings.id is not None:
                _requeue_excluded(session, settings)
        settings.direction = direction or settings.direction or kind.recommended_direction
        if settings.direction not in kind.directions:
            names_ = {v: k for k, v in DIRECTION_NAMES.items()}
            raise ValueError(
                f"{object_type} sync {', '.join(names_[d] for d in kind.directions)} only"
                f" (not {names_[settings.direction]})"
            )
        refusal = kind.refuse_direction(settings.direction, company.country)
        if refusal:
            raise ValueError(refusal)
        settings.conflict_winner = winner
        settings.delete_policy = delete_policy or settings.delete_policy or "keep"  # None: as it was
        settings.status, settings.paused_reason = "active", None
        if options or settings.id is None:
            options = kind.check_options(dict(options or {}))
            merged = {**(settings.options or {}), **options}
            if kind.checks_with_quickbooks:
                merged = kind.check_with_quickbooks(_quickbooks(runtime, company), merged, settings.set_up_at)
            settings.options = merged
        session.flush()
        return settings


def _quickbooks(runtime: Runtime, company: QboCompany):
    """A QBO client for set-up's few checks (the company's accounts)."""
    from sync.clients.quickbooks import QuickBooksClient
    from sync.tokens import TokenManager

    access, refresh = TokenManager(runtime).quickbooks_tokens(company.id)
    return QuickBooksClient(runtime.config, company.realm_id, access, refresh)


def _checked_filters(object_type: str, filters: dict[str, str | None]) -> dict[str, str]:
    known = registered(object_type).filter_labels
    for side, name in filters.items():
        if side not in ("hubspot", "quickbooks"):
            raise ValueError("filters are keyed by the side records come from: hubspot or quickbooks")
        if name is not None and name not in known:
            raise ValueError(f"unknown filter {name!r} for {object_type} (known: {', '.join(known) or 'none'})")
    return {side: name for side, name in filters.items() if name}


def _requeue_excluded(session, settings: SyncSettings) -> None:
    """Changed filters: the records they left out are planned again by the next run."""
    excluded = session.scalars(
        select(RecordLink).where(
            RecordLink.qbo_company_id == settings.qbo_company_id,
            RecordLink.object_type == settings.object_type,
            RecordLink.state == "excluded",
        )
    )
    queued = {
        (row.side, row.record_id)
        for row in session.scalars(
            select(SyncBacklog).where(
                SyncBacklog.qbo_company_id == settings.qbo_company_id,
                SyncBacklog.object_type == settings.object_type,
            )
        )
    }
    for link in excluded:
        record_id = link.hubspot_id if link.origin == "hubspot" else link.qbo_id
        if record_id and (link.origin, record_id) not in queued:
            session.add(
                SyncBacklog(
                    installation_id=settings.installation_id,
                    qbo_company_id=settings.qbo_company_id,
                    object_type=settings.object_type,
                    side=link.origin,
                    record_id=record_id,
                )
            )
            queued.add((link.origin, record_id))
