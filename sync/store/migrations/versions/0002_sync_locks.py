"""sync locks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('sync_locks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('fence', sa.BigInteger(), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=True),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("object_type IN ('contacts', 'products', 'invoices')", name=op.f('ck_sync_locks_object_type')),
    sa.ForeignKeyConstraint(['installation_id', 'qbo_company_id'], ['qbo_companies.installation_id', 'qbo_companies.id'], name='fk_sync_locks_company_scope', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_locks')),
    sa.UniqueConstraint('qbo_company_id', 'object_type', name=op.f('uq_sync_locks_qbo_company_id_object_type'))
    )



def downgrade() -> None:

    op.drop_table('sync_locks')

