"""QBO emulator: OAuth through intuit-oauth (NOTES §5), webhooks (§6), and running it standalone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks.exceptions import AuthorizationException
from quickbooks.objects.customer import Customer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from emulators.quickbooks.app import DEFAULT_VERIFIER_TOKEN
from emulators.quickbooks.webhooks import signature
from tests.conftest import free_port, skip_or_fail_in_ci

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "reference" / "quickbooks" / "webhooks" / "webhook-samples-and-test-vectors.json"


def consent(qbo_emulator, auth_client, realm_id: str, state_token: str = "st-9") -> dict[str, str]:
    """Go through the authorize page as a browser would; return the callback's query."""
    url = auth_client.get_authorization_url([Scopes.ACCOUNTING], state_token=state_token)
    assert url.startswith(f"{qbo_emulator.url}/connect/oauth2?")
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "Connect" in page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    answer = requests.post(
        f"{qbo_emulator.url}/connect/oauth2/decision",
        timeout=5,
        allow_redirects=False,
        data={**form, "realm_id": realm_id, "decision": "approve"},
    )
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def test_discovery_consent_exchange_and_use(qbo_emulator):
    company = qbo_emulator.new_company(connect=False, name="Craig's Design")
    auth = qbo_emulator.auth_client()
    assert auth.token_endpoint == f"{qbo_emulator.url}/oauth2/v1/tokens/bearer"
    callback = consent(qbo_emulator, auth, company["realmId"])
    assert callback["state"] == "st-9" and callback["realmId"] == company["realmId"] and callback["code"]
    auth.get_bearer_token(callback["code"], realm_id=callback["realmId"])
    assert auth.access_token and auth.refresh_token and auth.expires_in == 3600
    assert auth.x_refresh_token_expires_in > 8_000_000 and auth.id_token is None  # no openid, no id_token
    qb = qbo_emulator.client({**company, "accessToken": auth.access_token, "refreshToken": auth.refresh_token})
    assert Customer.all(qb=qb) == []
    info = auth.get_user_info()
    assert info.json()["email"]


def _refused(auth_client, refresh_token: str) -> None:
    with pytest.raises(AuthClientError) as refused:
        auth_client.refresh(refresh_token=refresh_token)
    assert refused.value.status_code == 400 and json.loads(refused.value.content)["error"] == "invalid_grant"


def test_refresh_returns_the_same_token_for_a_day_then_rotates(qbo_emulator, qbo_company):
    """Intuit: the refresh token's value changes about every 24 hours; until then a refresh hands
    back the same value, and its rolling 100 days start again."""
    original = qbo_company["refreshToken"]
    auth = qbo_emulator.auth_client(refresh_token=original)
    auth.refresh()
    first_access = auth.access_token
    assert auth.refresh_token == original and first_access
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 23 * 3600})
    auth.refresh()
    assert auth.refresh_token == original and auth.access_token != first_access
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 3601})  # the value is now over a day old
    auth.refresh()
    rotated = auth.refresh_token
    assert rotated != original
    # The old value keeps working for the grace period (a day, by default), then dies.
    qbo_emulator.auth_client().refresh(refresh_token=original)
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 24 * 3600 + 1})
    _refused(qbo_emulator.auth_client(), original)
    # The latest value always works (and, being over a day old itself now, rotates).
    auth.refresh(refresh_token=rotated)
    assert auth.refresh_token not in (original, rotated)


def test_with_no_grace_and_no_rotation_period_a_lost_rotation_shows_at_once(qbo_emulator, qbo_company):
    config = qbo_emulator.control(
        "POST", "/config", {"refreshGraceSeconds": 0, "refreshRotationSeconds": 0}, expect=200
    )
    assert config["refreshGraceSeconds"] == 0 and config["refreshRotationSeconds"] == 0
    old = qbo_company["refreshToken"]
    auth = qbo_emulator.auth_client(refresh_token=old)
    auth.refresh()
    assert auth.refresh_token != old and auth.access_token
    _refused(qbo_emulator.auth_client(), old)
    qbo_emulator.control("POST", "/config", {"refreshGraceSeconds": 120}, expect=200)
    newer = auth.refresh_token
    auth.refresh()
    qbo_emulator.auth_client().refresh(refresh_token=newer)  # within the grace period it still works


