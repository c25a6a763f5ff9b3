"""created by sync

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The side on which our sync created the record (a customer we created may be renamed; one born
    # in QBO never is). Links made before this column are left unknown (never renamed).
    with op.batch_alter_table("record_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_side", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record_links", schema=None) as batch_op:
        batch_op.drop_column("created_side")
