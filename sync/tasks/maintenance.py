"""Housekeeping jobs: a liveness ping and the pruning of old history."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import delete, text

from sync.runtime import current_runtime
from sync.store.models import Export, Notification, SyncActivity, WebhookEvent, utcnow

# How long history is kept. Webhook events are only needed until processed (and
# a while after, to recognise redeliveries); activity backs the health pages.
WEBHOOK_EVENT_RETENTION = timedelta(days=14)
ACTIVITY_RETENTION = timedelta(days=90)
READ_NOTIFICATION_RETENTION = timedelta(days=90)


def ping(note: str = "") -> dict:
    """Prove that a worker runs jobs and reaches the database; returns who ran it."""
    with current_runtime().database.session() as session:
        session.execute(text("SELECT 1"))
    return {"note": note, "pid": os.getpid(), "host": socket.gethostname(), "at": utcnow().isoformat()}


def prune_history() -> dict[str, int]:
    """Delete history past its retention; failed webhook events are kept for inspection."""
    now = utcnow()
    statements = {
        "webhook_events": delete(WebhookEvent).where(
            WebhookEvent.status.in_(("processed", "ignored")),
            WebhookEvent.received_at < now - WEBHOOK_EVENT_RETENTION,
        ),
        "sync_activity": delete(SyncActivity).where(SyncActivity.created_at < now - ACTIVITY_RETENTION),
        "exports": delete(Export).where(Export.expires_at < now),
        "notifications": delete(Notification).where(Notification.read_at < now - READ_NOTIFICATION_RETENTION),
    }
    deleted = {}
    with current_runtime().database.session() as session:
        for table, statement in statements.items():
            deleted[table] = session.execute(statement).rowcount
    return deleted


def refresh_quiet_connections() -> int:
    """Keep every QBO connection's rolling 100-day refresh token alive (daily, from the clock)."""
    from sync.tokens import TokenManager

    return TokenManager(current_runtime()).refresh_quiet_connections()