def test_defaults_follow_what_intuit_documents(qbo_emulator):
    config = qbo_emulator.control("POST", "/config", {}, expect=200)
    assert config["refreshRotationSeconds"] == 24 * 3600
    assert config["refreshGraceSeconds"] == 24 * 3600
    assert qbo_emulator.control("POST", "/config", {"refreshGraceSeconds": "soon"})["error"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, ["ok", "ok"]),  # within the day both get the same value back
        ({"refreshGraceSeconds": 0, "refreshRotationSeconds": 0}, ["invalid_grant", "ok"]),
    ],
)
def test_two_workers_racing_one_refresh_token(qbo_emulator, qbo_company, config, expected):
    qbo_emulator.control("POST", "/config", config, expect=200)
    results, barrier = [], threading.Barrier(2)

    def refresh():
        barrier.wait()
        try:
            qbo_emulator.auth_client().refresh(refresh_token=qbo_company["refreshToken"])
            results.append("ok")
        except AuthClientError as error:
            results.append(json.loads(error.content)["error"])

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == expected


def test_revoke_disconnects(qbo_emulator, qbo_company, qbo):
    auth = qbo_emulator.auth_client(refresh_token=qbo_company["refreshToken"])
    assert auth.revoke(token=qbo_company["refreshToken"]) is True
    with pytest.raises(AuthorizationException):
        Customer.all(qb=qbo)
    with pytest.raises(AuthClientError):
        auth.refresh(refresh_token=qbo_company["refreshToken"])


def test_sandbox_companies_need_development_keys(qbo_emulator):
    sandbox = qbo_emulator.new_company(sandbox=True, connect=False)
    refused = consent(qbo_emulator, qbo_emulator.auth_client(sandbox=False), sandbox["realmId"])
    assert refused["error"] == "access_denied" and "code" not in refused
    allowed = consent(qbo_emulator, qbo_emulator.auth_client(sandbox=True), sandbox["realmId"])
    assert allowed["code"] and allowed["realmId"] == sandbox["realmId"]


def test_bad_keys_and_auto_approve(qbo_emulator):
    company = qbo_emulator.new_company(connect=False)
    auth = qbo_emulator.auth_client()
    auth.client_secret = "wrong"
    with pytest.raises(AuthClientError) as refused:
        auth.get_bearer_token("whatever", realm_id=company["realmId"])
    assert refused.value.status_code == 401
    qbo_emulator.control("POST", "/oauth/auto-approve", {"realmId": company["realmId"]}, expect=200)
    url = qbo_emulator.auth_client().get_authorization_url([Scopes.ACCOUNTING], state_token="s")
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert "realmId=" + company["realmId"] in answer.headers["Location"]


# --- webhooks ---------------------------------------------------------------------


def test_signature_vectors():
    if not VECTORS.exists():
        skip_or_fail_in_ci(f"{VECTORS} is not here (../shared/reference/quickbooks)")
    for vector in json.loads(VECTORS.read_text())["signature_test_vectors"]:
        assert signature(vector["verifier_token"], vector["payload"].encode()) == vector["intuit_signature"]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, float]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://localhost:{self.server.server_port}/webhooks/quickbooks"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @Request.application
    def app(self, request: Request) -> Response:
        self.requests.append({"headers": dict(request.headers), "body": request.get_data(as_text=True)})
        status, delay = self.answers.pop(0) if self.answers else (200, 0)
        time.sleep(delay)
        return Response("", status=status)


@pytest.fixture
def receiver(qbo_emulator):
    target = Receiver()
    qbo_emulator.control("POST", "/webhooks", {"url": target.url, "autoDeliver": False}, expect=200)
    yield target
    target.server.shutdown()


def deliver(qbo_emulator) -> list[dict]:
    return qbo_emulator.control("POST", "/webhooks/deliver")["results"]


def test_cloudevents_signed_with_the_verifier_token(qbo_emulator, receiver, qbo):
    customer = Customer()
    customer.DisplayName = "Hooked"
    customer.save(qb=qbo)
    (delivery,) = deliver(qbo_emulator)
    assert delivery["status"] == "delivered"
    (request,) = receiver.requests
    assert qbo.validate_webhook_signature(
        request["body"], request["headers"]["Intuit-Signature"], DEFAULT_VERIFIER_TOKEN
    )
    (event,) = json.loads(request["body"])
    assert event["specversion"] == "1.0" and event["type"] == "qbo.customer.created.v1"
    assert event["intuitentityid"] == customer.Id and event["intuitaccountid"] == qbo.company_id
    assert event["datacontenttype"] == "application/json" and event["data"] == {} and event["id"]
    assert request["headers"]["Intuit-Notification-Schema-Version"] == "0.1"


