"""HubSpot emulator: rate limits (NOTES §2), the control API, and running it standalone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hubspot.crm.objects import ApiException as ObjectsApiException

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def get(emulator, account, path: str) -> requests.Response:
    return requests.get(emulator.url + path, headers={"Authorization": f"Bearer {account['accessToken']}"}, timeout=10)


def search(emulator, account) -> requests.Response:
    return requests.post(
        emulator.url + "/crm/v3/objects/contacts/search",
        json={},
        headers={"Authorization": f"Bearer {account['accessToken']}"},
        timeout=10,
    )


# --- rate limits ----------------------------------------------------------------------------------------


def test_110_requests_per_10_seconds_with_headers(hubspot_emulator, hubspot_account):
    hubspot_emulator.control("POST", "/clock", {"speed": 0.000001})  # freeze time: the window cannot slide
    remaining = []
    for _ in range(110):
        response = get(hubspot_emulator, hubspot_account, "/crm/v3/objects/contacts")
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Max"] == "110"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(response.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining[0] == 109 and remaining[-1] == 0
    limited = get(hubspot_emulator, hubspot_account, "/crm/v3/objects/contacts")
    assert limited.status_code == 429
    body = limited.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["status"] == "error" and body["correlationId"] and body["requestId"]
    assert "Retry-After" not in limited.headers
    # Another portal has its own budget.
    other = hubspot_emulator.new_account()
    assert get(hubspot_emulator, other, "/crm/v3/objects/contacts").status_code == 200
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 10})
    assert get(hubspot_emulator, hubspot_account, "/crm/v3/objects/contacts").status_code == 200


def test_search_is_limited_apart_at_5_per_second_without_headers(hubspot_emulator, hubspot_account):
    hubspot_emulator.control("POST", "/clock", {"speed": 0.000001})
    for _ in range(5):
        response = search(hubspot_emulator, hubspot_account)
        assert response.status_code == 200
        assert not [h for h in response.headers if h.lower().startswith("x-hubspot-ratelimit")]
    limited = search(hubspot_emulator, hubspot_account)
    assert limited.status_code == 429 and limited.json()["errorType"] == "RATE_LIMIT"
    # Searches did not spend the 110/10 s budget.
    plain = get(hubspot_emulator, hubspot_account, "/crm/v3/objects/contacts")
    assert plain.headers["X-HubSpot-RateLimit-Remaining"] == "109"
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 1})
    assert search(hubspot_emulator, hubspot_account).status_code == 200


def test_sdk_sees_429_as_an_api_exception(hubspot_emulator, hubspot_account, hubspot):
    hubspot_emulator.control("POST", "/clock", {"speed": 0.000001})
    for _ in range(110):
        hubspot.crm.objects.basic_api.get_page("contacts")
    with pytest.raises(ObjectsApiException) as limited:
        hubspot.crm.objects.basic_api.get_page("contacts")
    assert limited.value.status == 429 and json.loads(limited.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"


def test_a_compressed_clock_shortens_the_windows(hubspot_emulator, hubspot_account):
    hubspot_emulator.control("POST", "/clock", {"speed": 0.000001})
    for _ in range(5):
        search(hubspot_emulator, hubspot_account)
    assert search(hubspot_emulator, hubspot_account).status_code == 429
    hubspot_emulator.control("POST", "/clock", {"speed": 100})  # 1 emulated second = 10 ms
    time.sleep(0.05)
    assert search(hubspot_emulator, hubspot_account).status_code == 200


def test_limits_can_be_turned_off(hubspot_emulator, hubspot_account):
    assert hubspot_emulator.control("POST", "/config", {"rateLimits": False}) == {"rateLimits": False}
    hubspot_emulator.control("POST", "/clock", {"speed": 0.000001})
    assert all(search(hubspot_emulator, hubspot_account).status_code == 200 for _ in range(20))


# --- control API ------------------------------------------------------------------------------------------


def test_account_creation_returns_a_usable_token(hubspot_emulator):
    account = hubspot_emulator.new_account(tier="starter", timeZone="Europe/Lisbon", currency="EUR")
    assert isinstance(account["portalId"], int) and account["accessToken"] and account["refreshToken"]
    assert account["tier"] == "starter" and account["currency"] == "EUR" and account["timeZone"] == "Europe/Lisbon"
    assert account["users"][0]["superAdmin"] is True
    assert hubspot_emulator.sdk(account["accessToken"]).crm.contacts.basic_api.get_page().results == []
    bad = hubspot_emulator.http.post(f"{hubspot_emulator.url}/_emulator/accounts", json={"tier": "platinum"})
    assert bad.status_code == 400


def test_request_log_counts_by_endpoint_and_method(hubspot_emulator, hubspot_account, hubspot):
    hubspot_emulator.control("DELETE", "/requests")
    created = hubspot.crm.objects.basic_api.create("contacts", {"properties": {"email": "l@example.com"}})
    for _ in range(3):
        hubspot.crm.objects.basic_api.get_by_id("contacts", created.id)
    log = hubspot_emulator.control("GET", "/requests")
    assert log["byEndpoint"] == {
        "GET /crm/v3/objects/<object_name>/<record_id>": 3,
        "POST /crm/v3/objects/<object_name>": 1,
    }
    assert log["total"] == 4 and log["entries"][-1]["status"] == 200
    assert log["entries"][-1]["portalId"] == hubspot_account["portalId"]


def test_faults_status_latency_and_timeout(hubspot_emulator, hubspot_account, hubspot):
    from hubspot.crm.objects.exceptions import ServiceException

    hubspot_emulator.control(
        "POST", "/faults", {"path": "/crm/v3/objects/contacts", "method": "GET", "status": 503, "count": 2}, expect=201
    )
    for _ in range(2):
        with pytest.raises(ServiceException):
            hubspot.crm.objects.basic_api.get_page("contacts")
    assert hubspot.crm.objects.basic_api.get_page("contacts").results == []  # the fault is spent
    hubspot_emulator.control("POST", "/faults", {"path": "/crm/v3/objects", "latencyMs": 300}, expect=201)
    started = time.monotonic()
    hubspot.crm.objects.basic_api.get_page("contacts")
    assert time.monotonic() - started >= 0.3
    hubspot_emulator.control("POST", "/faults", {"path": "/crm/v3/objects", "timeoutSeconds": 2}, expect=201)
    with pytest.raises(requests.Timeout):
        get_with_timeout = requests.get(
            hubspot_emulator.url + "/crm/v3/objects/contacts",
            timeout=0.5,
            headers={"Authorization": f"Bearer {hubspot_account['accessToken']}"},
        )
        del get_with_timeout
    assert hubspot_emulator.control("GET", "/faults")["results"] == []


def test_fault_429_has_the_rate_limit_body(hubspot_emulator, hubspot_account):
    hubspot_emulator.control("POST", "/faults", {"path": "/crm", "status": 429})
    response = get(hubspot_emulator, hubspot_account, "/crm/v3/objects/contacts")
    assert response.status_code == 429 and response.json()["errorType"] == "RATE_LIMIT"


def test_seed_and_reset(hubspot_emulator, hubspot_account, hubspot):
    seeded = hubspot_emulator.control(
        "POST",
        f"/accounts/{hubspot_account['portalId']}/seed",
        {"objectType": "contacts", "count": 3, "properties": {"email": "s{n}@example.com", "firstname": "S{n}"}},
        expect=201,
    )
    assert seeded["created"] == 3
    assert sorted(c.properties["email"] for c in hubspot.crm.contacts.get_all()) == [
        "s1@example.com",
        "s2@example.com",
        "s3@example.com",
    ]
    invalid = hubspot_emulator.http.post(
        f"{hubspot_emulator.url}/_emulator/accounts/{hubspot_account['portalId']}/seed",
        json={"objectType": "contacts", "records": [{"properties": {"email": "bad"}}]},
    )
    assert invalid.status_code == 400  # seeding follows the same validation as the API
    hubspot_emulator.control("POST", "/reset")
    with pytest.raises(ObjectsApiException):
        hubspot.crm.objects.basic_api.get_page("contacts")


def test_clock_moves_forward_only(hubspot_emulator):
    before = hubspot_emulator.control("GET", "/clock")["nowMs"]
    after = hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 3600})["nowMs"]
    assert after - before >= 3_600_000
    refused = hubspot_emulator.http.post(f"{hubspot_emulator.url}/_emulator/clock", json={"advanceSeconds": -5})
    assert refused.status_code == 400


# --- standalone -------------------------------------------------------------------------------------------


def test_python_m_emulators_hubspot_serves_on_the_given_port():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.hubspot", "--port", str(port), "--no-rate-limits", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://localhost:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.post(f"{url}/_emulator/accounts", json={"tier": "professional"}, timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
                time.sleep(0.1)
        assert response.status_code == 201
        account = response.json()
        assert {"portalId", "accessToken", "refreshToken"} <= set(account)
        from hubspot import HubSpot

        client = HubSpot(access_token=account["accessToken"], host=url)
        for _ in range(120):  # more than 110: --no-rate-limits
            client.crm.objects.basic_api.get_page("contacts")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
