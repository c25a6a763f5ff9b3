"""One sync run of one object for one company: read what changed, plan, write safely, remember.

    run_object(runtime, company_id, "contacts") -> RunSummary

1. Take the fenced run lock (sync.locks); a run already in progress means this one is not needed.
2. Find what changed — both cursors (sync.cursors), the stored webhook events, and the records
   whose earlier failure or wait is due again — and put every id in the backlog (SyncBacklog);
   the cursors advance in that same commit, since the backlog now holds the work.
   Then work through the backlog a page (PAGE_SIZE records) at a time: read those records
   whole, the other side of every link they have, and any unlinked match by key.
3. Plan (sync.engine) and carry the plan out record by record:
   - a create is stored as a *pending write* (with its request id) before it is sent; QBO
     creates carry that id as `requestid`, so a repeat after a crash gets QBO's first answer;
     HubSpot creates are upserts on our unique id property, so a repeat updates instead of
     duplicating. A run that finds a pending write finishes it first.
   - updates send only the changed fields (QBO: a hand-built sparse body with the SyncToken
     just read; a stale one (5010) means read again and plan again).
   - the link's base is what the target answered after the write, so our own write read back
     later plans nothing.
   - failures are kept on the record's link row with their category and explanation; the
     record is retried on its next change or by the sweep.
4. Commit each record's outcome under the lock's fence; a page leaves the backlog only after
   its outcomes are committed, so a killed worker repeats at most one page (safely).

Only contacts ⇄ customers is wired today (sync.contacts); products and invoices add modules.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select

from sync import contacts
from sync.clients import errors
from sync.clients.hubspot import HubSpotClient
from sync.clients.quickbooks import QuickBooksClient
from sync.cursors import hubspot_changes, parse_time, quickbooks_changes
from sync.engine import HUBSPOT, QUICKBOOKS, Action, Dependency, Link, Record, SyncRules, plan
from sync.locks import LockLost, RunLock
from sync.privacy import is_privacy_deletion, purge_person
from sync.runtime import Runtime
from sync.store.models import (
    QboCompany,
    RecordLink,
    SyncActivity,
    SyncBacklog,
    SyncCursor,
    SyncSettings,
    WebhookEvent,
    utcnow,
)
from sync.tokens import TokenManager

log = logging.getLogger(__name__)
MODULES = {"contacts": contacts}
QBO_BATCH, HUBSPOT_BATCH = 30, 100  # the APIs' batch sizes
PAGE_SIZE = 500  # backlog records planned and written per page (one job's share of the work)
# Links whose last planned versions are remembered, so an unchanged record is not planned again by the
# overlap window or an echo. A failed record is among them: it is retried when its backoff is due
# (`_due_links`) or when one of its two records changes, never on every run (a write that cannot
# succeed would be repeated, and recorded, run after run).
SETTLED_STATES = ("syncing", "excluded", "failed")
ARCHIVE_CHECK_EVERY = timedelta(hours=1)  # how often a run lists HubSpot's archived records (lost delete webhooks)
RETRY_BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)


@dataclass
class RunSummary:
    object_type: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped_run: str | None = None  # why the run did nothing (busy, paused, not set up)
    more_to_do: bool = False  # the backlog still holds records (a job re-enqueues itself)
    released: set[str] = field(default_factory=set)  # other objects whose waiting records a new link freed
    follow_up: bool = False  # a run was asked for while this one held the lock: queue one now
    retry_in: float | None = None  # busy: try again when the holder's lease ends (it may have died)

    def add(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def rules_for(settings: SyncSettings, module) -> SyncRules:
    enabled = tuple(
        name for name in module.DEFAULT_FIELDS if settings.field_mappings.get(name, {}).get("enabled", True)
    )
    return SyncRules(
        direction=settings.direction,
        conflict_winner=settings.conflict_winner,
        fields=enabled,
        delete_policy=settings.delete_policy,
        filters=module.sync_filters(settings.filters),
        natural_key=module.natural_key,
        key_required=True,
    )


def run_object(
    runtime: Runtime, company_id: int, object_type: str, progress=None, pages: int | None = None
) -> RunSummary:
    """Detect changes, then work through the backlog a page at a time: `pages` of them (None: all).

    Jobs run one page and re-enqueue themselves while work remains (`summary.more_to_do`), so a
    100k-record first sync never holds a worker away from another installation's changes; the
    CLI and tests run every page.
    """
    module = MODULES[object_type]
    summary = RunSummary(object_type)
    with runtime.database.session() as session:
        company = session.get(QboCompany, company_id)
        settings = session.scalar(
            select(SyncSettings).where(
                SyncSettings.qbo_company_id == company_id, SyncSettings.object_type == object_type
            )
        )
        if company is None or company.status != "connected" or settings is None or settings.status != "active":
            summary.skipped_run = "not connected or not set up" if settings is None else f"sync {settings.status}"
            return summary
        tenant = _Tenant(
            installation_id=company.installation_id,
            company_id=company_id,
            realm_id=company.realm_id,
            portal_id=company.installation.hub_id,
            options=dict(settings.options or {}),
            filters=dict(settings.filters or {}),
            set_up_at=_aware(settings.set_up_at),
        )
        rules = rules_for(settings, module)
    lock = RunLock(runtime, tenant.installation_id, company_id, object_type)
    if not lock.acquire():
        lock.request_run()  # the holder queues a follow-up when it releases …
        if not lock.acquire():  # … unless it released just now: then this run goes ahead
            summary.skipped_run = "another run is in progress; it runs again after it"
            # If the holder died, its lease ends and nobody would honour the mark: try again then.
            summary.retry_in = lock.lease_remaining() + 1
            return summary
    lock.take_run_request()  # this run reads every change from here on
    try:
        run = _Run(runtime, lock, module, rules, tenant, summary, progress, patient=pages is None)
        while True:
            try:
                run.execute(pages)
                break
            except errors.RateLimited as limited:
                if pages is not None:
                    raise  # a job: re-enqueued for later, never asleep on a worker
                # an operator's run to the end (the CLI) waits its turn instead, holding its lock
                time.sleep(min(limited.retry_after, 30))
                if not lock.renew():
                    raise LockLost("the run lock expired while waiting for the rate limit") from limited
    except LockLost:
        summary.skipped_run = "the run lost its lock and stopped"
    finally:
        lock.release()
        summary.follow_up = lock.take_run_request()
    return summary


@dataclass(frozen=True)
class _Tenant:
    """Whose sync a run is, and that sync's stored choices."""

    installation_id: int
    company_id: int
    realm_id: str
    portal_id: int
    options: dict[str, Any]  # contacts: the display-name rule
    filters: dict[str, str]  # the stored filter names, keyed by source side
    set_up_at: datetime


