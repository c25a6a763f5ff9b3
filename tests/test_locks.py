"""The fenced run lock, on the real Redis and the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sync.locks import LockLost, RunLock
from sync.store.models import Installation, QboCompany, RecordLink


@pytest.fixture
def company(runtime):
    with runtime.database.session() as session:
        installation = Installation(hub_id=77)
        company = QboCompany(installation=installation, realm_id="r77")
        session.add_all([installation, company])
        session.flush()
        return installation.id, company.id


def test_one_run_at_a_time(runtime, company):
    first, second = RunLock(runtime, *company, "contacts"), RunLock(runtime, *company, "contacts")
    assert first.acquire() and not second.acquire()
    assert RunLock(runtime, *company, "products").acquire()  # other objects run independently
    first.release()
    assert second.acquire() and second.fence == first.fence + 1


def test_an_expired_run_cannot_write_after_a_takeover(runtime, company):
    stalled = RunLock(runtime, *company, "contacts")
    assert stalled.acquire()
    runtime.jobs.connection.delete(stalled.key)  # its lease ran out while it stalled (what the TTL does)
    assert not stalled.renew()
    fresh = RunLock(runtime, *company, "contacts")
    assert fresh.acquire()
    installation_id, company_id = company
    with pytest.raises(LockLost), runtime.database.session() as session:
        session.add(
            RecordLink(
                installation_id=installation_id,
                qbo_company_id=company_id,
                object_type="contacts",
                hubspot_id="1",
                origin="hubspot",
            )
        )
        stalled.guard(session)  # the stalled run tries to commit its results
    with runtime.database.session() as session:
        assert session.scalars(select(RecordLink)).all() == []  # rolled back
        fresh.guard(session)  # the holder writes fine
        session.add(
            RecordLink(
                installation_id=installation_id,
                qbo_company_id=company_id,
                object_type="contacts",
                hubspot_id="1",
                origin="hubspot",
            )
        )
    with runtime.database.session() as session:
        assert len(session.scalars(select(RecordLink)).all()) == 1


def test_renew_keeps_a_working_run(runtime, company):
    lock = RunLock(runtime, *company, "contacts", ttl_seconds=60)
    assert lock.acquire()
    redis = runtime.jobs.connection
    for _ in range(3):
        redis.pexpire(lock.key, 500)  # most of the lease has gone by
        assert lock.renew()
        assert redis.pttl(lock.key) > 50_000  # renewed to a whole lease again
    assert not RunLock(runtime, *company, "contacts").acquire()
    with RunLock(runtime, *company, "invoices") as other:
        assert other.fence == 1


def test_a_run_whose_worker_died_is_found_once_and_a_finished_one_never(runtime, company):
    from sync.locks import abandoned_runs

    _installation_id, company_id = company
    finished = RunLock(runtime, *company, "products")
    assert finished.acquire()
    finished.release()  # a clean end clears the holder
    dead = RunLock(runtime, *company, "contacts")
    assert dead.acquire()
    assert abandoned_runs(runtime) == []  # alive: its lease is in Redis
    runtime.jobs.connection.delete(dead.key)  # its worker died and the lease ran out
    assert abandoned_runs(runtime) == [(company_id, "contacts")]
    assert abandoned_runs(runtime) == []  # marked ended: found once
    fresh = RunLock(runtime, *company, "contacts")
    assert fresh.acquire() and fresh.fence == dead.fence + 1
