"""The database connection: an engine and a session factory, built from settings.

Web requests get one session each (see `blueprints`); jobs open one with
`Database.session()`. Nothing connects until first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, **engine_options) -> Engine:
    """An engine with the per-dialect settings Ledgersync relies on."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    engine_options.setdefault("pool_pre_ping", True)
    return create_engine(database_url, **engine_options)


def _configure_sqlite_connection(dbapi_connection, _connection_record) -> None:
    # SQLite enforces foreign keys only when asked, per connection. WAL lets the
    # web process read while a worker writes; busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


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
