"""One sync run of one object type for one company: the loop, and nothing about any object type.

    run_object(runtime, company_id, "contacts") -> RunSummary

1. Take the fenced run lock (sync.locks); a run already in progress means this one is not needed.
2. Find what changed — both cursors (sync.cursors), the stored webhook events, the object type's
   own extra ids, and the records whose earlier failure or wait is due again — and put every id in
   the backlog (SyncBacklog); the cursors advance in that same commit, since the backlog now holds
   the work. Then work through the backlog a page (PAGE_SIZE records) at a time:
3. read those records whole (sync.reader), plan (sync.engine), let the object type adjust the
   plan, and carry it out record by record (sync.writer);
4. commit each record's outcome under the lock's fence; a page leaves the backlog only after its
   outcomes are committed, so a killed worker repeats at most one page (safely).

What an object type is — names, mappings, keys, events, hooks — is declared in its own module
under sync/objects/ and looked up by name in the registry; the SQL is in sync.store.links.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from sync.clients import errors
from sync.clients.hubspot import HubSpotClient
from sync.clients.quickbooks import QuickBooksClient
from sync.clients.ratelimit import RateLimiter
from sync.cursors import hubspot_changes, quickbooks_changes
from sync.engine import HUBSPOT, QUICKBOOKS, Action, plan
from sync.locks import LockLost, RunLock
from sync.objects import ObjectType, RunContext, object_type
from sync.privacy import is_privacy_deletion, purge_person
from sync.reader import Reader
from sync.runtime import Runtime
from sync.store.links import LinkStore, engine_link
from sync.store.models import QboCompany, SyncCursor, SyncSettings, WebhookEvent, utcnow
from sync.times import aware, parse_time
from sync.tokens import TokenManager
from sync.writer import Writer

log = logging.getLogger(__name__)
PAGE_SIZE = 500  # backlog records planned and written per page (one job's share of the work)
ARCHIVE_CHECK_EVERY = timedelta(hours=1)  # how often a run lists HubSpot's archived records (lost delete webhooks)
QBO_LISTING_PAGE = 1000  # QBO's largest query page
EVENT_SLACK = timedelta(seconds=1)  # see _detect


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


def run_object(
    runtime: Runtime, company_id: int, object_type_name: str, progress=None, pages: int | None = None
) -> RunSummary:
    """Detect changes, then work through the backlog a page at a time: `pages` of them (None: all).

    Jobs run one page and re-enqueue themselves while work remains (`summary.more_to_do`), so a
    100k-record first sync never holds a worker away from another installation's changes; the
    CLI and tests run every page.
    """
    kind = object_type(object_type_name)
    summary = RunSummary(object_type_name)
    with runtime.database.session() as session:
        company = session.get(QboCompany, company_id)
        settings = session.scalar(
            select(SyncSettings).where(
                SyncSettings.qbo_company_id == company_id, SyncSettings.object_type == object_type_name
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
            set_up_at=aware(settings.set_up_at),
            home_currency=company.home_currency,
        )
        rules = kind.rules(settings)
    lock = RunLock(
        runtime, tenant.installation_id, company_id, object_type_name, ttl_seconds=runtime.config.run_lease_seconds
    )
    if not lock.acquire():
        lock.request_run()  # the holder queues a follow-up when it releases …
        if not lock.acquire():  # … unless it released just now: then this run goes ahead
            summary.skipped_run = "another run is in progress; it runs again after it"
            # If the holder died, its lease ends and nobody would honour the mark: try again then.
            summary.retry_in = lock.lease_remaining() + 1
            return summary
    lock.take_run_request()  # this run reads every change from here on
    try:
        run = _Run(runtime, lock, kind, rules, tenant, summary, progress, patient=pages is None)
        refreshed: set[str] = set()  # the sides whose refused token this run refreshed
        while True:
            try:
                run.execute(pages)
                break
            except errors.Unauthorized as refusal:
                # A 401 to a token we thought valid (revoked, clocks apart): refresh it once per side and
                # start over with new clients (the run is idempotent); a second refusal fails the job.
                if refusal.side in refreshed:
                    raise
                refreshed.add(refusal.side)
                run.refresh_refused_token(refusal)
                run = _Run(runtime, lock, kind, rules, tenant, summary, progress, patient=pages is None)
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
    options: dict[str, Any]  # the object type's options (contacts: the display-name rule)
    filters: dict[str, str]  # the stored filter names, keyed by source side
    set_up_at: datetime
    home_currency: str | None


class _Run:
    def __init__(
        self, runtime, lock, kind: ObjectType, rules, tenant: _Tenant, summary, progress, patient: bool = False
    ) -> None:
        self.runtime, self.lock, self.kind, self.rules = runtime, lock, kind, rules
        self.tenant, self.summary, self.progress = tenant, summary, progress
        tokens = TokenManager(runtime)
        # a job waits out a short window (then re-queues); an operator's run to the end waits it all out
        limiter = RateLimiter(runtime.jobs.connection, max_wait=90.0 if patient else 1.0, while_waiting=lock.renew)
        self.hubspot_access_token = tokens.hubspot_access_token(tenant.installation_id)
        hubspot = HubSpotClient(runtime.config, tenant.portal_id, self.hubspot_access_token, limiter)
        access, refresh = tokens.quickbooks_tokens(tenant.company_id)
        self.qbo_access_token = access
        qbo = QuickBooksClient(runtime.config, tenant.realm_id, access, refresh, limiter)
        self.links = LinkStore(runtime.database, tenant.installation_id, tenant.company_id, kind.name, lock.guard)
        self.context = RunContext(
            hubspot, qbo, self.links, tenant.options, tenant.filters, tenant.set_up_at, tenant.home_currency
        )
        self.hubspot, self.qbo = hubspot, qbo
        self.reader = Reader(kind, self.context, rules)
        self.writer = Writer(kind, self.context, self.reader, rules, summary, lock.renew, self._replan)
        self._archived_checked: datetime | None = None  # when this run listed HubSpot's archived records
        self._qbo_triggered: set[str] = set()  # our QBO records that changed entities of other kinds name
        self._replanning = False

    def refresh_refused_token(self, refusal: errors.Unauthorized) -> None:
        tokens = TokenManager(self.runtime)
        if refusal.side == QUICKBOOKS:
            tokens.refused(QUICKBOOKS, self.tenant.company_id, self.qbo_access_token)
        else:
            tokens.refused(HUBSPOT, self.tenant.installation_id, self.hubspot_access_token)

    # --- 2. what changed --------------------------------------------------------------------------------------

    def execute(self, pages: int | None) -> None:
        self.rules = self.reader.rules = self.writer.rules = self.kind.prepare(self.context, self.rules)
        for hubspot_object, group, label in self.kind.property_groups:
            self.hubspot.ensure_property_group(hubspot_object, group, label)
        self.hubspot.ensure_unique_property(
            self.kind.hubspot_object, self.kind.id_property, self.kind.id_property_label, self.kind.id_property_group
        )
        for name, label, field_type in self.kind.extra_hubspot_properties:
            self.hubspot.ensure_property(
                self.kind.hubspot_object, name, label, self.kind.id_property_group, field_type=field_type
            )
        for hubspot_object, name, label, group, field_type in self.kind.other_hubspot_properties:
            self.hubspot.ensure_property(hubspot_object, name, label, group, field_type=field_type)
        self.writer.finish_pending_writes()
        self._detect(datetime.now(UTC))
        total = self.links.backlog_size()
        done = 0
        while pages is None or pages > 0:
            page = self.links.backlog_page(PAGE_SIZE)
            if not page:
                break
            self._work(page)
            done += len(page)
            if self.progress:
                self.progress(done, max(total, done))
            pages = None if pages is None else pages - 1
        self.summary.more_to_do = self.links.backlog_size() > 0

    def _detect(self, started: datetime) -> None:
        """Every changed id goes into the backlog; then (same commit) the cursors move and events are done.

        The backlog is in the database, so advancing the cursors here loses nothing: a run that
        dies afterwards leaves its work in the backlog for the next one.
        """
        cursors = self.links.cursors()

        def hubspot_page(results: list[dict], watermark: datetime) -> None:
            """Each search page is stored with its watermark, so a rate-limited run resumes there."""
            seen = {r["id"]: self.reader.modified(HUBSPOT, r) for r in results}
            fresh = set(seen) - self.links.already_planned(HUBSPOT, seen)
            with self.links.writing() as session:
                self.links.enqueue(session, HUBSPOT, fresh)
                session.get(SyncCursor, cursors[HUBSPOT].id).watermark = watermark

        hub_changes = hubspot_changes(
            self.hubspot,
            self.kind.hubspot_object,
            self.kind.hubspot_modified_property,
            cursors[HUBSPOT].watermark,
            started,
            on_page=hubspot_page,
        )
        qbo_ids, qbo_watermark = self._quickbooks_changed(cursors[QUICKBOOKS], started)
        hub_ids: set[str] = set()  # the search's finds are in the backlog already (hubspot_page)
        cache = self.reader.qbo_cache
        qbo_ids -= self.links.same_sync_token({i: row.get("SyncToken") for i, row in cache.items()})
        qbo_ids |= self._qbo_triggered  # an invoice whose payment changed: the invoice's own version did not
        events = self._pending_events()
        triggers: dict[str, set[str]] = {}
        announced: dict[str, dict[str, datetime | None]] = {HUBSPOT: {}, QUICKBOOKS: {}}
        forgotten: set[str] = set()  # HubSpot privacy deletions: our copies of the person go too
        for event in events:
            if event.object_type == self.kind.hubspot_object and is_privacy_deletion(event.event_type):
                forgotten.add(event.object_id)
            if event.object_type in self.kind.event_types and event.object_id:
                moments = announced[event.source]
                # A deletion, merge or association change leaves no newer version for the cursors to find:
                # such an event always counts (None), whatever its time.
                moment = aware(event.occurred_at) if event.occurred_at and _is_edit(event.event_type) else None
                if event.object_id in moments and (moment is None or moments[event.object_id] is None):
                    moments[event.object_id] = None  # an event without a time always counts
                else:
                    moments[event.object_id] = max(filter(None, (moment, moments.get(event.object_id))), default=None)
            elif event.object_id:
                triggers.setdefault(event.object_type, set()).add(event.object_id)
        for side, target in ((HUBSPOT, hub_ids), (QUICKBOOKS, qbo_ids)):
            # An event about a version we already planned (our own write's, say) is no work. An event's
            # time may trail the record's modified time by a few ms, which would re-plan it (and retry a
            # failed write before its backoff): within EVENT_SLACK it counts as planned. Nothing is lost:
            # the cursors, read every run, compare versions exactly.
            target |= set(announced[side]) - self.links.already_planned(side, announced[side], EVENT_SLACK)
        hub_ids |= self._triggered(triggers)
        # The object type's own sweep is the safety net for lost webhooks, and its overlap window finds
        # the same records run after run: a failed one waits for its backoff (a webhook still re-plans it).
        extra = self.kind.extra_changed_ids(self.context, cursors[HUBSPOT].watermark, started)
        hub_ids |= extra - self.links.resting_failures(HUBSPOT, extra)
        hub_ids |= self._archived_linked(cursors[HUBSPOT], started)
        for link in self.links.due():
            if link.hubspot_id:
                hub_ids.add(link.hubspot_id)
            if link.qbo_id:
                qbo_ids.add(link.qbo_id)
        with self.links.writing() as session:
            self.links.enqueue(session, HUBSPOT, hub_ids)
            self.links.enqueue(session, QUICKBOOKS, qbo_ids)
            for side, watermark in ((HUBSPOT, hub_changes.watermark), (QUICKBOOKS, qbo_watermark)):
                cursor = session.get(SyncCursor, cursors[side].id)
                cursor.watermark = parse_time(watermark)
                if side == HUBSPOT and self._archived_checked is not None:
                    cursor.position = {
                        **(cursor.position or {}),
                        "archived_checked_at": self._archived_checked.isoformat(),
                    }
            for event in events:
                stored = session.get(WebhookEvent, event.id)
                stored.status, stored.processed_at = "processed", utcnow()
            purge_person(session, self.tenant.installation_id, self.kind.name, forgotten)

    def _quickbooks_changed(self, cursor: SyncCursor, started: datetime) -> tuple[set[str], Any]:
        if cursor.watermark is None:
            return self._quickbooks_listing(cursor, started)
        entities = [self.kind.qbo_entity, *self.kind.quickbooks_triggers]
        changes = quickbooks_changes(self.qbo, entities, cursor.watermark, started)
        cache: dict[str, dict] = {}
        triggered: set[str] = set()  # our records that changed entities of other kinds name (an invoice's payment)
        for key, row in changes.records.items():
            entity, _, entity_id = key.partition(":")
            if entity == self.kind.qbo_entity:
                cache[entity_id] = row
            else:
                triggered |= self.kind.quickbooks_triggered(entity, row)
        self.reader.qbo_cache = cache
        self._qbo_triggered = triggered  # planned even when the record itself did not change (see _detect)
        prefix = f"{self.kind.qbo_entity}:"
        deleted = {key[len(prefix) :] for key in changes.deleted if key.startswith(prefix)}
        return set(cache) | deleted | triggered, changes.watermark

    def _quickbooks_listing(self, cursor: SyncCursor, started: datetime) -> tuple[set[str], datetime]:
        """First run: every entity, active or not, 1,000 a query; each page is stored with its
        position, so a run stopped by a rate limit goes on from there. Ordered by Id, so records
        created meanwhile come last; the watermark is when the listing began (CDC covers the rest)."""
        position = dict(cursor.position or {})
        began = parse_time(position.get("listing_began")) or started
        listed = int(position.get("listed", 0))
        cache = self.reader.qbo_cache = {}
        while True:
            rows = self.qbo.query(
                f"{self.reader.qbo_where()} orderby Id startposition {listed + 1} maxresults {QBO_LISTING_PAGE}"
            ).get(self.kind.qbo_entity, [])
            listed += len(rows)
            for row in rows:
                cache[row["Id"]] = row
            with self.links.writing() as session:
                self.links.enqueue(session, QUICKBOOKS, {row["Id"] for row in rows})
                stored = session.get(SyncCursor, cursor.id)
                stored.position = {"listed": listed, "listing_began": began.isoformat()}
            if len(rows) < QBO_LISTING_PAGE:
                break
        with self.runtime.database.session() as session:
            session.get(SyncCursor, cursor.id).position = {}
        return set(cache), began

    def _archived_linked(self, cursor: SyncCursor, started: datetime) -> set[str]:
        """Linked HubSpot records archived since: an archived record leaves the search API, so its
        deletion webhook is the only news of it. Once an hour (noted on the HubSpot cursor) the run
        lists the archived ones (HubSpot keeps them 90 days), so a lost webhook delays a delete by
        an hour at most instead of until the other side changes."""
        checked = parse_time((cursor.position or {}).get("archived_checked_at"))
        if checked is not None and started - checked < ARCHIVE_CHECK_EVERY:
            return set()
        archived = set(self.hubspot.archived_ids(self.kind.hubspot_object))
        found = self.links.linked_ids(HUBSPOT, archived, live=True)
        self._archived_checked = started  # noted with the backlog, in the same commit (see _detect)
        return found

    def _triggered(self, changed: dict[str, set[str]]) -> set[str]:
        """Our records whose plan depends on other records that changed (cross-object triggers)."""
        found: set[str] = set()
        for other_type, ids in changed.items():
            for targets in self.hubspot.associated_ids(other_type, self.kind.hubspot_object, sorted(ids)).values():
                found.update(targets)
        return found

    def _pending_events(self) -> list[WebhookEvent]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    select(WebhookEvent).where(
                        WebhookEvent.installation_id == self.tenant.installation_id,
                        WebhookEvent.status == "pending",
                        WebhookEvent.object_type.in_((*self.kind.event_types, *self.kind.hubspot_triggers)),
                    )
                )
            )

    # --- 3. a page: read, plan, write, remember ---------------------------------------------------------------

    def _work(self, page: list[tuple[int, str, str]]) -> None:
        """Plan and write one page of the backlog, then take it off the backlog (under the fence)."""
        hub_ids = {record_id for _, side, record_id in page if side == HUBSPOT}
        qbo_ids = {record_id for _, side, record_id in page if side == QUICKBOOKS}
        links = self.links.linked(hub_ids, qbo_ids)
        hub_ids |= {link.hubspot_id for link in links if link.hubspot_id}
        qbo_ids |= {link.qbo_id for link in links if link.qbo_id}
        hub_records = self.reader.read_hubspot(hub_ids, links)
        qbo_ids |= self.reader.merges(hub_records, links)
        qbo_records = self.reader.read_quickbooks(qbo_ids)
        self.reader.key_candidates(hub_records, qbo_records, links)
        result = plan(
            hub_records.values(),
            qbo_records.values(),
            [engine_link(link) for link in links],
            self.rules,
            self.links.is_linked,
        )
        result = self.kind.adjust_plan(self.context, result, links, hub_records, qbo_records)
        self.writer.carry_out(result, hub_records, qbo_records)
        with self.links.writing() as session:
            self.links.remember_versions(session, self.reader.versions, self.reader.tokens)
            self.summary.released |= self.links.release_waiting(session, self.writer.new_links)
            self.writer.new_links.clear()
            self.links.done_with(session, [row_id for row_id, _, _ in page])
        self.reader.page_done(qbo_ids)

    def _replan(self, action: Action) -> None:
        """After a 5010: never resend the stale plan; plan this pair again from fresh reads (once)."""
        if self._replanning:
            raise errors.Transient(QUICKBOOKS, "the record keeps changing while we write it; retrying later")
        link = self.links.get(action.link_id)
        hub = self.reader.read_hubspot({link.hubspot_id}, [link])
        self.reader.qbo_cache = {}
        qbo = self.reader.read_quickbooks({link.qbo_id})
        self._replanning = True
        try:
            fresh = plan(hub.values(), qbo.values(), [engine_link(link)], self.rules)
            for step in fresh.actions:
                self.writer.apply(step)
        finally:
            self._replanning = False


def _is_edit(event_type: str) -> bool:
    """A creation or property change: an event about a version the cursors also see."""
    kind = event_type.lower()
    return not any(word in kind for word in ("delet", "merge", "restore", "association", "privacy", "void"))
