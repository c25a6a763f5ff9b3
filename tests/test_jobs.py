"""Jobs run by real RQ workers on the real Redis."""

import os
from datetime import timedelta

from rq import SimpleWorker
from sqlalchemy import select

from sync.job_queue import QUEUE_NAMES, JobQueue
from sync.runtime import Runtime, use_runtime
from sync.store import migrate
from sync.store.models import Installation, Notification, QboCompany, SyncActivity, WebhookEvent, utcnow
from sync.tasks.maintenance import ping, prune_history


def run_worker(runtime: Runtime) -> None:
    """Drain every queue with a real worker in this process (burst mode)."""
    queues = [runtime.jobs.queue(name) for name in QUEUE_NAMES]
    with use_runtime(runtime):
        SimpleWorker(queues, connection=runtime.jobs.connection).work(burst=True)


def test_a_worker_runs_a_job_and_reaches_the_database(runtime):
    job = runtime.enqueue(ping, "hello", queue="high")
    assert job.get_status() == "queued"
    run_worker(runtime)
    assert job.get_status(refresh=True) == "finished"
    result = job.return_value()
    assert result["note"] == "hello"
    assert result["pid"] == os.getpid()


def test_job_ids_make_enqueueing_idempotent_while_waiting(runtime):
    first = runtime.enqueue(ping, "a", job_id="sweep-contacts-1")
    again = runtime.enqueue(ping, "b", job_id="sweep-contacts-1")
    assert again.id == first.id
    assert len(runtime.jobs.queue("default")) == 1
    run_worker(runtime)
    assert first.return_value()["note"] == "a"
    after = runtime.enqueue(ping, "c", job_id="sweep-contacts-1")  # finished: enqueue anew
    assert after.get_status() == "queued"


def test_unknown_queue_is_refused(runtime):
    try:
        runtime.enqueue(ping, queue="urgent")
    except ValueError as error:
        assert "urgent" in str(error)
    else:
        raise AssertionError("enqueue on an unknown queue succeeded")


def test_embedded_mode_runs_jobs_in_process(make_settings, tmp_path):
    settings = make_settings(redis_url=None)
    runtime = Runtime(settings)
    migrate.upgrade(runtime.database.engine)
    try:
        assert runtime.jobs.mode == "embedded"
        job = runtime.enqueue(ping, "inline")
        assert job.get_status() == "finished"
        assert job.return_value()["note"] == "inline"
        assert (settings.instance_path / "redis").is_dir()
    finally:
        runtime.jobs.connection.shutdown(nosave=True)
        runtime.close()


def test_prune_history_keeps_what_is_recent_or_failed(runtime):
    old = utcnow() - timedelta(days=200)
    with runtime.database.session() as session:
        installation = Installation(hub_id=7)
        company = QboCompany(installation=installation, realm_id="r7")
        session.add_all([installation, company])
        session.flush()
        ids = dict(installation_id=installation.id, qbo_company_id=company.id)
        session.add_all(
            [
                WebhookEvent(
                    source="hubspot",
                    account_id="7",
                    event_type="e",
                    dedupe_key="old-done",
                    payload={},
                    status="processed",
                    received_at=old,
                ),
                WebhookEvent(
                    source="hubspot",
                    account_id="7",
                    event_type="e",
                    dedupe_key="old-failed",
                    payload={},
                    status="failed",
                    received_at=old,
                ),
                WebhookEvent(
                    source="hubspot",
                    account_id="7",
                    event_type="e",
                    dedupe_key="new-done",
                    payload={},
                    status="processed",
                ),
                SyncActivity(object_type="contacts", action="created", created_at=old, **ids),
                SyncActivity(object_type="contacts", action="updated", **ids),
                Notification(installation_id=installation.id, kind="k", title="old read", read_at=old),
                Notification(installation_id=installation.id, kind="k", title="old unread", created_at=old),
            ]
        )
    runtime.enqueue(prune_history, queue="low")
    run_worker(runtime)
    with runtime.database.session() as session:
        assert sorted(session.scalars(select(WebhookEvent.dedupe_key))) == ["new-done", "old-failed"]
        assert list(session.scalars(select(SyncActivity.action))) == ["updated"]
        assert list(session.scalars(select(Notification.title))) == ["old unread"]


def test_queue_connection_is_lazy(tmp_path):
    queue = JobQueue("redis://127.0.0.1:1/0", tmp_path)  # nothing listens there
    assert queue.mode == "redis"
    assert "connection" not in vars(queue)