class _Run:
    def __init__(self, runtime, lock, module, rules, tenant: _Tenant, summary, progress, patient: bool = False) -> None:
        self.runtime, self.lock, self.module, self.rules = runtime, lock, module, rules
        self.installation_id, self.company_id = tenant.installation_id, tenant.company_id
        self.realm_id, self.portal_id = tenant.realm_id, tenant.portal_id
        self.options, self.filters, self.set_up_at = tenant.options, tenant.filters, tenant.set_up_at
        self.summary, self.progress = summary, progress
        tokens = TokenManager(runtime)
        from sync.clients.ratelimit import RateLimiter

        # a job waits out a short window (then re-queues); an operator's run to the end waits it all out
        limiter = RateLimiter(runtime.jobs.connection, max_wait=90.0 if patient else 1.0, while_waiting=lock.renew)
        self.hubspot = HubSpotClient(
            runtime.settings, tenant.portal_id, tokens.hubspot_access_token(tenant.installation_id), limiter
        )
        access, refresh = tokens.quickbooks_tokens(tenant.company_id)
        self.qbo = QuickBooksClient(runtime.settings, tenant.realm_id, access, refresh, limiter)
        self._qbo_cache: dict[str, dict] = {}
        self._new_links: set[tuple[str, str]] = set()  # (side, id) linked by this page
        self._read_versions: dict[tuple[str, str], datetime | None] = {}  # (side, id) → modified time as read
        # QBO's LastUpdatedTime has whole seconds: an edit in the same second as our write would look
        # already synced. Its SyncToken, which every write increments, tells versions apart exactly.
        self._read_tokens: dict[str, str] = {}  # QBO id → SyncToken as read
        self._merged_into: dict[str, str] = {}  # HubSpot id merged away → its survivor's id (as read)
        self._archived_checked: datetime | None = None  # when this run listed HubSpot's archived records
        self.scope = {
            "installation_id": tenant.installation_id,
            "qbo_company_id": tenant.company_id,
            "object_type": module.OBJECT_TYPE,
        }

    # --- 2. what changed --------------------------------------------------------------------------------------

    def execute(self, pages: int | None) -> None:
        self.hubspot.ensure_unique_property(
            self.module.HUBSPOT_OBJECT,
            self.module.ID_PROPERTY,
            "QuickBooks customer id (Ledgersync)",
            "contactinformation",
        )
        self._finish_pending_writes()
        self._detect(datetime.now(UTC))
        total = self._backlog_size()
        done = 0
        while pages is None or pages > 0:
            page = self._backlog_page()
            if not page:
                break
            self._work(page)
            done += len(page)
            if self.progress:
                self.progress(done, max(total, done))
            pages = None if pages is None else pages - 1
        self.summary.more_to_do = self._backlog_size() > 0

    def _detect(self, started: datetime) -> None:
        """Every changed id goes into the backlog; then (same commit) the cursors move and events are done.

        The backlog is in the database, so advancing the cursors here loses nothing: a run that
        dies afterwards leaves its work in the backlog for the next one.
        """
        cursors = self._cursors()

        def hubspot_page(results: list[dict], watermark: datetime) -> None:
            """Each search page is stored with its watermark, so a rate-limited run resumes there."""
            seen = {r["id"]: self._modified(HUBSPOT, r) for r in results}
            fresh = set(seen) - self._already_synced(HUBSPOT, seen)
            with self.runtime.database.session() as session:
                self.lock.guard(session)
                self._enqueue_ids(session, HUBSPOT, fresh)
                session.get(SyncCursor, cursors[HUBSPOT].id).watermark = watermark

        hub_changes = hubspot_changes(
            self.hubspot,
            self.module.HUBSPOT_OBJECT,
            self.module.MODIFIED_PROPERTY,
            cursors[HUBSPOT].watermark,
            started,
            on_page=hubspot_page,
        )
        qbo_ids, qbo_watermark = self._quickbooks_changed(cursors[QUICKBOOKS], started)
        hub_ids: set[str] = set()  # the search's finds are in the backlog already (hubspot_page)
        qbo_ids -= self._same_sync_token({i: row.get("SyncToken") for i, row in self._qbo_cache.items()})
        events = self._pending_events()
        triggers: dict[str, set[str]] = {}
        announced: dict[str, dict[str, datetime | None]] = {HUBSPOT: {}, QUICKBOOKS: {}}
        forgotten: set[str] = set()  # HubSpot privacy deletions: our copies of the person go too
        for event in events:
            if event.object_type == self.module.HUBSPOT_OBJECT and is_privacy_deletion(event.event_type):
                forgotten.add(event.object_id)
            if event.object_type in self.module.EVENT_TYPES and event.object_id:
                moments = announced[event.source]
                moment = _aware(event.occurred_at) if event.occurred_at else None
                if event.object_id in moments and (moment is None or moments[event.object_id] is None):
                    moments[event.object_id] = None  # an event without a time always counts
                else:
                    moments[event.object_id] = max(filter(None, (moment, moments.get(event.object_id))), default=None)
            elif event.object_id:
                triggers.setdefault(event.object_type, set()).add(event.object_id)
        for side, target in ((HUBSPOT, hub_ids), (QUICKBOOKS, qbo_ids)):
            # an event about a version we already planned (our own write's, say) is no work. Best
            # effort: occurredAt may trail lastmodifieddate by a few ms (one extra, harmless replan);
            # the cursors compare versions exactly.
            target |= set(announced[side]) - self._already_synced(side, announced[side])
        hub_ids |= self._triggered(triggers)
        swept = self._swept_billing_contacts(cursors[HUBSPOT].watermark, started)
        # The sweep is the safety net for lost webhooks, and its overlap window finds the same invoices
        # run after run: a failed contact it finds waits for its backoff (a webhook still re-plans it at once).
        hub_ids |= swept - self._resting_failures(HUBSPOT, swept)
        hub_ids |= self._archived_linked(cursors[HUBSPOT], started)
        for link in self._due_links():
            if link.hubspot_id:
                hub_ids.add(link.hubspot_id)
            if link.qbo_id:
                qbo_ids.add(link.qbo_id)
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            self._enqueue_ids(session, HUBSPOT, hub_ids)
            self._enqueue_ids(session, QUICKBOOKS, qbo_ids)
            for side, watermark in ((HUBSPOT, hub_changes.watermark), (QUICKBOOKS, qbo_watermark)):
                cursor = session.get(SyncCursor, cursors[side].id)
                cursor.watermark = watermark if isinstance(watermark, datetime) else parse_time(watermark)
                if side == HUBSPOT and self._archived_checked is not None:
                    cursor.position = {
                        **(cursor.position or {}),
                        "archived_checked_at": self._archived_checked.isoformat(),
                    }
            for event in events:
                stored = session.get(WebhookEvent, event.id)
                stored.status, stored.processed_at = "processed", utcnow()
            purge_person(session, self.installation_id, self.module.OBJECT_TYPE, forgotten)

    def _enqueue_ids(self, session, side: str, ids: set[str]) -> None:
        """Add ids to this object's backlog (once: an id already waiting there keeps its place)."""
        ordered = sorted(ids)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            queued = set(
                session.scalars(
                    select(SyncBacklog.record_id).where(
                        SyncBacklog.qbo_company_id == self.company_id,
                        SyncBacklog.object_type == self.module.OBJECT_TYPE,
                        SyncBacklog.side == side,
                        SyncBacklog.record_id.in_(chunk),
                    )
                )
            )
            session.add_all(SyncBacklog(side=side, record_id=i, **self.scope) for i in chunk if i not in queued)
        session.flush()

    def _read_back(self, side: str, raw: dict) -> Record:
        """A record as a write answered it; its version is noted so that the echo is not work again."""
        record_id = str(raw["Id"] if side == QUICKBOOKS else raw["id"])
        if side == QUICKBOOKS and record_id in self._qbo_cache:
            # the listing's copy is now stale: a later page that plans this record must see our write,
            # or it would take the fields we just filled for fields cleared in QBO
            self._qbo_cache[record_id] = raw
        self._read_versions[(side, record_id)] = self._modified(side, raw)
        if side == QUICKBOOKS and raw.get("SyncToken") is not None:
            self._read_tokens[record_id] = str(raw["SyncToken"])
        return self.module.from_quickbooks(raw) if side == QUICKBOOKS else self.module.from_hubspot(raw)

    def _is_linked(self, dependency: Dependency) -> bool:
        """The planner's question for a record's prerequisites (its customer, its items)."""
        column = RecordLink.hubspot_id if dependency.side == HUBSPOT else RecordLink.qbo_id
        with self.runtime.database.session() as session:
            return (
                session.scalar(
                    select(RecordLink.id).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == dependency.object_type,
                        column == dependency.id,
                        RecordLink.hubspot_id.is_not(None),
                        RecordLink.qbo_id.is_not(None),
                    )
                )
                is not None
            )

    def _release_waiting(self, session) -> None:
        """Records of any object that wait for a record this page linked go back in their backlog."""
        if not self._new_links:
            return
        waiting = session.scalars(
            select(RecordLink).where(
                RecordLink.qbo_company_id == self.company_id,
                RecordLink.state == "waiting",
                RecordLink.waiting_for.is_not(None),
            )
        )
        for link in waiting:
            needs = {
                (d["side"], d["id"]) for d in link.waiting_for or () if d["object_type"] == self.module.OBJECT_TYPE
            }
            if not needs & self._new_links:
                continue
            side = link.origin
            record_id = link.hubspot_id if side == HUBSPOT else link.qbo_id
            queued = session.scalar(
                select(SyncBacklog.id).where(
                    SyncBacklog.qbo_company_id == self.company_id,
                    SyncBacklog.object_type == link.object_type,
                    SyncBacklog.side == side,
                    SyncBacklog.record_id == record_id,
                )
            )
            if queued is None:
                session.add(
                    SyncBacklog(
                        installation_id=self.installation_id,
                        qbo_company_id=self.company_id,
                        object_type=link.object_type,
                        side=side,
                        record_id=record_id,
                    )
                )
            self.summary.released.add(link.object_type)
        self._new_links.clear()

    def _modified(self, side: str, raw: dict) -> datetime | None:
        if side == HUBSPOT:
            return parse_time(raw["properties"].get(self.module.MODIFIED_PROPERTY))
        return parse_time((raw.get("MetaData") or {}).get("LastUpdatedTime"))

    def _already_synced(self, side: str, seen: dict[str, datetime | None]) -> set[str]:
        """Ids whose version was already planned: the overlap window and our own writes' echoes
        come back again and again; without this they would flood the backlog of a big sync."""
        column = RecordLink.hubspot_id if side == HUBSPOT else RecordLink.qbo_id
        known = RecordLink.hubspot_modified_at if side == HUBSPOT else RecordLink.qbo_modified_at
        ids, done = sorted(i for i, moment in seen.items() if moment), set()
        with self.runtime.database.session() as session:
            for start in range(0, len(ids), 500):
                for record_id, moment in session.execute(
                    select(column, known).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.state.in_(SETTLED_STATES),
                        column.in_(ids[start : start + 500]),
                    )
                ):
                    if moment is not None and _aware(moment) >= seen[record_id]:
                        done.add(record_id)
        return done

    def _same_sync_token(self, seen: dict[str, Any]) -> set[str]:
        """QBO ids whose SyncToken is the one already planned (see `_read_tokens`)."""
        ids, done = sorted(i for i, token in seen.items() if token is not None), set()
        with self.runtime.database.session() as session:
            for start in range(0, len(ids), 500):
                for record_id, token in session.execute(
                    select(RecordLink.qbo_id, RecordLink.qbo_sync_token).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.state.in_(SETTLED_STATES),
                        RecordLink.qbo_id.in_(ids[start : start + 500]),
                    )
                ):
                    if token is not None and str(token) == str(seen[record_id]):
                        done.add(record_id)
        return done

    def _remember_versions(self, session) -> None:
        """Note the version of each record this page read or wrote (see `_already_synced`)."""
        for side, column in ((HUBSPOT, RecordLink.hubspot_id), (QUICKBOOKS, RecordLink.qbo_id)):
            ordered = sorted(record_id for seen_side, record_id in self._read_versions if seen_side == side)
            for start in range(0, len(ordered), 500):
                for link in session.scalars(
                    select(RecordLink).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.state.in_(SETTLED_STATES),
                        column.in_(ordered[start : start + 500]),
                    )
                ):
                    moment = self._read_versions.get((side, link.hubspot_id if side == HUBSPOT else link.qbo_id))
                    if moment is not None:
                        setattr(link, f"{'hubspot' if side == HUBSPOT else 'qbo'}_modified_at", moment)
                    if side == QUICKBOOKS and link.qbo_id in self._read_tokens:
                        link.qbo_sync_token = self._read_tokens[link.qbo_id]

    def _backlog_query(self):
        return select(SyncBacklog).where(
            SyncBacklog.qbo_company_id == self.company_id, SyncBacklog.object_type == self.module.OBJECT_TYPE
        )

    def _backlog_size(self) -> int:
        with self.runtime.database.session() as session:
            return session.scalar(select(func.count()).select_from(self._backlog_query().subquery())) or 0

    def _backlog_page(self) -> list[tuple[int, str, str]]:
        with self.runtime.database.session() as session:
            rows = session.scalars(self._backlog_query().order_by(SyncBacklog.id).limit(PAGE_SIZE))
            return [(row.id, row.side, row.record_id) for row in rows]

    def _work(self, page: list[tuple[int, str, str]]) -> None:
        """Plan and write one page of the backlog, then take it off the backlog (under the fence)."""
        hub_ids = {record_id for _, side, record_id in page if side == HUBSPOT}
        qbo_ids = {record_id for _, side, record_id in page if side == QUICKBOOKS}
        links = self._links(hub_ids, qbo_ids)
        hub_ids |= {link.hubspot_id for link in links if link.hubspot_id}
        qbo_ids |= {link.qbo_id for link in links if link.qbo_id}
        hub_records = self._read_hubspot(hub_ids, links)
        qbo_ids |= self._merges(hub_records, links)
        qbo_records = self._read_quickbooks(qbo_ids)
        self._read_key_candidates(hub_records, qbo_records, links)
        result = plan(
            hub_records.values(),
            qbo_records.values(),
            [self._engine_link(link) for link in links],
            self.rules,
            self._is_linked,
        )
        self._carry_out(self._with_renames(result, links, hub_records, qbo_records), hub_records, qbo_records)
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            self._remember_versions(session)
            self._release_waiting(session)
            session.execute(delete(SyncBacklog).where(SyncBacklog.id.in_([row_id for row_id, _, _ in page])))
        for entity_id in qbo_ids:  # rows of this page are done with; later pages keep theirs
            self._qbo_cache.pop(entity_id, None)
        self._read_versions.clear()
        self._read_tokens.clear()
        self._merged_into.clear()

    def _merges(self, hub_records: dict[str, Record], links: list[RecordLink]) -> set[str]:
        """HubSpot merges among what was read: each linked record merged into a survivor becomes a
        merged record (the planner moves its link to the survivor) and the survivor's own link, if
        any, joins the page. Returns the QBO ids those links add."""
        if not self._merged_into:
            return set()
        known = {link.id for link in links}
        merged_links = [
            link
            for link in self._links(set(self._merged_into) | set(self._merged_into.values()), set())
            if link.id not in known
        ]
        links += merged_links
        for link in links:
            survivor = self._merged_into.get(link.hubspot_id or "")
            if survivor is not None:
                hub_records[link.hubspot_id] = Record(HUBSPOT, link.hubspot_id, {}, merged_into=survivor)
        return {link.qbo_id for link in merged_links if link.qbo_id}

    def _cursors(self) -> dict[str, SyncCursor]:
        with self.runtime.database.session() as session:
            found = {}
            for side in (HUBSPOT, QUICKBOOKS):
                cursor = session.scalar(
                    select(SyncCursor).where(
                        SyncCursor.qbo_company_id == self.company_id,
                        SyncCursor.object_type == self.module.OBJECT_TYPE,
                        SyncCursor.side == side,
                    )
                )
                if cursor is None:
                    cursor = SyncCursor(side=side, **self.scope)
                    session.add(cursor)
                    session.flush()
                found[side] = cursor
            return found

    def _quickbooks_changed(self, cursor: SyncCursor, started: datetime) -> tuple[set[str], Any]:
        entity = self.module.QBO_ENTITY
        if cursor.watermark is None:
            return self._quickbooks_listing(cursor, started)
        changes = quickbooks_changes(self.qbo, [entity], cursor.watermark, started)
        self._qbo_cache = {key.split(":", 1)[1]: row for key, row in changes.records.items()}
        return set(self._qbo_cache) | {key.split(":", 1)[1] for key in changes.deleted}, changes.watermark

    def _quickbooks_listing(self, cursor: SyncCursor, started: datetime) -> tuple[set[str], datetime]:
        """First run: every customer, active or not, 1,000 a query; each page is stored with its
        position, so a run stopped by a rate limit goes on from there. Ordered by Id, so records
        created meanwhile come last; the watermark is when the listing began (CDC covers the rest)."""
        entity = self.module.QBO_ENTITY
        position = dict(cursor.position or {})
        began = parse_time(position.get("listing_began")) or started
        listed = int(position.get("listed", 0))
        self._qbo_cache = {}
        while True:
            rows = self.qbo.query(
                f"select * from {entity} where Active in (true, false) "  # noqa: S608
                f"orderby Id startposition {listed + 1} maxresults 1000"
            ).get(entity, [])
            listed += len(rows)
            for row in rows:
                self._qbo_cache[row["Id"]] = row
            with self.runtime.database.session() as session:
                self.lock.guard(session)
                self._enqueue_ids(session, QUICKBOOKS, {row["Id"] for row in rows})
                stored = session.get(SyncCursor, cursor.id)
                stored.position = {"listed": listed, "listing_began": began.isoformat()}
            if len(rows) < 1000:
                break
        with self.runtime.database.session() as session:
            session.get(SyncCursor, cursor.id).position = {}
        return set(self._qbo_cache), began

    def _archived_linked(self, cursor: SyncCursor, started: datetime) -> set[str]:
        """Linked HubSpot records archived since: an archived record leaves the search API, so its
        deletion webhook is the only news of it. Once an hour (noted on the HubSpot cursor) the run
        lists the archived ones (HubSpot keeps them 90 days), so a lost webhook delays a delete by
        an hour at most instead of until the other side changes."""
        checked = parse_time((cursor.position or {}).get("archived_checked_at"))
        if checked is not None and started - checked < ARCHIVE_CHECK_EVERY:
            return set()
        found = self._linked_hubspot_ids(set(self.hubspot.archived_ids(self.module.HUBSPOT_OBJECT)), live=True)
        self._archived_checked = started  # noted with the backlog, in the same commit (see _detect)
        return found

    def _linked_hubspot_ids(self, ids: set[str], live: bool = False) -> set[str]:
        """Those of `ids` whose HubSpot record is linked (`live`: and not tombstoned there)."""
        ordered, found = sorted(ids), set()
        with self.runtime.database.session() as session:
            for begin in range(0, len(ordered), 500):
                query = select(RecordLink.hubspot_id).where(
                    RecordLink.qbo_company_id == self.company_id,
                    RecordLink.object_type == self.module.OBJECT_TYPE,
                    RecordLink.hubspot_id.in_(ordered[begin : begin + 500]),
                    RecordLink.qbo_id.is_not(None),
                )
                if live:
                    query = query.where(RecordLink.hubspot_deleted_at.is_(None))
                found.update(session.scalars(query))
        return found

    def _swept_billing_contacts(self, since: datetime | None, started: datetime) -> set[str]:
        """With the billing-contact filter, the unlinked contacts of invoices changed since the last run:
        a contact becomes eligible when its invoice is opened, and the invoice's webhook may be lost.
        (The first run reads every contact anyway; linked contacts need no eligibility.)"""
        if since is None or self.filters.get(HUBSPOT) != contacts.BILLING_CONTACT:
            return set()
        changed = hubspot_changes(self.hubspot, "invoices", "hs_lastmodifieddate", since, started)
        if not changed.records:
            return set()
        found = self._triggered({"invoices": set(changed.records)})
        return found - self._linked_hubspot_ids(found)

    def _resting_failures(self, side: str, ids: set[str]) -> set[str]:
        """Ids of failed records whose next retry is not due yet."""
        if not ids:
            return set()
        column = RecordLink.hubspot_id if side == HUBSPOT else RecordLink.qbo_id
        with self.runtime.database.session() as session:
            return set(
                session.scalars(
                    select(column).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.state == "failed",
                        RecordLink.next_attempt_at > utcnow(),
                        column.in_(sorted(ids)),
                    )
                )
            )

    def _triggered(self, changed: dict[str, set[str]]) -> set[str]:
        """Our records whose plan depends on other records that changed (cross-object triggers)."""
        found: set[str] = set()
        for object_type, ids in changed.items():
            for targets in self.hubspot.associated_ids(object_type, self.module.HUBSPOT_OBJECT, sorted(ids)).values():
                found.update(targets)
        return found

    def _pending_events(self) -> list[WebhookEvent]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    select(WebhookEvent).where(
                        WebhookEvent.installation_id == self.installation_id,
                        WebhookEvent.status == "pending",
                        WebhookEvent.object_type.in_((*self.module.EVENT_TYPES, *self.module.HUBSPOT_TRIGGERS)),
                    )
                )
            )

    def _due_links(self) -> list[RecordLink]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    select(RecordLink).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.state.in_(("failed", "waiting")),
                        or_(RecordLink.next_attempt_at.is_(None), RecordLink.next_attempt_at <= utcnow()),
                    )
                )
            )

    def _links(self, hub_ids: set[str], qbo_ids: set[str]) -> list[RecordLink]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    select(RecordLink).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.hubspot_id.is_not(None),
                        RecordLink.qbo_id.is_not(None),
                        or_(RecordLink.hubspot_id.in_(hub_ids or {""}), RecordLink.qbo_id.in_(qbo_ids or {""})),
                    )
                )
            )

    def _read_hubspot(self, ids: set[str], links: list[RecordLink]) -> dict[str, Record]:
        properties = [*self.module.HUBSPOT_PROPERTIES.values(), self.module.ID_PROPERTY]
        properties += [self.module.MODIFIED_PROPERTY, "hs_merged_object_ids"]
        found = {r["id"]: r for r in self.hubspot.batch_read(self.module.HUBSPOT_OBJECT, sorted(ids), properties)}
        for survivor_id, raw in found.items():  # a merged id reads as its survivor, which lists it
            for merged_id in (raw["properties"].get("hs_merged_object_ids") or "").split(";"):
                if merged_id.strip() and merged_id.strip() != survivor_id:
                    self._merged_into[merged_id.strip()] = survivor_id
        self._read_versions.update({(HUBSPOT, i): self._modified(HUBSPOT, r) for i, r in found.items()})
        companies = (
            self._primary_company_names(sorted(found)) if getattr(self.module, "USES_PRIMARY_COMPANY", False) else {}
        )
        unlinked = sorted(set(found) - {link.hubspot_id for link in links})
        billing = self._billing_standing(unlinked) if self.filters.get(HUBSPOT) == contacts.BILLING_CONTACT else {}
        records = {i: self.module.from_hubspot(r, companies.get(i), billing.get(i)) for i, r in found.items()}
        for link in links:  # a linked record that no longer reads was archived in HubSpot
            if link.hubspot_id in ids and link.hubspot_id not in found:
                records[link.hubspot_id] = Record(HUBSPOT, link.hubspot_id, {}, deleted=True)
        return records

    def _primary_company_names(self, contact_ids: list[str]) -> dict[str, str]:
        """Each contact's primary company's name (the customer display name's first choice)."""
        if not contact_ids:
            return {}
        primary = self.hubspot.primary_associations(self.module.HUBSPOT_OBJECT, "companies", contact_ids)
        names = {
            c["id"]: (c["properties"].get("name") or "").strip()
            for c in self.hubspot.batch_read("companies", sorted(set(primary.values())), ["name"])
        }
        return {contact: names[company] for contact, company in primary.items() if names.get(company)}

    def _billing_standing(self, contact_ids: list[str]) -> dict[str, dict[str, str]]:
        """For the billing-contact filter: each new contact's invoices that count (not a draft, created
        in HubSpot after set-up) and how many contacts each has. Only unlinked contacts are asked
        about: a linked one keeps syncing whatever the filter says."""
        if not contact_ids:
            return {}
        invoices_of = self.hubspot.associated_ids(self.module.HUBSPOT_OBJECT, "invoices", contact_ids)
        invoice_ids = sorted({i for ids in invoices_of.values() for i in ids})
        if not invoice_ids:
            return {}
        with self.runtime.database.session() as session:  # invoices our own sync created in HubSpot
            brought_in = set(
                session.scalars(
                    select(RecordLink.hubspot_id).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == "invoices",
                        RecordLink.origin == QUICKBOOKS,
                        RecordLink.hubspot_id.in_(invoice_ids),
                    )
                )
            )
        counting = {
            invoice["id"]
            for invoice in self.hubspot.batch_read("invoices", invoice_ids, list(contacts.INVOICE_PROPERTIES))
            if contacts.invoice_counts(invoice, self.set_up_at, invoice["id"] in brought_in)
        }
        contacts_of = self.hubspot.associated_ids("invoices", self.module.HUBSPOT_OBJECT, sorted(counting))
        return {
            contact_id: contacts.billing_standing(contact_id, [i for i in invoices if i in counting], contacts_of)
            for contact_id, invoices in invoices_of.items()
        }

    def _read_quickbooks(self, ids: set[str]) -> dict[str, Record]:
        cache = getattr(self, "_qbo_cache", {})
        missing = sorted(i for i in ids if i not in cache)
        for start in range(0, len(missing), 100):
            quoted = ", ".join(f"'{i}'" for i in missing[start : start + 100])
            statement = f"select * from Customer where Active in (true, false) and Id in ({quoted})"  # noqa: S608
            for row in self.qbo.query(statement).get("Customer", []):
                cache[row["Id"]] = row
        records = {i: self.module.from_quickbooks(cache[i]) for i in ids if i in cache}
        self._read_versions.update({(QUICKBOOKS, i): self._modified(QUICKBOOKS, cache[i]) for i in ids if i in cache})
        self._read_tokens.update({i: str(cache[i]["SyncToken"]) for i in ids if cache.get(i, {}).get("SyncToken")})
        for entity_id in ids:
            records.setdefault(entity_id, Record(QUICKBOOKS, entity_id, {}, deleted=True))
        self._qbo_cache = cache
        return records

    def _read_key_candidates(
        self, hub_records: dict[str, Record], qbo_records: dict[str, Record], links: list[RecordLink]
    ) -> None:
        """Add the other side's records that share a key with an unlinked record we read, and their links.

        The planner matches new records by key only among the records it is given: without this,
        a new contact whose QBO customer did not change in this window would get a second customer.
        """
        linked = {HUBSPOT: {link.hubspot_id for link in links}, QUICKBOOKS: {link.qbo_id for link in links}}

        def keys_of(records: dict[str, Record], side: str) -> list[str]:
            keys = (self.rules.natural_key(r) for i, r in records.items() if i not in linked[side] and not r.deleted)
            return sorted({key for key in keys if key})

        hub_found = {
            r["id"]
            for r in self.hubspot.batch_read(
                self.module.HUBSPOT_OBJECT,
                keys_of(qbo_records, QUICKBOOKS),
                [],
                id_property=self.module.HUBSPOT_KEY_PROPERTY,
            )
        } - set(hub_records)
        qbo_found: set[str] = set()
        hub_keys = keys_of(hub_records, HUBSPOT)
        for start in range(0, len(hub_keys), 100):
            # QBO compares strings without case (an emulator assumption, see emulators/README.md)
            for row in self.qbo.query(self.module.quickbooks_key_query(hub_keys[start : start + 100])).get(
                self.module.QBO_ENTITY, []
            ):
                self._qbo_cache[row["Id"]] = row
                qbo_found.add(row["Id"])
        qbo_found -= set(qbo_records)
        if not hub_found and not qbo_found:
            return
        extra = [link for link in self._links(hub_found, qbo_found) if link.id not in {k.id for k in links}]
        links += extra
        hub_found |= {link.hubspot_id for link in extra if link.hubspot_id} - set(hub_records)
        qbo_found |= {link.qbo_id for link in extra if link.qbo_id} - set(qbo_records)
        hub_records.update(self._read_hubspot(hub_found, extra))
        qbo_records.update(self._read_quickbooks(qbo_found))

    def _with_renames(self, result, links: list[RecordLink], hub_records, qbo_records):
        """Add the display-name renames the object's rule asks for (contacts: customers we created,
        when the setting allows) to the plan: into the pair's planned QBO update, or as one of its own."""
        rename_to = getattr(self.module, "rename_to", None)
        if rename_to is None or not self.options.get("rename"):
            return result
        planned = {a.link_id: a for a in result.actions if a.kind == "update" and a.target_side == QUICKBOOKS}
        busy = {a.link_id for a in result.actions if a.kind in ("fail", "wait", "tombstone", "delete", "relink")}
        for link in links:
            contact, customer = hub_records.get(link.hubspot_id), qbo_records.get(link.qbo_id)
            if contact is None or customer is None or link.id in busy or link.hubspot_deleted_at or link.qbo_deleted_at:
                continue
            name = rename_to(contact, customer, link.created_side == QUICKBOOKS, self.options)
            if name is None:
                continue
            action = planned.get(link.id)
            if action is not None:
                result.actions[result.actions.index(action)] = replace(
                    action, changes={**action.changes, "display_name": name}
                )
            else:
                result.add(
                    Action(
                        "update",
                        contact,
                        target_side=QUICKBOOKS,
                        target_id=link.qbo_id,
                        link_id=link.id,
                        changes={"display_name": name},
                        base_after=dict(link.base_values or {}),
                        reason="the display-name rule renames a customer we created",
                    )
                )
        return result

    @staticmethod
    def _engine_link(link: RecordLink) -> Link:
        tombstone = HUBSPOT if link.hubspot_deleted_at else QUICKBOOKS if link.qbo_deleted_at else None
        return Link(link.id, link.hubspot_id, link.qbo_id, base=dict(link.base_values or {}), tombstone=tombstone)

    # --- 3. carrying out the plan -------------------------------------------------------------------------------

    def _carry_out(self, result, hub_records: dict[str, Record], qbo_records: dict[str, Record]) -> None:
        for action in result.of_kind("relink"):  # first: the survivor's writes go through the moved link
            self._guarded(lambda a=action: self._relink(a), [action])
        creates = [a for a in result.actions if a.kind == "create"]
        for target, size in ((QUICKBOOKS, QBO_BATCH), (HUBSPOT, HUBSPOT_BATCH)):
            group = [a for a in creates if a.target_side == target]
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                self._guarded(lambda c=chunk, t=target: self._create_batch(c, t), chunk)
        updates = [a for a in result.actions if a.kind in ("update", "link") and a.changes]  # batched alike
        for target, size, write in (
            (QUICKBOOKS, QBO_BATCH, self._update_batch_qbo),
            (HUBSPOT, HUBSPOT_BATCH, self._update_batch_hubspot),
        ):
            group = [a for a in updates if a.target_side == target]
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                self._guarded(lambda c=chunk, w=write: w(c), chunk)
        for action in result.actions:
            if action.kind in ("create", "relink") or (action.kind in ("update", "link") and action.changes):
                continue
            self._guarded(lambda a=action: self._apply(a, hub_records, qbo_records), [action])

    def _guarded(self, step, actions: list[Action]) -> None:
        """Run one step; a failure of the remote is kept on each of its records, anything else stops the run."""
        if not self.lock.renew():  # kept while working; lost means someone else runs now
            raise LockLost("the run lock expired")
        try:
            step()
        except (LockLost, errors.NeedsReconnect, errors.RateLimited):
            raise  # stop: the job is re-enqueued, or the connection needs the user
        except errors.ApiError as error:
            for action in actions:
                self._failed(action, _category(error), error.message, error.detail)

    def _apply(self, action: Action, hub_records, qbo_records) -> None:
        kind = action.kind
        self.summary.add(kind)
        if kind in ("update", "link"):
            self._update(action, hub_records, qbo_records)
        elif kind in ("fail", "exclude", "wait"):
            self._remember_state(action)
        elif kind == "tombstone":
            self._tombstone(action)
        elif kind == "delete":
            self._delete(action)
        elif kind == "skip" and action.link_id and action.base_after:
            self._store_base(action.link_id, action.base_after, None)

    def _create_batch(self, actions: list[Action], target: str) -> None:
        """Creates in one call (QBO ≤ 30, HubSpot ≤ 100), each stored as a pending write before it is sent."""
        pending: dict[int, tuple[Action, dict]] = {}
        before: dict[int, str | None] = {}  # each row's state before it was staged (None: a new row)
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            for action in actions:
                self.summary.add("create")
                source = action.source
                link = session.scalar(self._own_row(source))
                previous = link.state if link is not None else None
                if link is None:
                    link = RecordLink(origin=source.side, **self.scope, **{_id_column(source.side): source.id})
                    session.add(link)
                write = {"request_id": str(uuid.uuid4()), "target": target, "changes": dict(action.changes)}
                if target == QUICKBOOKS:
                    write["body"] = self.module.to_quickbooks(
                        dict(action.changes), dict(source.fields), creating=True, options=self.options
                    )
                link.state, link.pending_write = "pending", write
                session.flush()
                pending[link.id] = (action, write)
                before[link.id] = previous
        if target == QUICKBOOKS:
            try:
                answers = self.qbo.batch_create(
                    self.module.QBO_ENTITY, {str(link_id): write["body"] for link_id, (_a, write) in pending.items()}
                )
            except errors.RateLimited as limited:
                self._unstage(before, limited)
                raise
            created = {link_id: answers.get(str(link_id)) for link_id in pending}
            marks = {
                pending[i][0].source.id: {self.module.ID_PROPERTY: r["Id"]}
                for i, r in created.items()
                if isinstance(r, dict)
            }
            if marks:  # our id property on each contact: a recreate can never duplicate it
                for answer in self.hubspot.batch_update(self.module.HUBSPOT_OBJECT, marks).values():
                    if isinstance(answer, dict):
                        self._read_back(HUBSPOT, answer)
            outcomes = {
                i: (r, self._read_back(QUICKBOOKS, r) if isinstance(r, dict) else None) for i, r in created.items()
            }
        else:
            inputs = {
                a.source.id: {**self.module.to_hubspot(dict(a.changes)), self.module.ID_PROPERTY: a.source.id}
                for a, _write in pending.values()
            }
            try:
                answers = self.hubspot.batch_upsert(self.module.HUBSPOT_OBJECT, self.module.ID_PROPERTY, inputs)
            except errors.RateLimited as limited:
                self._unstage(before, limited)
                raise
            outcomes = {}
            for link_id, (action, _write) in pending.items():
                answer = answers.get(action.source.id, errors.Transient(HUBSPOT, "no answer for this record"))
                outcomes[link_id] = (answer, self._read_back(HUBSPOT, answer) if isinstance(answer, dict) else None)
        for link_id, (answer, read_back) in outcomes.items():
            action = pending[link_id][0]
            if isinstance(answer, errors.ApiError) or answer is None:
                error = answer or errors.Transient(target, "no answer for this record")
                category, message = _category(error), error.message
                if category == "duplicate display name":  # say which name, and the contact's email
                    name = pending[link_id][1]["body"].get("DisplayName")
                    message = f"“{name}” is already the name of a QuickBooks customer, vendor or employee: {message}"
                self._failed(Action("create", action.source, link_id=link_id), category, message, error.detail)
                continue
            self._linked_after_create(
                link_id, target, answer["Id"] if target == QUICKBOOKS else answer["id"], read_back
            )

    def _unstage(self, before: dict[int, str | None], limited: errors.RateLimited) -> None:
        """Our own limiter stopped a batch before it was sent (no status: no answer from anyone), so
        nothing is pending: the staged writes go, and the records are simply planned again later —
        in a batch, rather than resumed one by one as writes that may have happened."""
        if limited.status is not None:
            return  # the remote answered 429: it received the request, so the writes stay to be resumed
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            for link_id, previous in before.items():
                link = session.get(RecordLink, link_id)
                if previous is None:
                    session.delete(link)
                else:
                    link.state, link.pending_write = previous, None

    def _linked_after_create(self, link_id: int, target: str, target_id: str, read_back: Record) -> None:
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            link = session.get(RecordLink, link_id)
            setattr(link, _id_column(target), target_id)
            link.created_side = target
            self._settled(link, {name: read_back.fields.get(name) for name in self.rules.fields})
            self._activity(session, link, "created", target, f"created in {target}")

    def _finish_pending_writes(self) -> None:
        """A crash between storing a pending write and linking its answer: finish it, never duplicating.

        HubSpot creates are upserts on our property: sending again is safe. A QBO create may have been
        made by a batch that died before answering: look for it first (DisplayName is unique in QBO),
        and only if it is not there create it, with the write's own request id.
        """
        with self.runtime.database.session() as session:
            pending = [
                link
                for link in session.scalars(
                    select(RecordLink).where(
                        RecordLink.qbo_company_id == self.company_id,
                        RecordLink.object_type == self.module.OBJECT_TYPE,
                        RecordLink.pending_write.is_not(None),
                    )
                )
                if link.pending_write
            ]
        for link in pending:
            write = link.pending_write
            source_id = link.hubspot_id if link.origin == HUBSPOT else link.qbo_id
            source = Record(link.origin, source_id, write["changes"])
            try:
                if write["target"] == QUICKBOOKS:
                    name = write["body"]["DisplayName"].replace("'", "\\'")
                    found = self.qbo.query(
                        f"select * from {self.module.QBO_ENTITY} where "  # noqa: S608
                        f"DisplayName = '{name}' and Active in (true, false)"
                    )
                    existing = found.get(self.module.QBO_ENTITY, [])
                    holder = self._holder_of(QUICKBOOKS, existing[0]["Id"], link.id) if existing else None
                    if holder is not None:  # the name belongs to another linked record, not to our lost create
                        self._failed(
                            Action("create", source, link_id=link.id),
                            "linked to another record",
                            f"QuickBooks {self.module.QBO_ENTITY.lower()} {existing[0]['Id']} "
                            f"(“{write['body']['DisplayName']}”) is already linked to HubSpot record {holder}",
                            None,
                        )
                        continue
                    written = (
                        existing[0]
                        if existing
                        else self.qbo.create(self.module.QBO_ENTITY, write["body"], request_id=write["request_id"])
                    )
                    marked = self.hubspot.update(
                        self.module.HUBSPOT_OBJECT, source.id, {self.module.ID_PROPERTY: written["Id"]}
                    )
                    self._read_back(HUBSPOT, marked)
                    self._linked_after_create(link.id, QUICKBOOKS, written["Id"], self._read_back(QUICKBOOKS, written))
                else:
                    properties = {**self.module.to_hubspot(write["changes"]), self.module.ID_PROPERTY: source.id}
                    written = self.hubspot.upsert(
                        self.module.HUBSPOT_OBJECT, self.module.ID_PROPERTY, source.id, properties
                    )
                    self._linked_after_create(link.id, HUBSPOT, written["id"], self._read_back(HUBSPOT, written))
                self.summary.add("resumed")
            except errors.ApiError as error:
                self._failed(Action("create", source, link_id=link.id), _category(error), error.message, error.detail)

    def _holder_of(self, side: str, record_id: str, other_than: int) -> str | None:
        """The other side's id of the link that already holds `record_id`, if another link does."""
        column = RecordLink.qbo_id if side == QUICKBOOKS else RecordLink.hubspot_id
        with self.runtime.database.session() as session:
            holder = session.scalar(
                select(RecordLink).where(
                    RecordLink.qbo_company_id == self.company_id,
                    RecordLink.object_type == self.module.OBJECT_TYPE,
                    column == record_id,
                    RecordLink.id != other_than,
                )
            )
        if holder is None:
            return None
        return (holder.hubspot_id if side == QUICKBOOKS else holder.qbo_id) or f"link {holder.id}"

    def _update(self, action: Action, hub_records, qbo_records) -> None:
        target, changes = action.target_side, dict(action.changes)
        target_id = action.target_id
        if changes:
            if target == QUICKBOOKS:
                current = self.qbo.read(self.module.QBO_ENTITY, target_id)  # the SyncToken to write against
                merged = {**self.module.from_quickbooks(current).fields, **action.base_after}
                body = self.module.to_quickbooks(changes, merged, creating=False)
                try:
                    written = self.qbo.sparse_update(self.module.QBO_ENTITY, target_id, current["SyncToken"], body)
                except errors.StaleObject:
                    self.summary.add("stale")
                    self._replan(action)  # changed meanwhile: read again, plan again, write again
                    return
                read_back = self._read_back(QUICKBOOKS, written)
            else:
                written = self.hubspot.update(self.module.HUBSPOT_OBJECT, target_id, self.module.to_hubspot(changes))
                read_back = self._read_back(HUBSPOT, written)
            base = {
                **action.base_after,
                **{name: read_back.fields.get(name) for name in changes if name in self.rules.fields},
            }
        else:
            base = dict(action.base_after)
        if action.kind == "link":
            self._link_row(action, base)
        else:
            self._store_base(action.link_id, base, target)

    def _free_id(self, session, side: str, record_id: str, keep: int | None) -> None:
        """A link is about to take `record_id`: a one-sided row that holds it (its own failure or
        exclusion) goes, since the link is that record's row from now on (ids are unique per object)."""
        column = RecordLink.hubspot_id if side == HUBSPOT else RecordLink.qbo_id
        session.execute(
            delete(RecordLink).where(
                RecordLink.qbo_company_id == self.company_id,
                RecordLink.object_type == self.module.OBJECT_TYPE,
                column == record_id,
                RecordLink.id != (keep if keep is not None else -1),
                or_(RecordLink.hubspot_id.is_(None), RecordLink.qbo_id.is_(None)),
            )
        )

    def _link_row(self, action: Action, base: dict) -> None:
        """A first link between two records: the source's row takes the target's id (a one-sided row
        the target had — a failure or exclusion of its own — goes: this link is its row now)."""
        target, target_id = action.target_side, action.target_id
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            link = session.scalar(self._own_row(action.source))
            self._free_id(session, target, target_id, keep=link.id if link is not None else None)
            if link is None:
                link = RecordLink(origin=action.source.side, **self.scope)
                session.add(link)
            setattr(link, _id_column(action.source.side), action.source.id)
            setattr(link, _id_column(target), target_id)
            self._settled(link, base)
            self._activity(session, link, "linked", target, action.reason)

    def _update_batch_qbo(self, actions: list[Action]) -> None:
        """Sparse updates, 30 a call, against the SyncTokens this run read; a stale one is planned again."""
        bodies = {}
        for index, action in enumerate(actions):  # keyed by position: a first link has no link id yet
            self.summary.add(action.kind)
            current = self._qbo_cache.get(action.target_id) or self.qbo.read(self.module.QBO_ENTITY, action.target_id)
            merged = {**self.module.from_quickbooks(current).fields, **action.base_after}
            body = self.module.to_quickbooks(dict(action.changes), merged, creating=False)
            bodies[str(index)] = {
                **body,
                "Id": action.target_id,
                "SyncToken": current["SyncToken"],
                "sparse": True,
            }
        answers = self.qbo.batch_write(self.module.QBO_ENTITY, "update", bodies)
        for index, action in enumerate(actions):
            answer = answers.get(str(index))
            if isinstance(answer, errors.StaleObject) and action.kind == "link":
                self.summary.add("stale")  # not linked yet: it is planned again on its next change or retry
                self._failed(action, "temporary failure", "the customer changed while we linked it", None)
            elif isinstance(answer, errors.StaleObject):
                self.summary.add("stale")
                self._replan(action)  # changed meanwhile: read again, plan again, write again
            elif isinstance(answer, dict):
                self._written(action, self._read_back(QUICKBOOKS, answer))
            else:
                error = answer or errors.Transient(QUICKBOOKS, "no answer for this record")
                self._failed(action, _category(error), error.message, error.detail)

    def _update_batch_hubspot(self, actions: list[Action]) -> None:
        for action in actions:
            self.summary.add(action.kind)
        answers = self.hubspot.batch_update(
            self.module.HUBSPOT_OBJECT, {a.target_id: self.module.to_hubspot(dict(a.changes)) for a in actions}
        )
        for action in actions:
            answer = answers.get(action.target_id)
            if isinstance(answer, dict):
                self._written(action, self._read_back(HUBSPOT, answer))
            else:
                error = answer or errors.Transient(HUBSPOT, "no answer for this record")
                self._failed(action, _category(error), error.message, error.detail)

    def _written(self, action: Action, read_back: Record) -> None:
        """The base of a link after an update: the agreed values, as the target stored what we wrote."""
        synced = [name for name in action.changes if name in self.rules.fields]  # not a rename's display_name
        base = {**action.base_after, **{name: read_back.fields.get(name) for name in synced}}
        if action.kind == "link":
            self._link_row(action, base)
        else:
            self._store_base(action.link_id, base, action.target_side)

    def _replan(self, action: Action) -> None:
        """After a 5010: never resend the stale plan; plan this pair again from fresh reads (once)."""
        if getattr(self, "_replanning", False):
            raise errors.Transient(QUICKBOOKS, "the record keeps changing while we write it; retrying later")
        with self.runtime.database.session() as session:
            link = session.get(RecordLink, action.link_id)
        hub = self._read_hubspot({link.hubspot_id}, [link])
        self._qbo_cache = {}
        qbo = self._read_quickbooks({link.qbo_id})
        self._replanning = True
        try:
            fresh = plan(hub.values(), qbo.values(), [self._engine_link(link)], self.rules)
            for step in fresh.actions:
                self._apply(step, hub, qbo)
        finally:
            self._replanning = False

    def _store_base(self, link_id: int, base: dict, target: str | None) -> None:
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            link = session.get(RecordLink, link_id)
            changed = link.base_values != base or link.state != "syncing"
            self._settled(link, base)
            if target is not None:
                self._activity(session, link, "updated", target, f"updated in {target}")
            elif changed:
                session.add(link)

    def _settled(self, link: RecordLink, base: dict) -> None:
        link.base_values, link.state, link.pending_write, link.waiting_for = base, "syncing", None, None
        if link.hubspot_id and link.qbo_id:
            self._new_links.update({(HUBSPOT, link.hubspot_id), (QUICKBOOKS, link.qbo_id)})
        link.error_category = link.error_message = link.excluded_reason = None
        link.attempts, link.next_attempt_at, link.last_synced_at = 0, None, utcnow()

    def _relink(self, action: Action) -> None:
        """A merge: the link moves to the survivor (a one-sided row the survivor had goes: the link is its row now)."""
        self.summary.add("relink")
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            self._free_id(session, action.target_side, action.target_id, keep=action.link_id)
            link = session.get(RecordLink, action.link_id)
            setattr(link, _id_column(action.target_side), action.target_id)
            self._activity(session, link, "merged", None, action.reason)

    def _delete(self, action: Action) -> None:
        """The propagate policy: delete the other side too (QBO: made inactive), then tombstone the link."""
        if action.target_side == QUICKBOOKS:
            current = self.qbo.read(self.module.QBO_ENTITY, action.target_id)
            if current.get("Active") is not False:
                written = self.qbo.sparse_update(
                    self.module.QBO_ENTITY, action.target_id, current["SyncToken"], self.module.QBO_DELETE_BODY
                )
                self._read_back(QUICKBOOKS, written)
        else:
            self.hubspot.archive(self.module.HUBSPOT_OBJECT, action.target_id)
        self._tombstone(action, deleted_in=action.target_side)

    def _tombstone(self, action: Action, deleted_in: str | None = None) -> None:
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            link = session.get(RecordLink, action.link_id)
            if action.source.side == HUBSPOT:
                link.hubspot_deleted_at = utcnow()
            else:
                link.qbo_deleted_at = utcnow()
            if deleted_in == HUBSPOT:
                link.hubspot_deleted_at = utcnow()
            elif deleted_in == QUICKBOOKS:
                link.qbo_deleted_at = utcnow()
            self._activity(session, link, "deleted", deleted_in, action.reason)

    def _remember_state(self, action: Action) -> None:
        state = {"fail": "failed", "exclude": "excluded", "wait": "waiting"}[action.kind]
        with self.runtime.database.session() as session:
            self.lock.guard(session)
            link = (
                session.get(RecordLink, action.link_id)
                if action.link_id
                else session.scalar(self._own_row(action.source))
            )
            if link is None:
                link = RecordLink(
                    origin=action.source.side, **self.scope, **{_id_column(action.source.side): action.source.id}
                )
                session.add(link)
            if link.hubspot_id and link.qbo_id and state == "excluded":
                return  # a linked record is never excluded
            link.state = state
            link.waiting_for = (
                [{"object_type": d.object_type, "side": d.side, "id": d.id} for d in action.waiting_for]
                if state == "waiting"
                else None
            )
            link.error_category = action.category
            link.error_message = action.reason + (f" What to do: {action.fix}" if action.fix else "")
            link.excluded_reason = action.reason if state == "excluded" else None
            if state == "failed":
                if action.category != "temporary failure":
                    # The other side refused the write for good: it did not happen, so it is not resumed as
                    # a write that may have (that resumption, run after run, was the retry churn).
                    link.pending_write = None
                link.attempts = (link.attempts or 0) + 1  # a new row has no default before its insert
                link.next_attempt_at = utcnow() + RETRY_BACKOFF[min(link.attempts, len(RETRY_BACKOFF)) - 1]
            session.flush()
            if state == "failed" and self._repeat_of_last_failure(session, link, action):
                return
            self._activity(
                session,
                link,
                {"failed": "failed", "excluded": "excluded", "waiting": "waiting"}[state],
                None,
                action.reason,
                category=action.category,
            )

    def _repeat_of_last_failure(self, session, link: RecordLink, action: Action) -> bool:
        """The same failure as the record's last activity: counted there (`details.repeats`, `last_at`)
        instead of a new row each attempt."""
        last = session.scalar(
            select(SyncActivity)
            .where(SyncActivity.record_link_id == link.id)
            .order_by(SyncActivity.created_at.desc(), SyncActivity.id.desc())
            .limit(1)
        )
        if last is None or (last.action, last.error_category, last.message) != (
            "failed",
            action.category,
            action.reason,
        ):
            return False
        details = dict(last.details or {})
        details["repeats"] = int(details.get("repeats", 1)) + 1
        details["last_at"] = utcnow().isoformat()
        last.details = details
        return True

    def _failed(self, action: Action, category: str, message: str, detail: str | None) -> None:
        self.summary.add("failed")
        self._remember_state(
            Action(
                "fail",
                action.source,
                link_id=action.link_id,
                category=category,
                reason=message + (f" ({detail[:300]})" if detail else ""),
                fix=getattr(self.module, "ADVICE", {}).get(category),
            )
        )

    def _own_row(self, record: Record):
        column = RecordLink.hubspot_id if record.side == HUBSPOT else RecordLink.qbo_id
        return select(RecordLink).where(
            RecordLink.qbo_company_id == self.company_id,
            RecordLink.object_type == self.module.OBJECT_TYPE,
            column == record.id,
        )

    def _activity(
        self, session, link: RecordLink, action: str, target: str | None, message: str, category: str | None = None
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


def _id_column(side: str) -> str:
    return "hubspot_id" if side == HUBSPOT else "qbo_id"


def _category(error: errors.ApiError) -> str:
    if isinstance(error, errors.Duplicate):
        return "duplicate display name" if error.side == QUICKBOOKS and error.code == "6240" else "duplicate"
    if isinstance(error, errors.ValidationFailed):
        return f"refused by {error.side}"
    if isinstance(error, errors.NotFound):
        return "not found"
    return "temporary failure"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive datetimes
