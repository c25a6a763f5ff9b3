"""The database connection: an engine and a session factory, built from settings.

Web requests get one session each (see `blueprints`); jobs open one with
`Database.session()`. Nothing connects until first use.
"""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 60_000


def make_engine(database_url: str, **engine_options) -> Engine:
    """An engine with the per-dialect settings Ledgersync relies on."""
    engine_options.setdefault("json_serializer", _json_text)
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        if engine.url.database and engine.url.database != ":memory:":
            event.listen(engine, "connect", _private_files(Path(engine.url.database)))
        return engine
    engine_options.setdefault("pool_pre_ping", True)
    # A server that accepts connections but never answers must not hang a request or a job forever:
    # connecting gives up after CONNECT_TIMEOUT_SECONDS, and any statement after STATEMENT_TIMEOUT_MS.
    connect_args = engine_options.setdefault("connect_args", {})
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    connect_args.setdefault("options", f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
    return create_engine(database_url, **engine_options)


def _json_text(value: Any) -> str:
    """JSON columns as text. Money in a stored body (a pending QBO write) is Decimal in our code: it is
    kept as a JSON number, which is what QBO is sent (at most 15 significant digits: exact as a float)."""
    return json.dumps(value, default=_decimal_number)


def _decimal_number(value: Any) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _configure_sqlite_connection(dbapi_connection, _connection_record) -> None:
    # SQLite enforces foreign keys only when asked, per connection. WAL lets the
    # web process read while a worker writes; busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _private_files(path: Path):
    """The database file and its WAL and shared-memory files hold tenants' data: readable by the app's
    user only (0600), like the keys beside them, whatever the umask made of them."""

    def restrict(_dbapi_connection, _connection_record) -> None:
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                if stat.S_IMODE(file.stat().st_mode) != 0o600:
                    file.chmod(0o600)

    return restrict


class Database:
    """An engine and its session factory."""

    def __init__(self, database_url: str, **engine_options) -> None:
        self.url = database_url
        self.engine = make_engine(database_url, **engine_options)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
