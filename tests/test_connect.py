"""Connect: HubSpot install and sign-in, the QuickBooks connection, tokens and the API clients.

The real app is served on a local port; both emulators stand in for HubSpot and Intuit, and a
requests.Session plays the browser, following the real OAuth redirects between the three.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from sync.clients import errors
from sync.clients.hubspot import HubSpotClient, HubSpotOAuth
from sync.clients.quickbooks import QuickBooksClient
from sync.clients.ratelimit import RateLimiter
from sync.store import migrate
from sync.store.models import Installation, Notification, OAuthToken, QboCompany, SyncSettings
from sync.tokens import TokenManager
from tests.conftest import Stack, free_port


def csrf(page: requests.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


# --- install and sign-in ----------------------------------------------------------------------------


def test_install_through_real_redirects_stores_an_encrypted_token(stack):
    account, users = stack.portal()
    browser = stack.browser()
    page = stack.install(browser, users["admin"])
    assert page.url == f"{stack.url}/connection" and str(account["portalId"]) in page.text
    assert "Connect QuickBooks Online" in page.text
    hops = [r.url.split("?")[0] for r in page.history]
    assert hops == [
        f"{stack.url}/oauth/hubspot/install",
        f"{stack.hubspot.url}/oauth/authorize",
        f"{stack.url}/oauth/hubspot/callback",
    ]
    with stack.db() as session:
        installation = session.scalar(select(Installation))
        assert installation.hub_id == account["portalId"] and installation.status == "active"
        token = session.scalar(select(OAuthToken))
        access = stack.runtime.cipher.decrypt(token.access_token_encrypted)
        assert access.encode() not in token.access_token_encrypted
    info = HubSpotOAuth(stack.runtime.config).token_info(access)
    assert info["hub_id"] == account["portalId"] and "crm.objects.invoices.write" in info["scopes"]


def test_a_user_without_install_rights_gets_a_clear_page_and_nothing_is_stored(stack):
    _account, users = stack.portal()
    page = stack.install(stack.browser(), users["viewer"])
    assert page.status_code == 400 and "permission to install" in page.text
    with stack.db() as session:
        assert session.scalars(select(Installation)).all() == []


def test_a_bad_state_is_refused(stack):
    browser = stack.browser()
    page = browser.get(f"{stack.url}/oauth/hubspot/callback", params={"code": "x", "state": "forged"}, timeout=5)
    assert page.status_code == 400 and "expired" in page.text
    with stack.db() as session:
        assert session.scalars(select(Installation)).all() == []


def test_a_second_user_signs_in_without_a_new_installation(stack, installed):
    account, users, _browser, _company, _page = installed
    with stack.db() as session:
        before = session.scalar(select(OAuthToken).where(OAuthToken.provider == "hubspot")).access_token_encrypted
    other = stack.browser()
    page = stack.install(other, users["viewer"])  # no install rights, but the app is installed: a sign-in
    assert page.url == f"{stack.url}/connection" and "viewer@example.com" in page.text
    with stack.db() as session:
        assert len(session.scalars(select(Installation)).all()) == 1
        token = session.scalar(select(OAuthToken).where(OAuthToken.provider == "hubspot"))
        assert token.access_token_encrypted == before  # the installation keeps its own token


def test_a_user_without_install_rights_may_look_but_not_change(stack, installed):
    account, users, _browser, _company, _page = installed
    viewer = stack.browser()
    page = stack.install(viewer, users["viewer"])
    assert page.status_code == 200 and "Can look" in page.text
    assert "Disconnect QuickBooks Online" not in page.text and "Uninstall Ledgersync" not in page.text
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    token = csrf(page)
    refused = [
        viewer.post(f"{stack.url}/uninstall", data={"csrf_token": token}, timeout=10),
        viewer.post(
            f"{stack.url}/quickbooks/disconnect", data={"csrf_token": token, "company_id": str(company_id)}, timeout=10
        ),
        viewer.get(f"{stack.url}/oauth/quickbooks/connect", timeout=10, allow_redirects=False),
    ]
    assert [answer.status_code for answer in refused] == [403, 403, 403]
    assert all("only the user who installed Ledgersync" in answer.text for answer in refused)
    with stack.db() as session:
        assert session.scalar(select(Installation)).status == "active"
        assert session.get(QboCompany, company_id).status == "connected"


def test_a_super_admin_who_did_not_install_may_change(stack, installed):
    account, _users, _browser, _company, _page = installed
    added = stack.hubspot.control(
        "POST", f"/accounts/{account['portalId']}/users", {"email": "boss@example.com", "superAdmin": True}, expect=201
    )
    boss = stack.browser()
    page = stack.install(boss, added["userId"])
    assert page.status_code == 200 and "Can change this installation" in page.text
    assert "Uninstall Ledgersync" in page.text


def test_a_malformed_company_id_is_a_400(stack, installed):
    _account, _users, browser, _company, page = installed
    for company_id in ("abc", "", "1e3", "9" * 40, "٣"):
        answer = browser.post(
            f"{stack.url}/quickbooks/disconnect", data={"csrf_token": csrf(page), "company_id": company_id}, timeout=10
        )
        assert answer.status_code == 400, company_id
    with stack.db() as session:
        assert session.scalar(select(QboCompany)).status == "connected"


# --- QuickBooks -------------------------------------------------------------------------------------------


def test_connect_quickbooks_and_preflight(stack, installed):
    _account, _users, _browser, company, page = installed
    assert "Craig&#39;s Design" in page.text and "Connected" in page.text
    assert 'data-code="no_closing_date"' in page.text and "non_us_company" not in page.text
    with stack.db() as session:
        stored = session.scalar(select(QboCompany))
        assert stored.realm_id == company["realmId"] and stored.country == "US" and stored.home_currency == "USD"
        token = session.scalar(select(OAuthToken).where(OAuthToken.provider == "quickbooks"))
        assert token.refresh_token_encrypted and token.refresh_token_expires_at > datetime.now(UTC)


def test_preflight_of_a_non_us_company_with_custom_numbers(stack):
    _account, users = stack.portal()
    browser = stack.browser()
    stack.install(browser, users["admin"])
    company = stack.qbo.new_company(connect=False, country="CA", customTxnNumbers=True, multiCurrency=True)
    page = stack.connect_qbo(browser, company["realmId"])
    for code in ("non_us_company", "custom_txn_numbers", "multi_currency"):
        assert f'data-code="{code}"' in page.text
    assert "Invoice sync is unavailable" in page.text and "tax code on every invoice" in page.text


def test_a_sandbox_company_cannot_join_a_production_installation(stack):
    _account, users = stack.portal()
    browser = stack.browser()
    stack.install(browser, users["admin"])
    sandbox = stack.qbo.new_company(connect=False, sandbox=True)
    page = stack.connect_qbo(browser, sandbox["realmId"])
    assert page.status_code == 400 and "sandbox" in page.text
    with stack.db() as session:
        assert session.scalars(select(QboCompany)).all() == []


def test_a_company_connected_elsewhere_is_refused(stack, installed):
    _account, _users, _browser, company, _page = installed
    _other_account, other_users = stack.portal()
    other = stack.browser()
    stack.install(other, other_users["admin"])
    page = stack.connect_qbo(other, company["realmId"])
    assert page.status_code == 409 and "already connected to another HubSpot account" in page.text
    with stack.db() as session:
        assert len(session.scalars(select(QboCompany)).all()) == 1


def test_disconnect_revokes_deletes_tokens_and_stops_syncs(stack, installed):
    _account, _users, browser, company, page = installed
    with stack.db() as session:
        stored = session.scalar(select(QboCompany))
        session.add(
            SyncSettings(installation_id=stored.installation_id, qbo_company_id=stored.id, object_type="contacts")
        )
        access, _refresh = None, None
    access, _refresh = TokenManager(stack.runtime).quickbooks_tokens(stored.id)
    answer = browser.post(
        f"{stack.url}/quickbooks/disconnect", timeout=10, data={"csrf_token": csrf(page), "company_id": str(stored.id)}
    )
    assert answer.status_code == 200 and "Connect QuickBooks Online" in answer.text
    with stack.db() as session:
        assert session.get(QboCompany, stored.id).status == "disconnected"
        assert session.scalars(select(OAuthToken).where(OAuthToken.provider == "quickbooks")).all() == []
        assert session.scalar(select(SyncSettings)).status == "off"
    revoked = requests.get(
        f"{stack.qbo.url}/v3/company/{company['realmId']}/preferences",
        timeout=5,
        headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
    )
    assert revoked.status_code == 401


def test_disconnect_needs_the_csrf_token(stack, installed):
    _account, _users, browser, _company, _page = installed
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    answer = browser.post(f"{stack.url}/quickbooks/disconnect", data={"company_id": str(company_id)}, timeout=5)
    assert answer.status_code == 400
    with stack.db() as session:
        assert session.get(QboCompany, company_id).status == "connected"


def test_uninstall_deletes_hubspot_access(stack, installed):
    _account, _users, browser, _company, page = installed
    with stack.db() as session:
        refresh = stack.runtime.cipher.decrypt(
            session.scalar(select(OAuthToken).where(OAuthToken.provider == "hubspot")).refresh_token_encrypted
        )
    answer = browser.post(f"{stack.url}/uninstall", data={"csrf_token": csrf(page)}, timeout=10)
    assert answer.status_code == 200 and "uninstalled" in answer.text
    with stack.db() as session:
        assert session.scalar(select(Installation)).status == "uninstalled"
        assert session.scalars(select(OAuthToken)).all() == []
    with pytest.raises(errors.Unauthorized):
        HubSpotOAuth(stack.runtime.config).refresh(refresh)  # deleted at HubSpot too
    assert browser.get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/"


def test_tenant_isolation(stack, installed):
    _account, _users, browser_a, _company, page_a = installed
    _account_b, users_b = stack.portal()
    browser_b = stack.browser()
    stack.install(browser_b, users_b["admin"])
    company_b = stack.qbo.new_company(connect=False, name="Other Books")
    stack.connect_qbo(browser_b, company_b["realmId"])
    with stack.db() as session:
        b_company = session.scalar(select(QboCompany).where(QboCompany.realm_id == company_b["realmId"]))
    assert "Other Books" not in browser_a.get(f"{stack.url}/connection", timeout=5).text
    answer = browser_a.post(
        f"{stack.url}/quickbooks/disconnect",
        timeout=5,
        data={"csrf_token": csrf(page_a), "company_id": str(b_company.id)},
    )
    assert answer.status_code == 404
    with stack.db() as session:
        assert session.get(QboCompany, b_company.id).status == "connected"
    assert stack.browser().get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/"  # no session


# --- tokens -----------------------------------------------------------------------------------------------


def _expire_access_token(stack, provider: str) -> OAuthToken:
    with stack.db() as session:
        token = session.scalar(select(OAuthToken).where(OAuthToken.provider == provider))
        token.access_token_expires_at = datetime.now(UTC) - timedelta(minutes=1)
        return token


def test_refresh_rotation_raced_by_two_workers(stack, installed):
    _account, _users, _browser, company, _page = installed
    # Every refresh rotates and the old value dies at once: a lost rotation would show.
    stack.qbo.control("POST", "/config", {"refreshGraceSeconds": 0, "refreshRotationSeconds": 0}, expect=200)
    token = _expire_access_token(stack, "quickbooks")
    results, failures, start = [], [], threading.Barrier(2)

    def worker():
        start.wait()  # both ask at once: whichever takes the lock refreshes, the other waits for it
        try:
            results.append(TokenManager(stack.runtime).quickbooks_tokens(token.qbo_company_id))
        except Exception as error:  # noqa: BLE001 - the test reports it
            failures.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(results) == 2 and results[0] == results[1]  # one refresh, shared
    with stack.db() as session:
        stored = session.get(OAuthToken, token.id)
        assert stored.version == token.version + 1
    # The stored (rotated) refresh token is the live one: refreshing again works.
    _expire_access_token(stack, "quickbooks")
    access, _refresh = TokenManager(stack.runtime).quickbooks_tokens(token.qbo_company_id)
    client = QuickBooksClient(stack.runtime.config, company["realmId"], access)
    assert client.company_info()["CompanyName"] == "Craig's Design"


def test_a_revoked_connection_needs_reconnect_without_failing_records(stack, installed):
    _account, _users, browser, company, _page = installed
    with stack.db() as session:
        stored = session.scalar(select(QboCompany))
        session.add(
            SyncSettings(installation_id=stored.installation_id, qbo_company_id=stored.id, object_type="contacts")
        )
        refresh = stack.runtime.cipher.decrypt(
            session.scalar(select(OAuthToken).where(OAuthToken.provider == "quickbooks")).refresh_token_encrypted
        )
    requests.post(
        f"{stack.qbo.url}/v2/oauth2/tokens/revoke",
        json={"token": refresh},
        timeout=5,
        auth=("qbo-emulator-client-id", "qbo-emulator-client-secret"),
    ).raise_for_status()
    _expire_access_token(stack, "quickbooks")
    with pytest.raises(errors.NeedsReconnect):
        TokenManager(stack.runtime).quickbooks_tokens(stored.id)
    with stack.db() as session:
        assert session.get(QboCompany, stored.id).status == "needs_reconnect"
        assert session.scalar(select(SyncSettings)).status == "paused"
        notices = session.scalars(select(Notification)).all()
        assert [n.kind for n in notices] == ["qbo_needs_reconnect"]
    with pytest.raises(errors.NeedsReconnect):  # a second failure adds no second notice
        TokenManager(stack.runtime).quickbooks_tokens(stored.id)
    with stack.db() as session:
        assert len(session.scalars(select(Notification)).all()) == 1
    page = browser.get(f"{stack.url}/connection", timeout=5)
    assert "Needs reconnecting" in page.text and "Reconnect QuickBooks Online" in page.text


def test_hubspot_refresh_and_an_uninstall_from_hubspot(stack, installed):
    account, _users, _browser, _company, _page = installed
    with stack.db() as session:
        installation_id = session.scalar(select(Installation)).id
    _expire_access_token(stack, "hubspot")
    access = TokenManager(stack.runtime).hubspot_access_token(installation_id)
    assert HubSpotOAuth(stack.runtime.config).token_info(access)["hub_id"] == account["portalId"]
    stack.hubspot.control("POST", f"/accounts/{account['portalId']}/uninstall", expect=200)
    _expire_access_token(stack, "hubspot")
    from sync.connect import check_hubspot_access

    assert check_hubspot_access(stack.runtime, installation_id) is False
    with stack.db() as session:
        assert session.get(Installation, installation_id).status == "uninstalled"


def test_key_rotation_keeps_tokens_readable(stack, installed, tmp_path):
    from cryptography.fernet import Fernet

    from sync.crypto import TokenCipher

    with stack.db() as session:
        before = {
            t.id: stack.runtime.cipher.decrypt(t.access_token_encrypted) for t in session.scalars(select(OAuthToken))
        }
    new_key = Fernet.generate_key().decode()
    stack.runtime.cipher = TokenCipher(f"{new_key},{stack.runtime.config.token_encryption_key}")
    assert TokenManager(stack.runtime).rotate_encryption_key() == len(before)
    only_new = TokenCipher(new_key)
    with stack.db() as session:
        after = {t.id: only_new.decrypt(t.access_token_encrypted) for t in session.scalars(select(OAuthToken))}
    assert after == before


# --- the clients --------------------------------------------------------------------------------------------


def test_hubspot_client_errors_and_limiter(stack, hubspot_account, redis_url):
    import redis

    limiter = RateLimiter(redis.Redis.from_url(redis_url))
    client = HubSpotClient(stack.runtime.config, hubspot_account["portalId"], hubspot_account["accessToken"], limiter)
    created = client.create("contacts", {"email": "c@example.com"})
    with pytest.raises(errors.Duplicate):
        client.create("contacts", {"email": "c@example.com"})
    with pytest.raises(errors.NotFound):
        client.get("contacts", "999999")
    with pytest.raises(errors.ValidationFailed):
        client.create("contacts", {"no_such_property": "x"})
    stack.hubspot.control("POST", "/faults", {"path": "/crm/v3/objects/contacts", "status": 429}, expect=201)
    with pytest.raises(errors.RateLimited):
        client.get("contacts", created["id"])
    stack.hubspot.control("POST", "/faults", {"path": "/crm/v3/objects/contacts", "status": 503, "count": 1})
    assert client.get("contacts", created["id"])["id"] == created["id"]  # a transient failure, retried
    stack.hubspot.control("DELETE", "/requests")
    sent = 0
    with pytest.raises(errors.RateLimited) as limited:
        for _ in range(200):
            client.get("contacts", created["id"])
            sent += 1
    assert limited.value.retry_after > 0
    assert stack.hubspot.control("GET", "/requests")["total"] == sent <= 110  # the 429 never reached HubSpot
    assert limiter.counts("hubspot", str(hubspot_account["portalId"]))["api"] >= sent


def test_quickbooks_client_errors_and_limiter(stack, qbo_company, redis_url):
    import redis

    limiter = RateLimiter(redis.Redis.from_url(redis_url))
    client = QuickBooksClient(stack.runtime.config, qbo_company["realmId"], qbo_company["accessToken"], limiter=limiter)
    customer = client.create("Customer", {"DisplayName": "Client Test"})
    with pytest.raises(errors.Duplicate):
        client.create("Customer", {"DisplayName": "Client Test"})
    with pytest.raises(errors.StaleObject):
        client.sparse_update("Customer", customer["Id"], "7", {"Notes": "x"})
    updated = client.sparse_update("Customer", customer["Id"], customer["SyncToken"], {"Notes": "kept"})
    assert updated["Notes"] == "kept" and updated["DisplayName"] == "Client Test"
    with pytest.raises(errors.NotFound):
        client.read("Customer", "999")
    stack.qbo.control("POST", "/faults", {"path": f"/v3/company/{qbo_company['realmId']}/query", "status": 429})
    with pytest.raises(errors.RateLimited):
        client.query("select * from Customer")
    sent = 0
    with pytest.raises(errors.RateLimited):
        for _ in range(20):
            client.query("select * from Customer")
            sent += 1
    assert sent < 10  # the 10-per-second limit, from our side


def test_developer_mode_connects_sandbox_companies(make_settings, redis_url, hubspot_emulator, qbo_emulator):
    """INTUIT_ENVIRONMENT=sandbox: development keys, the sandbox discovery document, companies labelled."""
    from app import create_app

    port = free_port()
    url = f"http://localhost:{port}"
    settings = make_settings(
        redis_url=redis_url,
        app_base_url=url,
        hubspot_api_base_url=hubspot_emulator.url,
        hubspot_authorize_url=f"{hubspot_emulator.url}/oauth/authorize",
        hubspot_client_id="ledgersync-emulator-client-id",
        hubspot_client_secret="ledgersync-emulator-client-secret",
        intuit_environment="sandbox",
        intuit_client_id="qbo-emulator-dev-client-id",
        intuit_client_secret="qbo-emulator-dev-client-secret",
        qbo_api_base_url=qbo_emulator.url,
        intuit_discovery_url=f"{qbo_emulator.url}/.well-known/openid_sandbox_configuration/",
    )
    app = create_app(settings)
    migrate.upgrade(app.extensions["ledgersync"].database.engine)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        stack = Stack(app, app.extensions["ledgersync"], url, hubspot_emulator, qbo_emulator)
        _account, users = stack.portal()
        browser = stack.browser()
        stack.install(browser, users["admin"])
        sandbox = qbo_emulator.new_company(connect=False, sandbox=True, name="Sandbox Books")
        page = stack.connect_qbo(browser, sandbox["realmId"])
        assert page.status_code == 200 and "Sandbox Books" in page.text and "(sandbox)" in page.text
        with stack.db() as session:
            assert session.scalar(select(QboCompany)).environment == "sandbox"
    finally:
        server.shutdown()


@pytest.mark.browser
def test_connection_page_in_a_real_browser(stack, installed, chromium_path):
    from playwright.sync_api import sync_playwright

    _account, _users, browser_session, _company, _page = installed
    cookies = [{"name": c.name, "value": c.value, "url": stack.url} for c in browser_session.cookies]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context()
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto(f"{stack.url}/connection")
        assert page.get_by_role("heading", level=1).inner_text() == "Your connection"
        assert page.locator("#qbo-status").inner_text() == "Connected"
        assert page.locator("#preflight li").count() >= 1
        page.screenshot(path="/tmp/ledgersync-connection.png")
        page.get_by_role("button", name="Disconnect QuickBooks Online").click()
        page.wait_for_load_state()
        assert page.get_by_role("link", name="Connect QuickBooks Online").count() == 1
        browser.close()


def test_quiet_connections_are_refreshed_well_inside_100_days(stack, installed):
    with stack.db() as session:
        token = session.scalar(select(OAuthToken).where(OAuthToken.provider == "quickbooks"))
        token.refresh_token_expires_at = datetime.now(UTC) + timedelta(days=60)  # unused for ~40 days
        version = token.version
    assert TokenManager(stack.runtime).refresh_quiet_connections() == 1
    with stack.db() as session:
        token = session.scalar(select(OAuthToken).where(OAuthToken.provider == "quickbooks"))
        assert token.version == version + 1
        assert token.refresh_token_expires_at > datetime.now(UTC) + timedelta(days=99)
    assert TokenManager(stack.runtime).refresh_quiet_connections() == 0  # fresh ones are left alone


# --- sessions -------------------------------------------------------------------------------------------


def test_a_session_cookie_replayed_after_sign_out_is_refused(stack, installed):
    _account, _users, browser, _company, page = installed
    cookie = browser.cookies.get("session")
    assert browser.get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/connection"
    browser.post(f"{stack.url}/signout", data={"csrf_token": csrf(page)}, timeout=5)
    replay = requests.Session()
    replay.cookies.set("session", cookie)  # the cookie as it was before signing out
    answer = replay.get(f"{stack.url}/connection", timeout=5)
    assert answer.url == f"{stack.url}/"  # not signed in: the session ended for good
    refused = replay.post(f"{stack.url}/uninstall", data={"csrf_token": csrf(page)}, timeout=5)
    assert refused.status_code in (302, 400) or refused.url == f"{stack.url}/"
    with stack.db() as session:
        assert session.scalar(select(Installation)).status == "active"


def test_sessions_are_server_side_and_expire_when_idle(stack, installed):
    from sync.sessions import IDLE_SECONDS

    _account, _users, browser, _company, _page = installed
    keys = [k for k in stack.runtime.jobs.connection.scan_iter("ledgersync:session:*") if b"portal" not in k]
    assert len(keys) == 1
    ttl = stack.runtime.jobs.connection.ttl(keys[0])
    assert 0 < ttl <= IDLE_SECONDS <= 12 * 3600  # hours, not 31 days
    stack.runtime.jobs.connection.delete(keys[0])  # what expiry does
    assert browser.get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/"


def test_uninstalling_or_disconnecting_ends_the_portals_other_sessions(stack, installed):
    _account, users, browser, _company, page = installed
    viewer = stack.browser()
    assert stack.install(viewer, users["viewer"]).url == f"{stack.url}/connection"
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    browser.post(
        f"{stack.url}/quickbooks/disconnect", data={"csrf_token": csrf(page), "company_id": str(company_id)}, timeout=10
    )
    assert browser.get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/connection"  # who asked stays
    assert viewer.get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/"  # everyone else is out
    assert stack.install(viewer, users["viewer"]).url == f"{stack.url}/connection"
    browser.post(f"{stack.url}/uninstall", data={"csrf_token": csrf(page)}, timeout=10)
    assert viewer.get(f"{stack.url}/connection", timeout=5).url == f"{stack.url}/"


def test_signed_in_pages_carry_security_headers_and_are_not_cached(stack, installed):
    _account, _users, browser, _company, _page = installed
    signed_in = browser.get(f"{stack.url}/connection", timeout=5)
    assert signed_in.headers["Cache-Control"] == "no-store"
    policy = signed_in.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert signed_in.headers["X-Frame-Options"] == "DENY" and signed_in.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in signed_in.headers  # development serves http: HSTS in production only
    anonymous = requests.get(f"{stack.url}/", timeout=5)
    assert "Content-Security-Policy" in anonymous.headers and anonymous.headers.get("Cache-Control") != "no-store"


def test_hsts_in_production():
    from flask import Response

    from app import security_headers
    from sync.config import Config

    response = Response("x")
    security_headers(Config(app_env="production", secret_key="x", token_encryption_key="x")).set_headers(response)
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
