"""Single flight per company and object: a Redis lock, renewed while the run works, and fenced.

A Redis lock with a TTL keeps two runs from starting together, and survives a
killed worker (it expires). But a run that stalls past the TTL may wake up after
another run took over; the fence stops it from writing: acquiring bumps a
counter in the database, and every commit of a run first checks, in the same
transaction, that the counter is still the one it got (`guard`). The loser's
transaction rolls back.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.runtime import Runtime
from sync.store.models import SyncLock, utcnow

# Extend only a lock we still hold (its value is our token).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


log = logging.getLogger(__name__)
RUN_REQUEST_TTL_SECONDS = 3600


def lock_key(company_id: int, object_type: str) -> str:
    return f"ledgersync:run:{company_id}:{object_type}"


class LockLost(Exception):
    """Another run holds the lock now: this run must stop without writing."""


class RunLock:
    def __init__(
        self, runtime: Runtime, installation_id: int, company_id: int, object_type: str, ttl_seconds: float = 60
    ) -> None:
        self.runtime, self.object_type = runtime, object_type
        self.installation_id, self.company_id = installation_id, company_id
        self.ttl_ms = int(ttl_seconds * 1000)
        self.key = lock_key(company_id, object_type)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.fence: int | None = None

    @property
    def redis(self):
        return self.runtime.jobs.connection

    def acquire(self) -> bool:
        if not self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        with self.runtime.database.session() as session:
            row = session.scalar(
                select(SyncLock).where(
                    SyncLock.qbo_company_id == self.company_id, SyncLock.object_type == self.object_type
                )
            )
            if row is None:
                row = SyncLock(
                    installation_id=self.installation_id,
                    qbo_company_id=self.company_id,
                    object_type=self.object_type,
                    fence=0,
                )
                session.add(row)
                session.flush()
            session.execute(
                update(SyncLock)
                .where(SyncLock.id == row.id)
                .values(fence=SyncLock.fence + 1, holder=self.token, acquired_at=utcnow(), heartbeat_at=utcnow())
            )
            self.fence = session.scalar(select(SyncLock.fence).where(SyncLock.id == row.id))
        return True

    def renew(self) -> bool:
        """Keep the lock while working; False means it expired and someone may have taken it."""
        return bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def guard(self, session: Session) -> None:
        """Call inside the transaction that writes a run's results: raises LockLost if the fence moved."""
        changed = session.execute(
            update(SyncLock)
            .where(
                SyncLock.qbo_company_id == self.company_id,
                SyncLock.object_type == self.object_type,
                SyncLock.fence == self.fence,
            )
            .values(heartbeat_at=utcnow())
        ).rowcount
        if changed != 1:
            raise LockLost(f"the {self.object_type} run of company {self.company_id} was taken over")

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, self.key, self.token)
        try:  # a clean end: the watchdog must not take this run for a dead one
            with self.runtime.database.session() as session:
                session.execute(
                    update(SyncLock)
                    .where(
                        SyncLock.qbo_company_id == self.company_id,
                        SyncLock.object_type == self.object_type,
                        SyncLock.fence == self.fence,
                    )
                    .values(holder=None)
                )
        except Exception:  # noqa: BLE001 - the lock is released in Redis; at worst the watchdog re-queues once
            log.warning("could not mark the run finished", exc_info=True)

    # --- runs asked for while this one held the lock ------------------------------------------
    #
    # A run that finds the lock held leaves a mark and tries once more; the holder, after releasing,
    # takes the mark and has a follow-up queued. Whichever way the two interleave, a change that
    # arrived during a run is picked up by a run that starts after it: the mark is set before the
    # second try, and the holder looks for it only after releasing.

    @property
    def _mark(self) -> str:
        return f"ledgersync:run-requested:{self.company_id}:{self.object_type}"

    def request_run(self) -> None:
        self.redis.set(self._mark, self.token, ex=RUN_REQUEST_TTL_SECONDS)

    def take_run_request(self) -> bool:
        """True once per mark: a run was asked for while the lock was held."""
        return self.redis.getdel(self._mark) is not None

    def lease_remaining(self) -> float:
        """Seconds until the current holder's lease ends (0 when nobody holds it)."""
        remaining_ms = self.redis.pttl(self.key)  # -2: no such key, -1: no expiry (never ours)
        return remaining_ms / 1000 if remaining_ms > 0 else 0.0

    def __enter__(self) -> RunLock:
        if not self.acquire():
            raise LockLost(f"another {self.object_type} run of company {self.company_id} is in progress")
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def abandoned_runs(runtime: Runtime) -> list[tuple[int, str]]:
    """Runs whose worker died: a holder is recorded in the database but its lease has ended in Redis
    (a live run renews it while it works, and a finished one clears the holder). Each is marked
    ended, fenced on the row as read, so a run that started meanwhile is left alone."""
    found = []
    with runtime.database.session() as session:
        for row in session.scalars(select(SyncLock).where(SyncLock.holder.is_not(None))):
            if runtime.jobs.connection.exists(lock_key(row.qbo_company_id, row.object_type)):
                continue
            ended = session.execute(
                update(SyncLock)
                .where(SyncLock.id == row.id, SyncLock.fence == row.fence, SyncLock.holder == row.holder)
                .values(holder=None)
            ).rowcount
            if ended:
                found.append((row.qbo_company_id, row.object_type))
    return found
