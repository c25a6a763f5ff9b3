"""Alembic's environment: runs migrations on the engine that `sync.store.migrate` passes in."""

from alembic import context

from sync.store.models import Base, JSONDocument, UTCDateTime

engine = context.config.attributes["engine"]


def render_item(type_, obj, autogen_context):
    """Write our column types as plain SQLAlchemy ones, so migrations never import models.

    A migration is a frozen snapshot: if it imported `sync.store.models`, a later
    change to the models would silently change what an old migration does.
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and obj is JSONDocument:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )
    context.run_migrations()
