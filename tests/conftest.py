"""Shared fixtures: real Redis, real PostgreSQL (a fresh database per run), SQLite files.

TEST_REDIS_URL (default redis://127.0.0.1:6379/9) is flushed before each test
that uses it. TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test)
names a server where this run creates, and afterwards drops, its own database;
when PostgreSQL cannot be reached, the tests that need it skip and say why.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from cryptography.fernet import Fernet
from psycopg import sql

from sync.config import Config, normalize_database_url
from sync.runtime import Runtime
from sync.store import migrate
from sync.store.database import Database

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def skip_or_fail_in_ci(reason: str) -> None:
    """Skip with a visible reason on a laptop; in CI a missing service is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run every test: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url() -> str:
    connection = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is required and not reachable at {TEST_REDIS_URL}: {error} (run `make services`)")
    connection.flushdb()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, dropped at the end of the run."""
    try:
        admin = psycopg.connect(TEST_POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        skip_or_fail_in_ci(f"PostgreSQL is not reachable at {TEST_POSTGRES_URL}: {error}")
    name = f"ledgersync_test_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield TEST_POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def _empty_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> str:
    """An empty database: each test of the store runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url = request.getfixturevalue("postgres_server_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def make_settings(tmp_path: Path):
    """Config for a test, with a private instance folder and fixed secrets."""

    def build(**overrides) -> Config:
        values = dict(
            instance_path=tmp_path / "instance",
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
            secret_key="test-secret-key-" + uuid.uuid4().hex,
            token_encryption_key=Fernet.generate_key().decode(),
            log_format="json",
        )
        values.update(overrides)
        values["database_url"] = normalize_database_url(values["database_url"])
        return Config(**values)

    return build


@pytest.fixture
def migrated_database(database_url: str) -> Iterator[Database]:
    database = Database(normalize_database_url(database_url))
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def runtime(make_settings, redis_url) -> Iterator[Runtime]:
    """A runtime on a migrated SQLite file and the real Redis."""
    runtime = Runtime(make_settings(redis_url=redis_url))
    migrate.upgrade(runtime.database.engine)
    yield runtime
    runtime.close()


@pytest.fixture
def app(runtime):
    from app import create_app

    flask_app = create_app(runtime.config)
    flask_app.config["TESTING"] = True
    migrate.upgrade(flask_app.extensions["ledgersync"].database.engine)
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not CHROMIUM:
        skip_or_fail_in_ci("no Chromium installed (apt-get install chromium); .ci/run installs it in CI")
    return CHROMIUM


# --- the HubSpot emulator ---------------------------------------------------------------


class HubSpotEmulator:
    """A running emulator plus a client for its control API."""

    def __init__(self, server, report) -> None:
        import requests

        self.server, self.report, self.url = server, report, server.url
        self.http = requests.Session()

    def control(self, method: str, path: str, body: dict | None = None, expect: int | None = None):
        response = self.http.request(method, f"{self.url}/_emulator{path}", json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def new_account(self, **options) -> dict:
        return self.control("POST", "/accounts", {"tier": "professional", **options}, expect=201)

    def sdk(self, access_token: str, **options):
        from hubspot import HubSpot

        return HubSpot(access_token=access_token, host=self.url, base_url=self.url, **options)


@pytest.fixture
def hubspot_emulator() -> Iterator[HubSpotEmulator]:
    """The HubSpot emulator in a thread; every response it gives is checked against HubSpot's specs."""
    from flask import request

    from emulators.hubspot import EmulatorServer
    from tests.hubspot_spec import REFERENCE, SpecReport, check, reference_available

    server = EmulatorServer()
    report = SpecReport()
    if reference_available():

        @server.app.after_request
        def validate_against_spec(response):
            check(request, response, report)
            return response

    elif os.environ.get("CI"):
        pytest.fail(f"HubSpot's OpenAPI specs are missing from {REFERENCE} (../shared/reference/hubspot)")
    else:
        warnings.warn(f"HubSpot's specs are not at {REFERENCE}: responses are not checked against them", stacklevel=1)

    with server:
        yield HubSpotEmulator(server, report)
    assert report.violations == [], "responses that break HubSpot's OpenAPI specs:\n" + "\n".join(report.violations)


@pytest.fixture
def hubspot_account(hubspot_emulator) -> dict:
    return hubspot_emulator.new_account(paymentsProcessor="hubspot_payments")


@pytest.fixture
def hubspot(hubspot_emulator, hubspot_account):
    """The official SDK, pointed at the emulator, with the account's token."""
    return hubspot_emulator.sdk(hubspot_account["accessToken"])


# --- the QuickBooks Online emulator -----------------------------------------------------------


class QboEmulator:
    """A running QBO emulator plus helpers: its control API, and python-quickbooks clients for it."""

    def __init__(self, server) -> None:
        import requests

        self.server, self.url, self.state = server, server.url, server.state
        self.http = requests.Session()

    def control(self, method: str, path: str, body: dict | None = None, expect: int | None = None):
        response = self.http.request(method, f"{self.url}/_emulator{path}", json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def new_company(self, **options) -> dict:
        return self.control("POST", "/companies", {"country": "US", "sandbox": False, **options}, expect=201)

    def auth_client(self, sandbox: bool = False, **tokens):
        from intuitlib.client import AuthClient

        from emulators.quickbooks.app import (
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            DEFAULT_DEV_CLIENT_ID,
            DEFAULT_DEV_CLIENT_SECRET,
        )

        client_id, secret = (
            (DEFAULT_DEV_CLIENT_ID, DEFAULT_DEV_CLIENT_SECRET)
            if sandbox
            else (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        )
        discovery = "openid_sandbox_configuration" if sandbox else "openid_configuration"
        return AuthClient(
            client_id,
            secret,
            "http://localhost:9/oauth/quickbooks/callback",
            environment=f"{self.url}/.well-known/{discovery}/",
            **tokens,
        )

    def client(self, company: dict):
        """python-quickbooks for a company, built with an access token (it refreshes otherwise)."""
        from quickbooks import QuickBooks

        auth = self.auth_client(
            sandbox=company.get("sandbox", False),
            access_token=company["accessToken"],
            refresh_token=company["refreshToken"],
            realm_id=company["realmId"],
        )
        qb = QuickBooks(
            auth_client=auth, refresh_token=company["refreshToken"], company_id=company["realmId"], minorversion=75
        )
        qb.api_url_v3 = f"{self.url}/v3"
        return qb


@pytest.fixture
def qbo_emulator(monkeypatch) -> Iterator[QboEmulator]:
    """The QBO emulator in a thread. Its limits (on by default when run standalone) start off here,
    since 10 requests a second is easy to reach in a test; the limit tests turn them on."""
    from emulators.quickbooks import QboEmulatorServer

    # python-quickbooks refuses plain http unless told; only ever for the local emulator.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with QboEmulatorServer(rate_limits=False) as server:
        yield QboEmulator(server)


@pytest.fixture
def qbo_company(qbo_emulator) -> dict:
    return qbo_emulator.new_company(customFields=["Crew #", "HubSpot deal"])


@pytest.fixture
def qbo(qbo_emulator, qbo_company):
    return qbo_emulator.client(qbo_company)


# --- the app with both emulators: OAuth through real redirects ------------------------------------------


class Stack:
    """The app, its runtime and URL, both emulators, and a browser-like session per user."""

    def __init__(self, app, runtime: Runtime, url: str, hubspot, qbo) -> None:
        self.app, self.runtime, self.url, self.hubspot, self.qbo = app, runtime, url, hubspot, qbo

    def browser(self) -> requests.Session:
        return requests.Session()

    def install(self, browser: requests.Session, user_id: int) -> requests.Response:
        self.hubspot.control("POST", "/oauth/auto-approve", {"userId": user_id}, expect=200)
        return browser.get(f"{self.url}/oauth/hubspot/install", timeout=15)

    def connect_qbo(self, browser: requests.Session, realm_id: str) -> requests.Response:
        self.qbo.control("POST", "/oauth/auto-approve", {"realmId": realm_id}, expect=200)
        return browser.get(f"{self.url}/oauth/quickbooks/connect", timeout=15)

    def portal(self, **options) -> tuple[dict, dict[str, int]]:
        account = self.hubspot.new_account(installApp=False, users=[{"email": "viewer@example.com"}], **options)
        return account, {u["email"].split("@")[0]: u["userId"] for u in account["users"]}

    def db(self):
        return self.runtime.database.session()


@pytest.fixture
def stack_database_url() -> str | None:
    """The stack's database: a SQLite file unless a test module asks for more (see test_runner)."""
    return None


BOTH_DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def stack_on_both_databases(request) -> str | None:
    """A module's stack tests on SQLite and on PostgreSQL, by overriding the fixture above:
    `stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)`."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("postgres_server_url")
    _empty_postgres(url)
    return url


def with_contacts_sync(installed, stack):
    """`installed`, with the contacts sync set up (two-way, no filters): for a module whose events must be
    ones a sync uses: `installed = pytest.fixture(name="installed")(with_contacts_sync)`."""
    from sqlalchemy import select

    from sync.setup import set_up
    from sync.store.models import QboCompany

    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    set_up(stack.runtime, company_id, "contacts", "two-way", "hubspot", filters={"hubspot": None})
    return installed


@pytest.fixture
def stack(make_settings, redis_url, hubspot_emulator, qbo_emulator, stack_database_url):
    """The real app on a local port, pointed at both emulators; the HubSpot emulator knows our project."""
    import threading

    from werkzeug.serving import make_server

    from app import create_app

    port = free_port()
    url = f"http://localhost:{port}"
    settings = make_settings(
        **({"database_url": stack_database_url} if stack_database_url else {}),
        redis_url=redis_url,
        app_base_url=url,
        hubspot_api_base_url=hubspot_emulator.url,
        hubspot_authorize_url=f"{hubspot_emulator.url}/oauth/authorize",
        hubspot_app_id="4242001",
        hubspot_client_id="ledgersync-emulator-client-id",
        hubspot_client_secret="ledgersync-emulator-client-secret",
        intuit_client_id="qbo-emulator-client-id",
        intuit_client_secret="qbo-emulator-client-secret",
        intuit_webhook_verifier_token="qbo-emulator-verifier-token",
        qbo_api_base_url=qbo_emulator.url,
        intuit_discovery_url=f"{qbo_emulator.url}/.well-known/openid_configuration/",
    )
    app = create_app(settings)
    runtime = app.extensions["ledgersync"]
    migrate.upgrade(runtime.database.engine)
    hubspot_emulator.control(
        "POST",
        "/project",
        {"folder": str(ROOT / "hubspot_extensions"), "proxy": {"https://ledgersync.example.com": url}},
        expect=201,
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield Stack(app, runtime, url, hubspot_emulator, qbo_emulator)
    server.shutdown()
    runtime.close()


@pytest.fixture
def installed(stack):
    """A portal installed by its super admin, signed in, with a US QuickBooks company connected."""
    account, users = stack.portal()
    browser = stack.browser()
    page = stack.install(browser, users["admin"])
    assert page.status_code == 200 and page.url == f"{stack.url}/connection", page.text
    company = stack.qbo.new_company(connect=False, name="Craig's Design")
    page = stack.connect_qbo(browser, company["realmId"])
    assert page.status_code == 200, page.text
    return account, users, browser, company, page


def hubspot_sdk(stack):
    """The official HubSpot SDK with the installation's current access token."""
    from sqlalchemy import select

    from sync.store.models import Installation
    from sync.tokens import TokenManager

    with stack.db() as session:
        installation_id = session.scalar(select(Installation)).id
    return stack.hubspot.sdk(TokenManager(stack.runtime).hubspot_access_token(installation_id))


def assert_run_writes_nothing(stack, company_id: int, object_type: str) -> None:
    """One more run writes nothing on either side: our own writes do not come back as changes."""
    from sync.runner import run_object

    stack.qbo.control("DELETE", "/requests")
    stack.hubspot.control("DELETE", "/requests")
    summary = run_object(stack.runtime, company_id, object_type)
    for emulator in (stack.qbo, stack.hubspot):
        writes = {
            endpoint: count
            for endpoint, count in emulator.control("GET", "/requests")["byEndpoint"].items()
            if endpoint.startswith(("POST", "PATCH", "PUT", "DELETE"))
            and not any(read in endpoint for read in ("search", "batch/read", "query"))
        }
        assert writes == {}, (writes, summary.counts)
