"""The rows one sync run reads and writes, for one company and one object type.

    store = LinkStore(database, installation_id, company_id, "contacts", guard=lock.guard)

`RecordLink` (the identity map, and the failed / excluded / waiting rows), `SyncBacklog` (the work
queue), `SyncCursor` (how far detection got) and `SyncActivity` (what happened to a record), each
queried the same way: scoped to the company and the object type, ids in chunks of 500 (PostgreSQL
and SQLite both take that many parameters comfortably). The runner and the object types ask in
words ("which of these versions were already planned?"); the SQL lives here.

`writing()` is the one way to commit a run's outcome: it checks the run lock's fence in the same
transaction (sync.locks), so a run that lost its lock never writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from sync.engine import HUBSPOT, QUICKBOOKS, Dependency, Link, Record
from sync.store.database import Database
from sync.store.models import RecordLink, SyncActivity, SyncBacklog, SyncCursor, SyncSettings, utcnow
from sync.times import aware

CHUNK = 500
# Links whose last planned versions are remembered, so an unchanged record is not planned again by the
# overlap window or an echo. A failed record is among them: it is retried when its backoff is due
# (`due`) or when one of its two records changes, never on every run (a write that cannot succeed
# would be repeated, and recorded, run after run).
SETTLED_STATES = ("syncing", "excluded", "failed")


def id_column(side: str):
    return RecordLink.hubspot_id if side == HUBSPOT else RecordLink.qbo_id


def id_attribute(side: str) -> str:
    return "hubspot_id" if side == HUBSPOT else "qbo_id"


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def engine_link(link: RecordLink) -> Link:
    """A stored link as the planner sees it (its base, its line pairs, its tombstone)."""
    tombstone = HUBSPOT if link.hubspot_deleted_at else QUICKBOOKS if link.qbo_deleted_at else None
    return Link(
        link.id,
        link.hubspot_id,
        link.qbo_id,
        base=dict(link.base_values or {}),
        line_pairs=dict(link.line_pairs or {}),
        tombstone=tombstone,
    )


class LinkStore:
    def __init__(
        self,
        database: Database,
        installation_id: int,
        company_id: int,
        object_type: str,
        guard: Callable[[Session], None] | None = None,
    ) -> None:
        self.database, self.installation_id, self.company_id = database, installation_id, company_id
        self.object_type, self.guard = object_type, guard
        self.scope = {"installation_id": installation_id, "qbo_company_id": company_id, "object_type": object_type}

    def of(self, object_type: str) -> LinkStore:
        """The same company's store for another object type (read-only use: no fence)."""
        return LinkStore(self.database, self.installation_id, self.company_id, object_type)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.database.session() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A transaction that commits only while the run still holds its lock."""
        with self.database.session() as session:
            if self.guard is not None:
                self.guard(session)
            yield session

    def _links(self):
        return select(RecordLink).where(
            RecordLink.qbo_company_id == self.company_id, RecordLink.object_type == self.object_type
        )

    # --- links ------------------------------------------------------------------------------------------

    def linked(self, hub_ids: set[str], qbo_ids: set[str]) -> list[RecordLink]:
        """The links (both ids set) that hold any of these ids."""
        with self.reading() as session:
            return list(
                session.scalars(
                    self._links().where(
                        RecordLink.hubspot_id.is_not(None),
                        RecordLink.qbo_id.is_not(None),
                        or_(RecordLink.hubspot_id.in_(hub_ids or {""}), RecordLink.qbo_id.in_(qbo_ids or {""})),
                    )
                )
            )

    def get(self, link_id: int) -> RecordLink | None:
        with self.reading() as session:
            return session.get(RecordLink, link_id)

    def own_row(self, session: Session, record: Record) -> RecordLink | None:
        """The row that holds this record, linked or not."""
        return session.scalar(self._links().where(id_column(record.side) == record.id))

    def new_row(self, session: Session, side: str, record_id: str | None) -> RecordLink:
        link = RecordLink(origin=side, **self.scope, **({id_attribute(side): record_id} if record_id else {}))
        session.add(link)
        return link

    def free_id(self, session: Session, side: str, record_id: str, keep: int | None) -> None:
        """A link is about to take `record_id`: a one-sided row that holds it (its own failure or
        exclusion) goes, since the link is that record's row from now on (ids are unique per object)."""
        session.execute(
            delete(RecordLink).where(
                RecordLink.qbo_company_id == self.company_id,
                RecordLink.object_type == self.object_type,
                id_column(side) == record_id,
                RecordLink.id != (keep if keep is not None else -1),
                or_(RecordLink.hubspot_id.is_(None), RecordLink.qbo_id.is_(None)),
            )
        )

    def holder_of(self, side: str, record_id: str, other_than: int) -> str | None:
        """The other side's id of the row that already holds `record_id`, if another row does."""
        with self.reading() as session:
            holder = session.scalar(self._links().where(id_column(side) == record_id, RecordLink.id != other_than))
        if holder is None:
            return None
        return (holder.hubspot_id if side == QUICKBOOKS else holder.qbo_id) or f"link {holder.id}"

    def _ids_where(self, side: str, ids: set[str], *conditions) -> set[str]:
        """Those of `ids` (on `side`) whose row meets `conditions`, asked in chunks."""
        found: set[str] = set()
        with self.reading() as session:
            for chunk in _chunks(ids):
                query = self._links().with_only_columns(id_column(side)).where(id_column(side).in_(chunk), *conditions)
                found.update(session.scalars(query))
        return found

    def linked_ids(self, side: str, ids: set[str], live: bool = False) -> set[str]:
        """Those of `ids` (on `side`) whose record is linked (`live`: and not tombstoned there)."""
        other = id_column(QUICKBOOKS if side == HUBSPOT else HUBSPOT)
        deleted = RecordLink.hubspot_deleted_at if side == HUBSPOT else RecordLink.qbo_deleted_at
        return self._ids_where(side, ids, other.is_not(None), *((deleted.is_(None),) if live else ()))

    def partners(self, side: str, ids: set[str]) -> dict[str, str]:
        """For linked records of `ids` on `side`: their partner's id on the other side."""
        found: dict[str, str] = {}
        other = id_column(QUICKBOOKS if side == HUBSPOT else HUBSPOT)
        with self.reading() as session:
            for chunk in _chunks(ids):
                for mine, theirs in session.execute(
                    self._links()
                    .with_only_columns(id_column(side), other)
                    .where(id_column(side).in_(chunk), other.is_not(None))
                ):
                    found[mine] = theirs
        return found

    def created_by_sync(self, side: str, ids: set[str]) -> set[str]:
        """Those of `ids` (on `side`) that our own sync created there (brought in from the other side)."""
        return self._ids_where(side, ids, RecordLink.origin == (QUICKBOOKS if side == HUBSPOT else HUBSPOT))

    def is_linked(self, dependency: Dependency) -> bool:
        """The planner's question for a record's prerequisites (its customer, its items), of any object."""
        with self.reading() as session:
            return (
                session.scalar(
                    select(RecordLink.id).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == dependency.object_type,
                        id_column(dependency.side) == dependency.id,
                        RecordLink.hubspot_id.is_not(None),
                        RecordLink.qbo_id.is_not(None),
                    )
                )
                is not None
            )

    def pending_writes(self) -> list[RecordLink]:
        with self.reading() as session:
            return [link for link in session.scalars(self._links().where(RecordLink.pending_write.is_not(None)))]

    def due(self) -> list[RecordLink]:
        """Failed and waiting rows whose next attempt is due."""
        with self.reading() as session:
            return list(
                session.scalars(
                    self._links().where(
                        RecordLink.state.in_(("failed", "waiting")),
                        or_(RecordLink.next_attempt_at.is_(None), RecordLink.next_attempt_at <= utcnow()),
                    )
                )
            )

    def sync_direction(self) -> tuple[str, str] | None:
        """(direction, status) of this object type's sync for the company; None when it is not set up."""
        with self.reading() as session:
            settings = session.scalar(
                select(SyncSettings).where(
                    SyncSettings.qbo_company_id == self.company_id, SyncSettings.object_type == self.object_type
                )
            )
            return (settings.direction, settings.status) if settings is not None else None

    def in_state(self, side: str, ids: set[str], state: str) -> set[str]:
        """Those of `ids` (on `side`) whose row is in `state` (e.g. excluded: left out by a filter)."""
        return self._ids_where(side, ids, RecordLink.state == state)

    def resting_failures(self, side: str, ids: set[str]) -> set[str]:
        """Ids of failed records whose next retry is not due yet."""
        return self._ids_where(side, ids, RecordLink.state == "failed", RecordLink.next_attempt_at > utcnow())

    # --- versions: what was already planned ----------------------------------------------------------------

    def already_planned(self, side: str, seen: dict[str, datetime | None], slack: timedelta = timedelta(0)) -> set[str]:
        """Ids whose version was already planned: the overlap window and our own writes' echoes
        come back again and again; without this they would flood the backlog of a big sync.
        `slack`: a version this much newer still counts as planned (a webhook's time trails the record's)."""
        known = RecordLink.hubspot_modified_at if side == HUBSPOT else RecordLink.qbo_modified_at
        done: set[str] = set()
        with self.reading() as session:
            for chunk in _chunks(i for i, moment in seen.items() if moment):
                for record_id, moment in session.execute(
                    self._links()
                    .with_only_columns(id_column(side), known)
                    .where(RecordLink.state.in_(SETTLED_STATES), id_column(side).in_(chunk))
                ):
                    if moment is not None and aware(moment) + slack >= seen[record_id]:
                        done.add(record_id)
        return done

    def same_sync_token(self, seen: dict[str, Any]) -> set[str]:
        """QBO ids whose SyncToken is the one already planned (QBO's LastUpdatedTime has whole seconds;
        the SyncToken, which every write increments, tells versions apart exactly)."""
        done: set[str] = set()
        with self.reading() as session:
            for chunk in _chunks(i for i, token in seen.items() if token is not None):
                for record_id, token in session.execute(
                    self._links()
                    .with_only_columns(RecordLink.qbo_id, RecordLink.qbo_sync_token)
                    .where(RecordLink.state.in_(SETTLED_STATES), RecordLink.qbo_id.in_(chunk))
                ):
                    if token is not None and str(token) == str(seen[record_id]):
                        done.add(record_id)
        return done

    def remember_versions(
        self, session: Session, versions: dict[tuple[str, str], datetime | None], tokens: dict[str, str]
    ) -> None:
        """Note the version of each record a page read or wrote (see `already_planned`)."""
        for side in (HUBSPOT, QUICKBOOKS):
            for chunk in _chunks(record_id for seen_side, record_id in versions if seen_side == side):
                for link in session.scalars(
                    self._links().where(RecordLink.state.in_(SETTLED_STATES), id_column(side).in_(chunk))
                ):
                    record_id = getattr(link, id_attribute(side))
                    moment = versions.get((side, record_id))
                    if moment is not None:
                        setattr(link, "hubspot_modified_at" if side == HUBSPOT else "qbo_modified_at", moment)
                    if side == QUICKBOOKS and record_id in tokens:
                        link.qbo_sync_token = tokens[record_id]

    # --- the backlog -------------------------------------------------------------------------------------

    def _backlog(self):
        return select(SyncBacklog).where(
            SyncBacklog.qbo_company_id == self.company_id, SyncBacklog.object_type == self.object_type
        )

    def enqueue(self, session: Session, side: str, ids: set[str], object_type: str | None = None) -> None:
        """Add ids to the backlog (once: an id already waiting there keeps its place); `object_type`:
        another object's backlog (a record a new link freed)."""
        object_type = object_type or self.object_type
        for chunk in _chunks(ids):
            queued = set(
                session.scalars(
                    select(SyncBacklog.record_id).where(
                        SyncBacklog.qbo_company_id == self.company_id,
                        SyncBacklog.object_type == object_type,
                        SyncBacklog.side == side,
                        SyncBacklog.record_id.in_(chunk),
                    )
                )
            )
            session.add_all(
                SyncBacklog(**{**self.scope, "object_type": object_type}, side=side, record_id=i)
                for i in chunk
                if i not in queued
            )
        session.flush()

    def backlog_size(self) -> int:
        with self.reading() as session:
            return session.scalar(select(func.count()).select_from(self._backlog().subquery())) or 0

    def backlog_page(self, size: int) -> list[tuple[int, str, str]]:
        """The oldest `size` entries: (row id, side, record id)."""
        with self.reading() as session:
            rows = session.scalars(self._backlog().order_by(SyncBacklog.id).limit(size))
            return [(row.id, row.side, row.record_id) for row in rows]

    def done_with(self, session: Session, row_ids: list[int]) -> None:
        session.execute(delete(SyncBacklog).where(SyncBacklog.id.in_(row_ids)))

    def release_waiting(self, session: Session, new_links: set[tuple[str, str]]) -> set[str]:
        """Rows of any object that wait for a record just linked go back in their object's backlog.
        Returns the object types whose backlog got work."""
        released: set[str] = set()
        if not new_links:
            return released
        waiting = session.scalars(
            select(RecordLink).where(
                RecordLink.qbo_company_id == self.company_id,
                RecordLink.state == "waiting",
                RecordLink.waiting_for.is_not(None),
            )
        )
        for link in waiting:
            needs = {(d["side"], d["id"]) for d in link.waiting_for or () if d["object_type"] == self.object_type}
            if not needs & new_links:
                continue
            self.enqueue(session, link.origin, {getattr(link, id_attribute(link.origin))}, link.object_type)
            released.add(link.object_type)
        return released

    # --- cursors and activity -------------------------------------------------------------------------------

    def cursors(self) -> dict[str, SyncCursor]:
        with self.database.session() as session:
            found = {}
            for side in (HUBSPOT, QUICKBOOKS):
                cursor = session.scalar(
                    select(SyncCursor).where(
                        SyncCursor.qbo_company_id == self.company_id,
                        SyncCursor.object_type == self.object_type,
                        SyncCursor.side == side,
                    )
                )
                if cursor is None:
                    cursor = SyncCursor(side=side, **self.scope)
                    session.add(cursor)
                    session.flush()
                found[side] = cursor
            return found

    def activity(
        self,
        session: Session,
        link: RecordLink,
        action: str,
        target: str | None,
        message: str,
        category: str | None = None,
    ) -> None:
        session.flush()
        session.add(
            SyncActivity(
                record_link_id=link.id,
                hubspot_id=link.hubspot_id,
                qbo_id=link.qbo_id,
                direction={QUICKBOOKS: "to_qbo", HUBSPOT: "to_hubspot"}.get(target),
                action=action,
                error_category=category,
                message=message,
                **self.scope,
            )
        )

    def last_activity(self, session: Session, link: RecordLink) -> SyncActivity | None:
        return session.scalar(
            select(SyncActivity)
            .where(SyncActivity.record_link_id == link.id)
            .order_by(SyncActivity.created_at.desc(), SyncActivity.id.desc())
            .limit(1)
        )
