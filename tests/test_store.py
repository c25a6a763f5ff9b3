"""The state store, on SQLite and on PostgreSQL: migrations, tenancy keys, constraints."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from sync.crypto import TokenCipher
from sync.store import migrate
from sync.store.database import Database
from sync.store.models import (
    Base,
    Installation,
    Notification,
    OAuthToken,
    QboCompany,
    RecordLink,
    SyncActivity,
    SyncCursor,
    SyncSettings,
    WebhookEvent,
)

TABLES = {
    "installations",
    "qbo_companies",
    "oauth_tokens",
    "sync_settings",
    "record_links",
    "sync_activity",
    "sync_cursors",
    "webhook_events",
    "exports",
    "notifications",
    "sync_locks",
}


def add_tenant(session, hub_id: int, realm_id: str) -> tuple[Installation, QboCompany]:
    installation = Installation(hub_id=hub_id)
    company = QboCompany(installation=installation, realm_id=realm_id, company_name=f"Co {realm_id}")
    session.add_all([installation, company])
    session.flush()
    return installation, company


def test_migrations_create_every_table_and_go_back_down(database_url):
    from sync.config import normalize_database_url

    database = Database(normalize_database_url(database_url))
    try:
        assert migrate.current_revision(database.engine) is None
        migrate.upgrade(database.engine)
        assert migrate.is_up_to_date(database.engine)
        assert set(inspect(database.engine).get_table_names()) >= TABLES
        migrate.downgrade(database.engine, "base")
        assert not TABLES & set(inspect(database.engine).get_table_names())
        migrate.upgrade(database.engine)
        assert migrate.is_up_to_date(database.engine)
    finally:
        database.dispose()


def test_models_and_migrations_agree(migrated_database):
    with migrated_database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_company_must_belong_to_the_installation_of_the_row(migrated_database):
    with migrated_database.session() as session:
        first, first_company = add_tenant(session, 1001, "r1")
        second, _ = add_tenant(session, 1002, "r2")
        ids = (first.id, second.id, first_company.id)
    with pytest.raises(IntegrityError), migrated_database.session() as session:
        # portal 1002 pointing at portal 1001's company
        session.add(
            RecordLink(
                installation_id=ids[1], qbo_company_id=ids[2], object_type="contacts", hubspot_id="1", origin="hubspot"
            )
        )
        session.flush()
    with migrated_database.session() as session:
        session.add(
            RecordLink(
                installation_id=ids[0], qbo_company_id=ids[2], object_type="contacts", hubspot_id="1", origin="hubspot"
            )
        )


def test_same_remote_ids_in_two_companies_never_collide(migrated_database):
    with migrated_database.session() as session:
        for hub_id, realm in ((1, "ra"), (2, "rb")):
            installation, company = add_tenant(session, hub_id, realm)
            session.add(
                RecordLink(
                    installation_id=installation.id,
                    qbo_company_id=company.id,
                    object_type="contacts",
                    hubspot_id="51",
                    qbo_id="7",
                    origin="hubspot",
                )
            )
    with migrated_database.session() as session:
        assert len(session.scalars(select(RecordLink).where(RecordLink.hubspot_id == "51")).all()) == 2
        installation = session.scalar(select(Installation).where(Installation.hub_id == 1))
        ids = dict(installation_id=installation.id, qbo_company_id=installation.qbo_companies[0].id)
    with pytest.raises(IntegrityError), migrated_database.session() as session:
        # QBO id 7 is already linked in this company
        session.add(RecordLink(object_type="contacts", hubspot_id="99", qbo_id="7", origin="quickbooks", **ids))


def test_a_realm_connects_to_one_installation_at_a_time(migrated_database):
    with migrated_database.session() as session:
        _, company = add_tenant(session, 11, "shared-realm")
        company_id = company.id
    with pytest.raises(IntegrityError), migrated_database.session() as session:
        add_tenant(session, 12, "shared-realm")
    with migrated_database.session() as session:
        session.get(QboCompany, company_id).status = "disconnected"
    with migrated_database.session() as session:
        add_tenant(session, 12, "shared-realm")  # allowed once the first is disconnected


def test_token_ownership_rules(migrated_database):
    cipher = TokenCipher("u2iDkwJ8bxFL0Ky5C8sS1v7s9-pa4yq0ftb8M8Xg0Ss=")
    expires = datetime.now(UTC) + timedelta(minutes=30)
    with migrated_database.session() as session:
        installation, company = add_tenant(session, 21, "r21")
        session.add(
            OAuthToken(
                installation_id=installation.id,
                provider="hubspot",
                access_token_encrypted=cipher.encrypt("hs-access"),
                refresh_token_encrypted=cipher.encrypt("hs-refresh"),
                access_token_expires_at=expires,
            )
        )
        session.add(
            OAuthToken(
                installation_id=installation.id,
                qbo_company_id=company.id,
                provider="quickbooks",
                access_token_encrypted=cipher.encrypt("qb-access"),
                access_token_expires_at=expires,
            )
        )
        ids = installation.id, company.id
    with migrated_database.session() as session:
        stored = session.scalar(select(OAuthToken).where(OAuthToken.provider == "hubspot"))
        assert cipher.decrypt(stored.access_token_encrypted) == "hs-access"
        assert stored.access_token_expires_at == expires
    bad_rows = [
        dict(installation_id=ids[0], provider="hubspot"),  # a second HubSpot token
        dict(installation_id=ids[0], provider="hubspot", qbo_company_id=ids[1]),
        dict(installation_id=ids[0], provider="quickbooks"),  # a QBO token needs its company
        dict(installation_id=ids[0], provider="salesforce"),
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError), migrated_database.session() as session:
            session.add(OAuthToken(access_token_encrypted=b"x", access_token_expires_at=expires, **row))
            session.flush()


def test_check_constraints_refuse_unknown_values(migrated_database):
    with migrated_database.session() as session:
        installation, company = add_tenant(session, 31, "r31")
        ids = dict(installation_id=installation.id, qbo_company_id=company.id)
    for row in (
        SyncSettings(object_type="contacts", direction="sideways", **ids),
        RecordLink(object_type="contacts", origin="hubspot", **ids),  # no id on either side
        RecordLink(object_type="contacts", origin="hubspot", hubspot_id="1", state="happy", **ids),
    ):
        with pytest.raises(IntegrityError), migrated_database.session() as session:
            session.add(row)
            session.flush()


def test_deleting_an_installation_deletes_everything_it_owns(migrated_database):
    with migrated_database.session() as session:
        installation, company = add_tenant(session, 41, "r41")
        ids = dict(installation_id=installation.id, qbo_company_id=company.id)
        link = RecordLink(object_type="contacts", origin="hubspot", hubspot_id="1", qbo_id="2", **ids)
        session.add_all(
            [
                link,
                SyncSettings(object_type="contacts", **ids),
                SyncCursor(object_type="contacts", side="hubspot", **ids),
                Notification(installation_id=installation.id, kind="welcome", title="Welcome"),
                WebhookEvent(
                    source="hubspot",
                    account_id="41",
                    installation_id=installation.id,
                    event_type="contact.creation",
                    dedupe_key="k1",
                    payload={"a": 1},
                ),
            ]
        )
        session.flush()
        session.add(SyncActivity(record_link_id=link.id, object_type="contacts", action="created", **ids))
        other, _ = add_tenant(session, 42, "r42")
        installation_id, other_id = installation.id, other.id
    with migrated_database.session() as session:
        session.delete(session.get(Installation, installation_id))
    with migrated_database.session() as session:
        for model in (RecordLink, SyncSettings, SyncCursor, SyncActivity, Notification, WebhookEvent):
            assert session.scalars(select(model)).all() == [], model.__tablename__
        # the other portal's company is untouched
        assert [c.installation_id for c in session.scalars(select(QboCompany))] == [other_id]


def test_times_come_back_aware_and_in_utc(migrated_database):
    local = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    with migrated_database.session() as session:
        session.add(Installation(hub_id=51, installed_at=local))
    with migrated_database.session() as session:
        stored = session.scalar(select(Installation).where(Installation.hub_id == 51)).installed_at
    assert stored == local
    assert stored.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive"), migrated_database.session() as session:
        session.add(Installation(hub_id=52, installed_at=datetime(2026, 3, 1, 9, 30)))  # noqa: DTZ001
        session.flush()


def test_json_documents_round_trip(migrated_database):
    base = {"email": "ana@example.com", "phone": None, "tags": ["a", "b"], "nested": {"n": 1.5}}
    with migrated_database.session() as session:
        installation, company = add_tenant(session, 61, "r61")
        session.add(
            RecordLink(
                installation_id=installation.id,
                qbo_company_id=company.id,
                object_type="contacts",
                hubspot_id="1",
                origin="hubspot",
                base_values=base,
                pending_write=None,
            )
        )
    with migrated_database.session() as session:
        link = session.scalar(select(RecordLink))
        assert link.base_values == base
        assert link.pending_write is None


def test_a_webhook_event_is_stored_once(migrated_database):
    with migrated_database.session() as session:
        session.add(
            WebhookEvent(
                source="quickbooks", account_id="9130", event_type="Customer.Update", dedupe_key="same", payload={}
            )
        )
    with pytest.raises(IntegrityError), migrated_database.session() as session:
        session.add(
            WebhookEvent(
                source="quickbooks", account_id="9130", event_type="Customer.Update", dedupe_key="same", payload={}
            )
        )
        session.flush()


def test_sqlite_files_that_hold_data_are_private(tmp_path):
    """demo.db and its -wal/-shm files are 0600, like the keys beside them."""
    import os
    import stat

    from sqlalchemy import text

    from sync.store.database import Database

    path = tmp_path / "demo.db"
    old_umask = os.umask(0o022)
    try:
        database = Database(f"sqlite:///{path}")
        with database.engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            connection.commit()
        with database.engine.connect() as connection:  # the -wal and -shm files exist by now
            connection.execute(text("SELECT x FROM t"))
        files = [path, tmp_path / "demo.db-wal", tmp_path / "demo.db-shm"]
        assert all(f.exists() for f in files)
        assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
        database.dispose()
    finally:
        os.umask(old_umask)
