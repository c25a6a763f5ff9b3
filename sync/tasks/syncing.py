"""Sync jobs: thin — ids in; the runner does the work.

`run_sync` runs one object of one company — one page of its backlog — and, while
work remains, queues its continuation at the back of the queue, so one installation's
100k-record first sync takes turns with everyone else's changes. It is enqueued with
a job id per company and object, so a burst of webhooks becomes one queued run. A run that
meets a rate limit is re-enqueued for when capacity returns (never sleeps). The
clock's `sweep` enqueues a run of every active sync every few minutes — the
guarantee that a change syncs even when every webhook is lost — and re-enqueues
webhook events that were stored but not processed (a killed worker, a Redis restart).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from sync.clients import errors
from sync.objects import REGISTERED, objects_for_event
from sync.runner import run_object
from sync.runtime import Runtime, current_runtime
from sync.store.models import QboCompany, SyncSettings, WebhookEvent, utcnow

log = logging.getLogger(__name__)


def run_job_id(company_id: int, object_type: str) -> str:
    return f"sync-{company_id}-{object_type}"


def enqueue_run(runtime: Runtime, company_id: int, object_type: str, delay: float = 0):
    """Queue one run of this company's object (a run already queued is not queued twice; a run in
    progress is not overwritten: the next one waits under the other id)."""
    base = run_job_id(company_id, object_type) + ("-later" if delay > 0 else "")
    return runtime.enqueue_once(run_sync, company_id, object_type, job_ids=(base, f"{base}-again"), delay=delay)


def run_sync(company_id: int, object_type: str) -> dict:
    runtime = current_runtime()
    try:
        # Embedded mode has no queue to take turns on: it runs every page now.
        pages = None if runtime.jobs.mode == "embedded" else 1
        summary = run_object(runtime, company_id, object_type, pages=pages)
    except errors.RateLimited as limited:
        log.info(
            "run rescheduled: rate limited",
            extra={
                "company_id": company_id,
                "object_type": object_type,
                "reason": str(limited),
                "retry_after": limited.retry_after,
            },
        )
        enqueue_run(runtime, company_id, object_type, delay=limited.retry_after)
        return {"rescheduled_in": limited.retry_after}
    except errors.NeedsReconnect as error:
        return {"stopped": str(error)}
    if summary.more_to_do:  # at the back of the queue: other installations' runs go in between
        continue_run(runtime, company_id, object_type)
    elif summary.follow_up:  # a change arrived while this run worked
        enqueue_run(runtime, company_id, object_type)
    if summary.retry_in is not None:  # busy: once more when the holder's lease ends, in case it died
        enqueue_run(runtime, company_id, object_type, delay=summary.retry_in)
    for released in summary.released - {object_type}:  # records a new link freed (their own backlog)
        if released in REGISTERED:
            enqueue_run(runtime, company_id, released)
    return {"counts": summary.counts, "skipped": summary.skipped_run, "more_to_do": summary.more_to_do}


def continue_run(runtime: Runtime, company_id: int, object_type: str):
    """Queue the next page of a run, under whichever of two ids is free: a job cannot reuse the id it
    runs under (see `JobQueue.enqueue_once`)."""
    base = run_job_id(company_id, object_type)
    return runtime.enqueue_once(run_sync, company_id, object_type, job_ids=(f"{base}-next", f"{base}-after"))


def enqueue_for_events(runtime: Runtime, installation_id: int) -> int:
    """After webhooks are stored: queue a run for each object they touch. Events no set-up sync can
    use (line items, vendors, an object whose sync is off) are marked `ignored` with the reason, so
    they are not looked at again: a sync set up later reads its history from its cursors instead."""
    with runtime.database.session() as session:
        pending = session.execute(
            select(WebhookEvent.id, WebhookEvent.object_type, WebhookEvent.qbo_company_id).where(
                WebhookEvent.installation_id == installation_id, WebhookEvent.status == "pending"
            )
        ).all()
        active = set(
            session.execute(
                select(SyncSettings.qbo_company_id, SyncSettings.object_type)
                .join(QboCompany, QboCompany.id == SyncSettings.qbo_company_id)
                .where(
                    QboCompany.installation_id == installation_id,
                    QboCompany.status == "connected",
                    SyncSettings.status == "active",
                )
            ).all()
        )
        companies = {company for company, _object in active}
        queued, unused = set(), []
        for event_id, object_type, company_id in pending:
            runs = {
                (company, target)
                for target in objects_for_event(object_type)
                for company in ([company_id] if company_id else companies)
                if target in REGISTERED and (company, target) in active
            }
            if not runs:
                unused.append((event_id, object_type))
            queued |= runs
        by_type: dict[str | None, list[int]] = {}
        for event_id, object_type in unused:
            by_type.setdefault(object_type, []).append(event_id)
        for object_type, event_ids in by_type.items():  # one statement per kind, not per event
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(event_ids), WebhookEvent.status == "pending")
                .values(status="ignored", error=f"no sync set up uses {object_type or 'these'} events")
            )
        session.commit()
    for company, target in sorted(queued):
        enqueue_run(runtime, company, target)
    return len(queued)


def sweep() -> int:
    """Every active sync runs (the webhook-less guarantee); stale stored events get their run too."""
    runtime = current_runtime()
    with runtime.database.session() as session:
        active = session.execute(
            select(SyncSettings.qbo_company_id, SyncSettings.object_type)
            .join(QboCompany, QboCompany.id == SyncSettings.qbo_company_id)
            .where(SyncSettings.status == "active", QboCompany.status == "connected")
        ).all()
        stale = session.scalars(
            select(WebhookEvent.installation_id)
            .where(WebhookEvent.status == "pending", WebhookEvent.received_at < utcnow() - timedelta(minutes=2))
            .distinct()
        )
        stale_installations = [i for i in stale if i is not None]
    for company_id, object_type in active:
        if object_type in REGISTERED:
            enqueue_run(runtime, company_id, object_type)
    for installation_id in stale_installations:
        enqueue_for_events(runtime, installation_id)
    return len(active)


def recover_abandoned_runs() -> int:
    """A worker killed mid-run (SIGKILL, a lost machine) leaves its run half done and nothing queued:
    its lease runs out in Redis while the database still names it. Queue those runs again, so the
    work resumes within about a minute instead of at the next sweep."""
    from sync.locks import abandoned_runs

    runtime = current_runtime()
    found = abandoned_runs(runtime)
    for company_id, object_type in found:
        log.warning("resuming a run whose worker died", extra={"company_id": company_id, "object_type": object_type})
        if object_type in REGISTERED:
            enqueue_run(runtime, company_id, object_type)
    return len(found)
