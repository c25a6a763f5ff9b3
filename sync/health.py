"""Health checks of the services Ledgersync depends on, for `/healthz` and the CLI."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from rq import Worker
from sqlalchemy import text

from sync.runtime import Runtime
from sync.store import migrate

log = logging.getLogger(__name__)


CHECK_TIMEOUT_SECONDS = 3.0
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


class NotMigrated(RuntimeError):
    """The schema is not at the code's revision: safe to say to anyone, with what to do."""


def _timed(name: str, check) -> dict[str, Any]:
    """Run one check, giving up after CHECK_TIMEOUT_SECONDS: a dependency that hangs is reported as
    down within seconds (the check's own thread ends when the driver's timeouts fire). The answer says
    what is wrong in words anyone may read; the error itself, which can name hosts, ports and
    databases, goes to the log only."""
    started = time.perf_counter()
    try:
        result = {"ok": True, **_checks.submit(check).result(timeout=CHECK_TIMEOUT_SECONDS)}
    except FutureTimeout:
        log.error("health check timed out", extra={"dependency": name, "timeout_s": CHECK_TIMEOUT_SECONDS})
        result = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"}
    except NotMigrated as error:
        result = {"ok": False, "error": str(error)}
    except Exception as error:  # any failure of a dependency is a health result, not a crash
        log.error("health check failed", extra={"dependency": name, "error": f"{type(error).__name__}: {error}"})
        result = {"ok": False, "error": "unreachable"}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def database_health(runtime: Runtime) -> dict[str, Any]:
    """Reachable, and migrated to the code's head revision (else writes would fail)."""

    def check() -> dict[str, Any]:
        with runtime.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = migrate.current_revision(runtime.database.engine), migrate.head_revision()
        if current != head:
            raise NotMigrated(f"schema at revision {current}, code expects {head}: run `flask db upgrade`")
        return {"dialect": runtime.database.engine.dialect.name, "revision": current}

    return _timed("database", check)


def redis_health(runtime: Runtime) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        runtime.jobs.ping()
        workers = Worker.count(connection=runtime.jobs.connection)
        return {"mode": runtime.jobs.mode, "workers": workers}

    return _timed("redis", check)


def overall_health(runtime: Runtime) -> dict[str, Any]:
    checks = {"database": database_health(runtime), "redis": redis_health(runtime)}
    healthy = all(check["ok"] for check in checks.values())
    return {"status": "ok" if healthy else "unavailable", **checks}
