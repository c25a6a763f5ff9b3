"""object types from the registry; line pairs on links

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("record_links", "sync_cursors", "sync_settings", "sync_activity", "sync_locks", "sync_backlog")
OLD_TYPES = "object_type IN ('contacts', 'products', 'invoices')"


def upgrade() -> None:
    # The object types are the registry's (sync.objects), checked where a sync is set up: a new type
    # is one module and one registration, not a schema change too.
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_object_type"), type_="check")
    # A compound record's lines: {hubspot line id: qbo line id} for each line synced on both sides.
    json_type = sa.JSON(none_as_null=True).with_variant(
        sa.dialects.postgresql.JSONB(none_as_null=True), "postgresql"
    )
    with op.batch_alter_table("record_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("line_pairs", json_type, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record_links", schema=None) as batch_op:
        batch_op.drop_column("line_pairs")
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(op.f(f"ck_{table}_object_type"), OLD_TYPES)