def test_legacy_format_and_several_realms_in_one_delivery(qbo_emulator, receiver):
    qbo_emulator.control("POST", "/webhooks", {"format": "legacy"}, expect=200)
    first, second = qbo_emulator.new_company(), qbo_emulator.new_company()
    for company in (first, second):
        qbo_emulator.control(
            "POST",
            f"/companies/{company['realmId']}/seed",
            {"entity": "Customer", "records": [{"DisplayName": f"C {company['realmId']}"}]},
            expect=201,
        )
    deliver(qbo_emulator)
    (request,) = receiver.requests
    body = json.loads(request["body"])
    realms = [n["realmId"] for n in body["eventNotifications"]]
    assert realms == [first["realmId"], second["realmId"]]
    entity = body["eventNotifications"][0]["dataChangeEvent"]["entities"][0]
    assert entity["name"] == "Customer" and entity["operation"] == "Create" and entity["lastUpdated"]


def test_retries_on_failure_and_on_a_slow_answer(qbo_emulator, receiver, qbo_company):
    receiver.answers += [(500, 0), (200, 3.5), (200, 0)]
    qbo_emulator.control(
        "POST",
        f"/companies/{qbo_company['realmId']}/seed",
        {"entity": "Customer", "records": [{"DisplayName": "Retry"}]},
        expect=201,
    )
    (first,) = deliver(qbo_emulator)
    assert first["status"] == "retrying" and first["outcomes"][0]["status"] == 500
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 10})
    (second,) = deliver(qbo_emulator)
    assert second["status"] == "retrying" and "Timeout" in second["outcomes"][1]["error"]
    qbo_emulator.control("POST", "/clock", {"advanceSeconds": 20})
    (third,) = deliver(qbo_emulator)
    assert third["status"] == "delivered" and third["attempts"] == 3


def test_drop_duplicate_reorder(qbo_emulator, receiver, qbo_company):
    def customer(name):
        qbo_emulator.control(
            "POST",
            f"/companies/{qbo_company['realmId']}/seed",
            {"entity": "Customer", "records": [{"DisplayName": name}, {"DisplayName": name + " 2"}]},
        )

    qbo_emulator.control("POST", "/webhooks/faults", {"action": "drop"}, expect=201)
    customer("Dropped")
    assert deliver(qbo_emulator) == [] and receiver.requests == []
    qbo_emulator.control("POST", "/webhooks/faults", {"action": "duplicate"}, expect=201)
    customer("Twice")
    deliver(qbo_emulator)
    assert len(receiver.requests) == 2 and receiver.requests[0]["body"] == receiver.requests[1]["body"]
    qbo_emulator.control("POST", "/webhooks/faults", {"action": "reorder"}, expect=201)
    customer("Backwards")
    deliver(qbo_emulator)
    ids = [e["intuitentityid"] for e in json.loads(receiver.requests[-1]["body"])]
    assert ids == sorted(ids, key=int, reverse=True)


# --- standalone ---------------------------------------------------------------------


def test_python_m_emulators_quickbooks(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.quickbooks", "--port", str(port), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://localhost:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.post(
                    f"{url}/_emulator/companies", json={"country": "US", "sandbox": False}, timeout=2
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert response.status_code == 201
        company = response.json()
        assert {"realmId", "accessToken", "refreshToken"} <= set(company)
        from intuitlib.client import AuthClient
        from quickbooks import QuickBooks

        auth = AuthClient(
            "qbo-emulator-client-id",
            "qbo-emulator-client-secret",
            "http://localhost:9/cb",
            environment=f"{url}/.well-known/openid_configuration/",
            access_token=company["accessToken"],
        )
        qb = QuickBooks(
            auth_client=auth, refresh_token=company["refreshToken"], company_id=company["realmId"], minorversion=75
        )
        qb.api_url_v3 = f"{url}/v3"
        assert Customer.all(qb=qb) == []
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("overrides", "title"),
    [
        ({"redirect_uri": "http://example.com/cb"}, "Invalid redirect URI"),
        ({"client_id": "nobody"}, "Unknown app"),
        ({"scope": "com.intuit.quickbooks.everything"}, "Invalid scope"),
    ],
)
def test_bad_authorize_requests_get_a_clear_page(qbo_emulator, overrides, title):
    params = {
        "client_id": "qbo-emulator-client-id",
        "response_type": "code",
        "redirect_uri": "http://localhost:9/cb",
        "scope": "com.intuit.quickbooks.accounting",
        "state": "s",
        **overrides,
    }
    response = requests.get(f"{qbo_emulator.url}/connect/oauth2", params=params, timeout=5)
    assert response.status_code == 400 and title in response.text
