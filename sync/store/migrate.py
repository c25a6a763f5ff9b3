"""Schema migrations with Alembic, driven from code (no alembic.ini to keep in step).

`flask db upgrade` calls `upgrade()`; the Procfile's release step runs it before
new code serves traffic. Migrations live in `sync/store/migrations/versions`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def new_revision(engine: Engine, message: str, autogenerate: bool = True) -> None:
    """Write a new migration script (for developers changing the models)."""
    command.revision(alembic_config(engine), message=message, autogenerate=autogenerate)


@cache  # the scripts on disk do not change while a process runs
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
