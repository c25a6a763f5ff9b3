"""HubSpot emulator conformance: OAuth (NOTES §3) and scopes, through HTTP redirects and the SDK."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import SimplePublicObjectInputForCreate
from hubspot.oauth import ApiException as OAuthApiException

from emulators.hubspot.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

REDIRECT_URI = "http://localhost:9/oauth/hubspot/callback"
SCOPES = "oauth crm.objects.contacts.read crm.objects.contacts.write"


def authorize_url(emulator, **overrides) -> str:
    params = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "state": "st-1",
        **overrides,
    }
    return requests.Request("GET", f"{emulator.url}/oauth/authorize", params=params).prepare().url


def approve_as(emulator, user_id: int, **overrides) -> dict[str, str]:
    """Go through the consent page as a browser would; return the callback's query parameters."""
    page = requests.get(authorize_url(emulator, **overrides), timeout=10)
    assert page.status_code == 200 and "Connect app" in page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url(emulator, **overrides)).query).items()}
    decision = requests.post(
        f"{emulator.url}/oauth/authorize/decision",
        data={**form, "user_id": str(user_id), "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    assert decision.status_code == 302, decision.text
    location = decision.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(client, code: str, redirect_uri: str = REDIRECT_URI, secret: str = DEFAULT_CLIENT_SECRET):
    return client.oauth.tokens_api.create(
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=secret,
    )


@pytest.fixture
def portal(hubspot_emulator):
    """A portal whose super admin has not installed the app yet, and two more users."""
    account = hubspot_emulator.new_account(
        installApp=False,
        users=[{"email": "no-rights@example.com"}, {"email": "marketplace@example.com", "marketplaceAccess": True}],
    )
    users = {u["email"]: u["userId"] for u in account["users"]}
    return account, users


def test_install_through_the_consent_page_and_use_the_token(hubspot_emulator, portal):
    account, users = portal
    callback = approve_as(hubspot_emulator, users[f"admin@portal-{account['portalId']}.example.com"])
    assert callback["state"] == "st-1"
    anonymous = hubspot_emulator.sdk(None)
    tokens = exchange(anonymous, callback["code"])
    assert tokens.token_type == "bearer" and tokens.expires_in == 1800 and tokens.refresh_token
    client = hubspot_emulator.sdk(tokens.access_token)
    created = client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "o@a.com"}))
    assert created.id
    info = anonymous.oauth.access_tokens_api.get(tokens.access_token)
    assert info.hub_id == account["portalId"] and info.user == f"admin@portal-{account['portalId']}.example.com"
    assert sorted(info.scopes) == sorted(SCOPES.split()) and 0 < info.expires_in <= 1800
    refresh_info = anonymous.oauth.refresh_tokens_api.get(tokens.refresh_token)
    assert refresh_info.hub_id == account["portalId"] and refresh_info.client_id == DEFAULT_CLIENT_ID


def test_scopes_are_enforced_with_403_missing_scopes(hubspot_emulator, portal):
    account, users = portal
    callback = approve_as(hubspot_emulator, users[f"admin@portal-{account['portalId']}.example.com"])
    client = hubspot_emulator.sdk(exchange(hubspot_emulator.sdk(None), callback["code"]).access_token)
    with pytest.raises(ObjectsApiException) as forbidden:
        client.crm.objects.basic_api.get_page("companies")
    assert forbidden.value.status == 403
    body = json.loads(forbidden.value.body)
    assert body["category"] == "MISSING_SCOPES"
    assert "crm.objects.companies.read" in body["errors"][0]["context"]["requiredScopes"]


def test_a_code_is_single_use_and_bound_to_its_redirect_uri_and_client(hubspot_emulator, portal):
    account, users = portal
    anonymous = hubspot_emulator.sdk(None)
    admin = users[f"admin@portal-{account['portalId']}.example.com"]
    callback = approve_as(hubspot_emulator, admin)
    for kwargs, status in (
        ({"redirect_uri": "http://localhost:9/elsewhere"}, "BAD_REDIRECT_URI"),
        ({"secret": "wrong"}, "BAD_CLIENT_ID"),
    ):
        with pytest.raises(OAuthApiException) as refused:
            exchange(anonymous, approve_as(hubspot_emulator, admin)["code"], **kwargs)
        assert refused.value.status == 400 and json.loads(refused.value.body)["status"] == status
    exchange(anonymous, callback["code"])
    with pytest.raises(OAuthApiException) as reused:
        exchange(anonymous, callback["code"])
    assert json.loads(reused.value.body)["status"] == "BAD_AUTH_CODE"


