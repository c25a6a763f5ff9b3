"""Health checks of the services Ledgersync depends on, for `/healthz` and the CLI."""

from __future__ import annotations

import time
from typing import Any

from rq import Worker
from sqlalchemy import text

from sync.runtime import Runtime
from sync.store import migrate


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except Exception as error:  # any failure of a dependency is a health result, not a crash
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def database_health(runtime: Runtime) -> dict[str, Any]:
    """Reachable, and migrated to the code's head revision (else writes would fail)."""

    def check() -> dict[str, Any]:
        with runtime.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = migrate.current_revision(runtime.database.engine), migrate.head_revision()
        if current != head:
            raise RuntimeError(f"schema at revision {current}, code expects {head}: run `flask db upgrade`")
        return {"dialect": runtime.database.engine.dialect.name, "revision": current}

    return _timed(check)


def redis_health(runtime: Runtime) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        runtime.jobs.ping()
        workers = Worker.count(connection=runtime.jobs.connection)
        return {"mode": runtime.jobs.mode, "workers": workers}

    return _timed(check)


def overall_health(runtime: Runtime) -> dict[str, Any]:
    checks = {"database": database_health(runtime), "redis": redis_health(runtime)}
    healthy = all(check["ok"] for check in checks.values())
    return {"status": "ok" if healthy else "unavailable", **checks}
