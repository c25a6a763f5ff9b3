"""Ledgersync's state, as SQLAlchemy models.

An *installation* is one HubSpot portal that installed the app; it connects
QuickBooks companies (one in this version; the schema allows several). Every
row about synced data carries both `installation_id` and `qbo_company_id`, and
a composite foreign key makes sure the company belongs to that installation:
ids from two companies can never meet in one link, and every query can be
scoped to a tenant with a plain filter.

Times are stored as UTC and always come back timezone-aware (SQLite forgets
the zone; `UTCDateTime` puts it back). Tokens are stored encrypted: the model
holds bytes, and `sync.crypto.TokenCipher` turns them into strings.

The schema is created by Alembic migrations (`sync/store/migrations`), never by
`create_all`; a test checks that models and migrations agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

DIRECTIONS = ("hubspot_to_qbo", "qbo_to_hubspot", "two_way")
CONFLICT_WINNERS = ("hubspot", "quickbooks")
SIDES = ("hubspot", "quickbooks")
RECORD_STATES = ("syncing", "pending", "waiting", "failed", "excluded")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous: pass a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere; Python None is SQL NULL (not JSON null),
# so that "IS NULL" finds what was cleared.
JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    # Named constraints let Alembic alter them later, on SQLite too.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONDocument}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _company_scope(table: str) -> tuple:
    """The columns and composite key that tie a row to one installation's company."""
    return (
        ForeignKeyConstraint(
            ["installation_id", "qbo_company_id"],
            ["qbo_companies.installation_id", "qbo_companies.id"],
            ondelete="CASCADE",
            name=f"fk_{table}_company_scope",
        ),
    )


class Installation(Timestamps, Base):
    """A HubSpot portal (hub) that installed the app."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(primary_key=True)
    hub_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    hub_domain: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    installed_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    installed_by_email: Mapped[str | None] = mapped_column(String(320))
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    uninstalled_at: Mapped[datetime | None]

    qbo_companies: Mapped[list[QboCompany]] = relationship(
        back_populates="installation", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (CheckConstraint(_one_of("status", ("active", "uninstalled")), name="status"),)


class QboCompany(Timestamps, Base):
    """A QuickBooks Online company (realm) connected to an installation."""

    __tablename__ = "qbo_companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), index=True)
    realm_id: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16), default="production")
    status: Mapped[str] = mapped_column(String(24), default="connected")
    company_name: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(8))
    home_currency: Mapped[str | None] = mapped_column(String(3))
    multi_currency: Mapped[bool | None] = mapped_column(Boolean)
    preflight: Mapped[dict[str, Any]] = mapped_column(default=dict)
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    disconnected_at: Mapped[datetime | None]

    installation: Mapped[Installation] = relationship(back_populates="qbo_companies")

    __table_args__ = (
        # The target of every synced row's composite key.
        UniqueConstraint("installation_id", "id"),
        # A company syncs with one installation at a time; a disconnected row is history.
        Index(
            "uq_qbo_companies_connected_realm",
            "environment",
            "realm_id",
            unique=True,
            sqlite_where=text("status != 'disconnected'"),
            postgresql_where=text("status != 'disconnected'"),
        ),
        CheckConstraint(_one_of("environment", ("production", "sandbox")), name="environment"),
        CheckConstraint(_one_of("status", ("connected", "needs_reconnect", "disconnected")), name="status"),
    )


class OAuthToken(Timestamps, Base):
    """One side's OAuth tokens, encrypted: HubSpot's per installation, QBO's per company."""

    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    qbo_company_id: Mapped[int | None] = mapped_column(ForeignKey("qbo_companies.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    access_token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[datetime]
    refresh_token_expires_at: Mapped[datetime | None]
    scopes: Mapped[str | None] = mapped_column(Text)
    # Bumped by every refresh: a refresh commits only if the version it read is still current.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint(_one_of("provider", SIDES), name="provider"),
        CheckConstraint(
            "(provider = 'hubspot' AND qbo_company_id IS NULL)"
            " OR (provider = 'quickbooks' AND qbo_company_id IS NOT NULL)",
            name="owner",
        ),
        Index(
            "uq_oauth_tokens_hubspot_installation",
            "installation_id",
            unique=True,
            sqlite_where=text("provider = 'hubspot'"),
            postgresql_where=text("provider = 'hubspot'"),
        ),
        Index("uq_oauth_tokens_qbo_company", "qbo_company_id", unique=True),
    )


class SyncSettings(Timestamps, Base):
    """How one object type syncs for one company: direction, winner, mappings, filters."""

    __tablename__ = "sync_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(String(16), default="two_way")
    conflict_winner: Mapped[str] = mapped_column(String(16), default="hubspot")
    delete_policy: Mapped[str] = mapped_column(String(16), default="keep")
    field_mappings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    set_up_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        *_company_scope("sync_settings"),
        UniqueConstraint("qbo_company_id", "object_type"),
        CheckConstraint(_one_of("status", ("active", "paused", "off")), name="status"),
        CheckConstraint(_one_of("direction", DIRECTIONS), name="direction"),
        CheckConstraint(_one_of("conflict_winner", CONFLICT_WINNERS), name="conflict_winner"),
        CheckConstraint(_one_of("delete_policy", ("keep", "propagate")), name="delete_policy"),
    )