def test_refresh_expiry_and_refresh_token_delete(hubspot_emulator, portal):
    account, users = portal
    anonymous = hubspot_emulator.sdk(None)
    tokens = exchange(
        anonymous, approve_as(hubspot_emulator, users[f"admin@portal-{account['portalId']}.example.com"])["code"]
    )
    refreshed = anonymous.oauth.tokens_api.create(
        grant_type="refresh_token",
        refresh_token=tokens.refresh_token,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    assert refreshed.access_token != tokens.access_token and refreshed.refresh_token == tokens.refresh_token
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 1801})
    with pytest.raises(ObjectsApiException) as expired:
        hubspot_emulator.sdk(refreshed.access_token).crm.objects.basic_api.get_page("contacts")
    assert expired.value.status == 401 and json.loads(expired.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    again = anonymous.oauth.tokens_api.create(
        grant_type="refresh_token",
        refresh_token=tokens.refresh_token,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    assert hubspot_emulator.sdk(again.access_token).crm.objects.basic_api.get_page("contacts").results == []
    anonymous.oauth.refresh_tokens_api.archive(tokens.refresh_token)
    with pytest.raises(OAuthApiException) as deleted:
        anonymous.oauth.tokens_api.create(
            grant_type="refresh_token",
            refresh_token=tokens.refresh_token,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        )
    assert json.loads(deleted.value.body)["status"] == "BAD_REFRESH_TOKEN"
    # Deleting the refresh token does not uninstall: the access token still works.
    assert hubspot_emulator.sdk(again.access_token).crm.objects.basic_api.get_page("contacts") is not None


def test_a_user_without_install_rights_is_refused_until_the_app_is_installed(hubspot_emulator, portal):
    account, users = portal
    refused = approve_as(hubspot_emulator, users["no-rights@example.com"])
    assert refused["error"] == "access_denied" and "permission to install" in refused["error_description"]
    assert "code" not in refused and refused["state"] == "st-1"
    assert hubspot_emulator.control("GET", f"/accounts/{account['portalId']}")["installedApps"] == []
    # A marketplace user installs; afterwards the user without rights can sign in the same way.
    exchange(hubspot_emulator.sdk(None), approve_as(hubspot_emulator, users["marketplace@example.com"])["code"])
    signed_in = approve_as(hubspot_emulator, users["no-rights@example.com"])
    info = hubspot_emulator.sdk(None).oauth.access_tokens_api.get(
        exchange(hubspot_emulator.sdk(None), signed_in["code"]).access_token
    )
    assert info.user == "no-rights@example.com" and info.hub_id == account["portalId"]


def test_auto_approve_answers_at_once(hubspot_emulator, portal):
    account, users = portal
    hubspot_emulator.control("POST", "/oauth/auto-approve", {"userId": users["marketplace@example.com"]}, expect=200)
    response = requests.get(authorize_url(hubspot_emulator), allow_redirects=False, timeout=10)
    assert response.status_code == 302 and "code=" in response.headers["Location"]


def test_cancel_sends_access_denied(hubspot_emulator, portal):
    form = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url(hubspot_emulator)).query).items()}
    response = requests.post(
        f"{hubspot_emulator.url}/oauth/authorize/decision",
        data={**form, "user_id": "0", "decision": "deny"},
        allow_redirects=False,
        timeout=10,
    )
    assert "error=access_denied" in response.headers["Location"]


@pytest.mark.parametrize(
    ("overrides", "title"),
    [
        ({"redirect_uri": "http://example.com/cb"}, "Invalid redirect URL"),  # http only on localhost
        ({"redirect_uri": "https://127.0.0.1/cb"}, "Invalid redirect URL"),  # a host, not an IP
        ({"client_id": "nobody"}, "Unknown app"),
        ({"scope": "oauth tickets.superpowers"}, "complete the connection"),
    ],
)
def test_bad_authorize_requests_get_a_clear_page(hubspot_emulator, overrides, title):
    response = requests.get(authorize_url(hubspot_emulator, **overrides), allow_redirects=False, timeout=10)
    assert response.status_code == 400 and title in response.text


def test_https_redirect_uris_are_accepted(hubspot_emulator, portal):
    account, users = portal
    hubspot_emulator.control("POST", "/oauth/auto-approve", {"userId": users["marketplace@example.com"]})
    response = requests.get(
        authorize_url(hubspot_emulator, redirect_uri="https://ledgersync.example.com/cb"),
        allow_redirects=False,
        timeout=10,
    )
    assert response.headers["Location"].startswith("https://ledgersync.example.com/cb?code=")


def test_an_uninstalled_app_s_tokens_stop_working(hubspot_emulator, hubspot_account, hubspot):
    hubspot_emulator.control("POST", f"/accounts/{hubspot_account['portalId']}/uninstall", expect=200)
    with pytest.raises(ObjectsApiException) as refused:
        hubspot.crm.objects.basic_api.get_page("contacts")
    assert refused.value.status == 401


def test_invalid_token_is_401(hubspot_emulator):
    with pytest.raises(ObjectsApiException) as refused:
        hubspot_emulator.sdk("not-a-token").crm.objects.basic_api.get_page("contacts")
    assert refused.value.status == 401 and json.loads(refused.value.body)["category"] == "INVALID_AUTHENTICATION"


@pytest.mark.browser
def test_consent_page_in_a_real_browser(hubspot_emulator, portal, chromium_path):
    import threading

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    account, users = portal
    landed = {}

    @Request.application
    def callback_app(request):
        landed.update(request.args.to_dict())
        return Response("<h1>Connected</h1>", mimetype="text/html")

    callback_server = make_server("127.0.0.1", 0, callback_app)
    threading.Thread(target=callback_server.serve_forever, daemon=True).start()
    redirect_uri = f"http://localhost:{callback_server.server_port}/cb"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page()
            page.goto(authorize_url(hubspot_emulator, redirect_uri=redirect_uri))
            page.get_by_label("Choose an account").select_option(str(users["marketplace@example.com"]))
            page.get_by_role("button", name="Connect app").click()
            page.wait_for_url(redirect_uri + "?*")
            assert page.get_by_role("heading").inner_text() == "Connected"
            browser.close()
    finally:
        callback_server.shutdown()
    assert landed["state"] == "st-1" and landed["code"]
