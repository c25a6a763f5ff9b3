"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('installations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hub_id', sa.BigInteger(), nullable=False),
    sa.Column('hub_domain', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('installed_by_user_id', sa.BigInteger(), nullable=True),
    sa.Column('installed_by_email', sa.String(length=320), nullable=True),
    sa.Column('installed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uninstalled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'uninstalled')", name=op.f('ck_installations_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_installations')),
    sa.UniqueConstraint('hub_id', name=op.f('uq_installations_hub_id'))
    )
    op.create_table('qbo_companies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('realm_id', sa.String(length=32), nullable=False),
    sa.Column('environment', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('company_name', sa.String(length=255), nullable=True),
    sa.Column('country', sa.String(length=8), nullable=True),
    sa.Column('home_currency', sa.String(length=3), nullable=True),
    sa.Column('multi_currency', sa.Boolean(), nullable=True),
    sa.Column('preflight', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disconnected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("environment IN ('production', 'sandbox')", name=op.f('ck_qbo_companies_environment')),
    sa.CheckConstraint("status IN ('connected', 'needs_reconnect', 'disconnected')", name=op.f('ck_qbo_companies_status')),
    sa.ForeignKeyConstraint(['installation_id'], ['installations.id'], name=op.f('fk_qbo_companies_installation_id_installations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qbo_companies')),
    sa.UniqueConstraint('installation_id', 'id', name=op.f('uq_qbo_companies_installation_id_id'))
    )
    with op.batch_alter_table('qbo_companies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qbo_companies_installation_id'), ['installation_id'], unique=False)
        batch_op.create_index('uq_qbo_companies_connected_realm', ['environment', 'realm_id'], unique=True, sqlite_where=sa.text("status != 'disconnected'"), postgresql_where=sa.text("status != 'disconnected'"))

    op.create_table('exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=True),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('requested_by', sa.String(length=320), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("file_format IN ('csv')", name=op.f('ck_exports_file_format')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_exports_status')),
    sa.CheckConstraint('progress BETWEEN 0 AND 100', name=op.f('ck_exports_progress')),
    sa.ForeignKeyConstraint(['installation_id', 'qbo_company_id'], ['qbo_companies.installation_id', 'qbo_companies.id'], name='fk_exports_company_scope', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exports'))
    )
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index('ix_exports_company', ['qbo_company_id', 'created_at'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=True),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('link', sa.String(length=512), nullable=True),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("level IN ('info', 'warning', 'error')", name=op.f('ck_notifications_level')),
    sa.ForeignKeyConstraint(['installation_id'], ['installations.id'], name=op.f('fk_notifications_installation_id_installations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['qbo_company_id'], ['qbo_companies.id'], name=op.f('fk_notifications_qbo_company_id_qbo_companies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('installation_id', 'dedupe_key', name=op.f('uq_notifications_installation_id_dedupe_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_unread', ['installation_id', 'read_at'], unique=False)

    op.create_table('oauth_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('access_token_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('refresh_token_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('access_token_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refresh_token_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(provider = 'hubspot' AND qbo_company_id IS NULL) OR (provider = 'quickbooks' AND qbo_company_id IS NOT NULL)", name=op.f('ck_oauth_tokens_owner')),
    sa.CheckConstraint("provider IN ('hubspot', 'quickbooks')", name=op.f('ck_oauth_tokens_provider')),
    sa.ForeignKeyConstraint(['installation_id'], ['installations.id'], name=op.f('fk_oauth_tokens_installation_id_installations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['qbo_company_id'], ['qbo_companies.id'], name=op.f('fk_oauth_tokens_qbo_company_id_qbo_companies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens'))
    )
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.create_index('uq_oauth_tokens_hubspot_installation', ['installation_id'], unique=True, sqlite_where=sa.text("provider = 'hubspot'"), postgresql_where=sa.text("provider = 'hubspot'"))
        batch_op.create_index('uq_oauth_tokens_qbo_company', ['qbo_company_id'], unique=True)

    op.create_table('record_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('hubspot_id', sa.String(length=64), nullable=True),
    sa.Column('qbo_id', sa.String(length=64), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('base_values', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('hubspot_modified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('qbo_modified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('qbo_sync_token', sa.String(length=32), nullable=True),
    sa.Column('pending_write', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('error_category', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('excluded_reason', sa.Text(), nullable=True),
    sa.Column('hubspot_deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('qbo_deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("object_type IN ('contacts', 'products', 'invoices')", name=op.f('ck_record_links_object_type')),
    sa.CheckConstraint("origin IN ('hubspot', 'quickbooks')", name=op.f('ck_record_links_origin')),
    sa.CheckConstraint("state IN ('syncing', 'pending', 'waiting', 'failed', 'excluded')", name=op.f('ck_record_links_state')),
    sa.CheckConstraint('hubspot_id IS NOT NULL OR qbo_id IS NOT NULL', name=op.f('ck_record_links_has_an_id')),
    sa.ForeignKeyConstraint(['installation_id', 'qbo_company_id'], ['qbo_companies.installation_id', 'qbo_companies.id'], name='fk_record_links_company_scope', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_links')),
    sa.UniqueConstraint('qbo_company_id', 'object_type', 'hubspot_id', name=op.f('uq_record_links_qbo_company_id_object_type_hubspot_id')),
    sa.UniqueConstraint('qbo_company_id', 'object_type', 'qbo_id', name=op.f('uq_record_links_qbo_company_id_object_type_qbo_id'))
    )
    with op.batch_alter_table('record_links', schema=None) as batch_op:
        batch_op.create_index('ix_record_links_next_attempt_at', ['next_attempt_at'], unique=False)
        batch_op.create_index('ix_record_links_state', ['qbo_company_id', 'object_type', 'state'], unique=False)

    op.create_table('sync_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('position', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("object_type IN ('contacts', 'products', 'invoices')", name=op.f('ck_sync_cursors_object_type')),
    sa.CheckConstraint("side IN ('hubspot', 'quickbooks')", name=op.f('ck_sync_cursors_side')),
    sa.ForeignKeyConstraint(['installation_id', 'qbo_company_id'], ['qbo_companies.installation_id', 'qbo_companies.id'], name='fk_sync_cursors_company_scope', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_cursors')),
    sa.UniqueConstraint('qbo_company_id', 'object_type', 'side', name=op.f('uq_sync_cursors_qbo_company_id_object_type_side'))
    )
    op.create_table('sync_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('conflict_winner', sa.String(length=16), nullable=False),
    sa.Column('delete_policy', sa.String(length=16), nullable=False),
    sa.Column('field_mappings', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('set_up_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("conflict_winner IN ('hubspot', 'quickbooks')", name=op.f('ck_sync_settings_conflict_winner')),
    sa.CheckConstraint("delete_policy IN ('keep', 'propagate')", name=op.f('ck_sync_settings_delete_policy')),
    sa.CheckConstraint("direction IN ('hubspot_to_qbo', 'qbo_to_hubspot', 'two_way')", name=op.f('ck_sync_settings_direction')),
    sa.CheckConstraint("object_type IN ('contacts', 'products', 'invoices')", name=op.f('ck_sync_settings_object_type')),
    sa.CheckConstraint("status IN ('active', 'paused', 'off')", name=op.f('ck_sync_settings_status')),
    sa.ForeignKeyConstraint(['installation_id', 'qbo_company_id'], ['qbo_companies.installation_id', 'qbo_companies.id'], name='fk_sync_settings_company_scope', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_settings')),
    sa.UniqueConstraint('qbo_company_id', 'object_type', name=op.f('uq_sync_settings_qbo_company_id_object_type'))
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=True),
    sa.Column('qbo_company_id', sa.Integer(), nullable=True),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dedupe_key', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("source IN ('hubspot', 'quickbooks')", name=op.f('ck_webhook_events_source')),
    sa.CheckConstraint("status IN ('pending', 'processed', 'ignored', 'failed')", name=op.f('ck_webhook_events_status')),
    sa.ForeignKeyConstraint(['installation_id'], ['installations.id'], name=op.f('fk_webhook_events_installation_id_installations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['qbo_company_id'], ['qbo_companies.id'], name=op.f('fk_webhook_events_qbo_company_id_qbo_companies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('source', 'dedupe_key', name=op.f('uq_webhook_events_source_dedupe_key'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_status', ['status', 'received_at'], unique=False)

    op.create_table('sync_activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('installation_id', sa.Integer(), nullable=False),
    sa.Column('qbo_company_id', sa.Integer(), nullable=False),
    sa.Column('record_link_id', sa.Integer(), nullable=True),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('hubspot_id', sa.String(length=64), nullable=True),
    sa.Column('qbo_id', sa.String(length=64), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('error_category', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("object_type IN ('contacts', 'products', 'invoices')", name=op.f('ck_sync_activity_object_type')),
    sa.ForeignKeyConstraint(['installation_id', 'qbo_company_id'], ['qbo_companies.installation_id', 'qbo_companies.id'], name='fk_sync_activity_company_scope', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['record_link_id'], ['record_links.id'], name=op.f('fk_sync_activity_record_link_id_record_links'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_activity'))
    )
    with op.batch_alter_table('sync_activity', schema=None) as batch_op:
        batch_op.create_index('ix_sync_activity_recent', ['qbo_company_id', 'object_type', 'created_at'], unique=False)
        batch_op.create_index('ix_sync_activity_record', ['record_link_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sync_activity', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_activity_record')
        batch_op.drop_index('ix_sync_activity_recent')

    op.drop_table('sync_activity')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_status')

    op.drop_table('webhook_events')
    op.drop_table('sync_settings')
    op.drop_table('sync_cursors')
    with op.batch_alter_table('record_links', schema=None) as batch_op:
        batch_op.drop_index('ix_record_links_state')
        batch_op.drop_index('ix_record_links_next_attempt_at')

    op.drop_table('record_links')
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index('uq_oauth_tokens_qbo_company')
        batch_op.drop_index('uq_oauth_tokens_hubspot_installation', sqlite_where=sa.text("provider = 'hubspot'"), postgresql_where=sa.text("provider = 'hubspot'"))

    op.drop_table('oauth_tokens')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_unread')

    op.drop_table('notifications')
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index('ix_exports_company')

    op.drop_table('exports')
    with op.batch_alter_table('qbo_companies', schema=None) as batch_op:
        batch_op.drop_index('uq_qbo_companies_connected_realm', sqlite_where=sa.text("status != 'disconnected'"), postgresql_where=sa.text("status != 'disconnected'"))
        batch_op.drop_index(batch_op.f('ix_qbo_companies_installation_id'))

    op.drop_table('qbo_companies')
    op.drop_table('installations')