class RecordLink(Timestamps, Base):
    """The identity map: one HubSpot record and one QBO record that are the same thing.

    A row also exists for a record seen on one side only that is failed,
    excluded or waiting, so that the health pages can count and explain it;
    its other id is then empty. `base_values` holds the last synced value of
    every mapped field: the common ancestor of the three-way merge.
    """

    __tablename__ = "record_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(16))
    hubspot_id: Mapped[str | None] = mapped_column(String(64))
    qbo_id: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))
    # The side on which our sync created the record ("quickbooks": a customer we made, which the
    # display-name rule may rename; None: both were there before they were linked).
    created_side: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="syncing")
    base_values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A compound record's lines synced on both sides: {hubspot line id: qbo line id}; their bases
    # are in base_values["lines"], keyed by the HubSpot line id.
    line_pairs: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    hubspot_modified_at: Mapped[datetime | None]
    qbo_modified_at: Mapped[datetime | None]
    qbo_sync_token: Mapped[str | None] = mapped_column(String(32))
    # A write stored before it is sent, so that a crash can be resumed without a duplicate.
    pending_write: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # What a waiting record waits for: [{"object_type", "side", "id"}]; a link of one of them
    # puts this record back in its object's backlog (sync.runner, cross-object triggers).
    waiting_for: Mapped[list[dict[str, str]] | None] = mapped_column(JSONDocument)
    error_category: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    excluded_reason: Mapped[str | None] = mapped_column(Text)
    hubspot_deleted_at: Mapped[datetime | None]
    qbo_deleted_at: Mapped[datetime | None]
    last_synced_at: Mapped[datetime | None]

    __table_args__ = (
        *_company_scope("record_links"),
        UniqueConstraint("qbo_company_id", "object_type", "hubspot_id"),
        UniqueConstraint("qbo_company_id", "object_type", "qbo_id"),
        Index("ix_record_links_state", "qbo_company_id", "object_type", "state"),
        Index("ix_record_links_next_attempt_at", "next_attempt_at"),
        CheckConstraint(_one_of("origin", SIDES), name="origin"),
        CheckConstraint(_one_of("state", RECORD_STATES), name="state"),
        CheckConstraint("hubspot_id IS NOT NULL OR qbo_id IS NOT NULL", name="has_an_id"),
    )


class SyncActivity(Base):
    """One thing that happened to one record: created, updated, failed, excluded …"""

    __tablename__ = "sync_activity"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    record_link_id: Mapped[int | None] = mapped_column(ForeignKey("record_links.id", ondelete="SET NULL"))
    object_type: Mapped[str] = mapped_column(String(16))
    hubspot_id: Mapped[str | None] = mapped_column(String(64))
    qbo_id: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    error_category: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        *_company_scope("sync_activity"),
        Index("ix_sync_activity_record", "record_link_id", "created_at"),
        Index("ix_sync_activity_recent", "qbo_company_id", "object_type", "created_at"),
    )


class SyncCursor(Base):
    """Where change detection for one object on one side has got to."""

    __tablename__ = "sync_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    watermark: Mapped[datetime | None]
    position: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        *_company_scope("sync_cursors"),
        UniqueConstraint("qbo_company_id", "object_type", "side"),
        CheckConstraint(_one_of("side", SIDES), name="side"),
    )


class SyncBacklog(Base):
    """A record found changed and not yet synced: the work queue of one object, in the database.

    Detection writes every changed id here (and then may advance its cursor); each job takes a
    page of the oldest entries and deletes them when their outcomes commit. So a 100k-record
    first sync is many small jobs that continue where the last one stopped, and a killed worker
    loses nothing.
    """

    __tablename__ = "sync_backlog"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        *_company_scope("sync_backlog"),
        UniqueConstraint("qbo_company_id", "object_type", "side", "record_id"),
        CheckConstraint(_one_of("side", SIDES), name="side"),
    )


class WebhookEvent(Base):
    """A webhook event as received, kept until processed (the database is the source of truth).

    `account_id` is the portal id or realm id the sender named; the tenant
    columns are filled when it matches an installation. `dedupe_key` is a hash
    of the event's content, so a redelivery with a new eventId is still one event.
    """

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(64))
    installation_id: Mapped[int | None] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    qbo_company_id: Mapped[int | None] = mapped_column(ForeignKey("qbo_companies.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None]
    dedupe_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index("ix_webhook_events_status", "status", "received_at"),
        CheckConstraint(_one_of("source", SIDES), name="source"),
        CheckConstraint(_one_of("status", ("pending", "processed", "ignored", "failed")), name="status"),
    )


class Export(Base):
    """An export of records requested from the health pages, built by a job."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    object_type: Mapped[str | None] = mapped_column(String(16))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    file_format: Mapped[str] = mapped_column(String(8), default="csv")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    row_count: Mapped[int | None] = mapped_column(Integer)
    file_name: Mapped[str | None] = mapped_column(String(255))
    # The file itself: web and workers may run on different hosts with no shared disk.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    requested_by: Mapped[str | None] = mapped_column(String(320))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]

    __table_args__ = (
        *_company_scope("exports"),
        Index("ix_exports_company", "qbo_company_id", "created_at"),
        CheckConstraint(_one_of("file_format", ("csv",)), name="file_format"),
        CheckConstraint(_one_of("status", ("queued", "running", "done", "failed")), name="status"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
    )


class Notification(Base):
    """An in-app notice for an installation's users ("QuickBooks needs reconnecting" …).

    `dedupe_key` stops the same ongoing condition from being announced twice.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    qbo_company_id: Mapped[int | None] = mapped_column(ForeignKey("qbo_companies.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8), default="info")
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(512))
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("installation_id", "dedupe_key"),
        Index("ix_notifications_unread", "installation_id", "read_at"),
        CheckConstraint(_one_of("level", ("info", "warning", "error")), name="level"),
    )


class SyncLock(Base):
    """The fencing token of the single-flight run per company and object.

    The Redis lock keeps two runs from starting together; this row keeps an
    expired one from writing: each new holder bumps `fence`, and every commit of
    a run checks that the fence is still its own (see sync.locks).
    """

    __tablename__ = "sync_locks"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column()
    qbo_company_id: Mapped[int] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(16))
    fence: Mapped[int] = mapped_column(BigInteger, default=0)
    holder: Mapped[str | None] = mapped_column(String(128))
    acquired_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    __table_args__ = (
        *_company_scope("sync_locks"),
        UniqueConstraint("qbo_company_id", "object_type"),
    )
