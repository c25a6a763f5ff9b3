"""HubSpot emulator, part 2: signatures, the project files, webhooks, and HubSpot calling the app.

A small test server stands in for the app: the emulator loads `hubspot_extensions/` with a proxy
from the declared host to that server, and everything it sends is checked with the SDK's own
signature helper (`hubspot.utils.signature.Signature`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests
from hubspot.automation.actions import CallbackCompletionRequest
from hubspot.utils.signature import Signature
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from emulators.hubspot import signatures
from emulators.hubspot.app import DEFAULT_CLIENT_SECRET

ROOT = Path(__file__).resolve().parent.parent
DECLARED = "https://ledgersync.example.com"
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://www.example.com/webhook_uri"
DOC_BODY = (
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    '"changeFlag":"NEW","appId":54321}]'
)


# --- signatures: NOTES §4 vectors, and the SDK's helper in both directions ---------------------------------------


def test_signature_vectors_from_notes():
    assert signatures.v1(SECRET, DOC_BODY) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert signatures.v2(SECRET, "GET", URI, "") == "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    assert (
        signatures.v2(SECRET, "POST", URI, '{"example_field":"example_value"}')
        == "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    )
    sdk_body = "{'example_field':'example_value'}"
    assert signatures.v1(SECRET, sdk_body) == "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    assert (
        signatures.v2(SECRET, "POST", URI, sdk_body)
        == "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
    )
    assert signatures.v3(SECRET, "POST", URI, sdk_body, 1693657560000) == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
    assert (
        signatures.v3(SECRET, "POST", URI, '{"example_field":"example_value"}', 1693657560000)
        == "oaA3M5dEtt6kFsseJD/Hv/x+JNl1vsoxFj4oxmwP6Go="
    )


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
@pytest.mark.parametrize("body", ["", '{"a":1}', DOC_BODY])
def test_signatures_agree_with_the_sdk_both_ways(version, body):
    timestamp = int(time.time() * 1000)
    ours = {
        "v1": lambda: signatures.v1(SECRET, body),
        "v2": lambda: signatures.v2(SECRET, "POST", URI, body),
        "v3": lambda: signatures.v3(SECRET, "POST", URI, body, timestamp),
    }[version]()
    theirs = Signature.get_signature(SECRET, body, version, http_uri=URI, http_method="POST", timestamp=timestamp)
    assert ours == theirs
    assert Signature.is_valid(
        ours, SECRET, body, http_uri=URI, http_method="POST", signature_version=version, timestamp=timestamp
    )


def test_v3_decodes_escapes_in_the_uri():
    encoded = "https://www.example.com/path%3Ax?email=a%40b.com"
    assert signatures.v3(SECRET, "GET", encoded, "", 1) == signatures.v3(
        SECRET, "GET", "https://www.example.com/path:x?email=a@b.com", "", 1
    )


# --- the app stand-in -----------------------------------------------------------------------------------------------


class AppStandIn:
    """Records every request; answers with queued (status, body, headers, delay) or 200 {}."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://localhost:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @Request.application
    def _app(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        with self.lock:
            self.requests.append(
                {
                    "method": request.method,
                    "url": request.url,
                    "path": request.path,
                    "args": request.args.to_dict(),
                    "headers": dict(request.headers),
                    "body": body,
                }
            )
            status, payload, headers, delay = self.answers.pop(0) if self.answers else (200, {}, {}, 0)
        if delay:
            time.sleep(delay)
        return Response(json.dumps(payload), status=status, headers=headers, mimetype="application/json")

    def answer(self, status=200, body=None, headers=None, delay=0, times=1) -> None:
        self.answers.extend([(status, body if body is not None else {}, headers or {}, delay)] * times)

    def received(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def app_server():
    server = AppStandIn()
    yield server
    server.server.shutdown()


@pytest.fixture
def project(hubspot_emulator, app_server):
    return hubspot_emulator.control(
        "POST",
        "/project",
        {"folder": str(ROOT / "hubspot_extensions"), "proxy": {DECLARED: app_server.url}},
        expect=201,
    )


@pytest.fixture
def installed(hubspot_emulator, project):
    """A portal with the app installed (after the project is loaded, so its token has the project's scopes)."""
    account = hubspot_emulator.new_account(paymentsProcessor="stripe")
    hubspot_emulator.control("POST", "/webhooks/config", {"autoDeliver": False})
    return account


def deliver(hubspot_emulator) -> list[dict]:
    return hubspot_emulator.control("POST", "/webhooks/deliver")["results"]


def delivered_events(app_server) -> list[dict]:
    return [event for r in app_server.received("/webhooks/hubspot") for event in json.loads(r["body"])]


# --- the project files ----------------------------------------------------------------------


def test_project_gives_the_app_its_scopes_redirect_and_subscriptions(project, hubspot_emulator, app_server):
    assert "crm.objects.invoices.write" in project["requiredScopes"] and "timeline" in project["requiredScopes"]
    assert project["redirectUrls"] == [f"{app_server.url}/oauth/hubspot/callback"]
    assert project["webhookTarget"] == f"{app_server.url}/webhooks/hubspot"
    assert set(project["actions"]) == {"create_paid_invoice", "create_paid_sales_receipt"}
    assert project["appEvents"] == ["invoice_payment"] and project["cards"] == ["ledgersync_card"]
    base = {"client_id": "ledgersync-emulator-client-id", "state": "s"}
    wrong_redirect = requests.get(
        f"{hubspot_emulator.url}/oauth/authorize",
        timeout=5,
        params={**base, "redirect_uri": "http://localhost:9/elsewhere", "scope": " ".join(project["requiredScopes"])},
    )
    assert wrong_redirect.status_code == 400 and "redirect" in wrong_redirect.text
    too_few_scopes = requests.get(
        f"{hubspot_emulator.url}/oauth/authorize",
        timeout=5,
        params={**base, "redirect_uri": project["redirectUrls"][0], "scope": "oauth crm.objects.contacts.read"},
    )
    assert too_few_scopes.status_code == 400 and "missing required" in too_few_scopes.text
    good = requests.get(
        f"{hubspot_emulator.url}/oauth/authorize",
        timeout=5,
        params={**base, "redirect_uri": project["redirectUrls"][0], "scope": " ".join(project["requiredScopes"])},
    )
    assert good.status_code == 200 and "Connect app" in good.text


def test_a_broken_project_is_refused(hubspot_emulator, tmp_path):
    (tmp_path / "app-hsmeta.json").write_text('{"uid": "a", "type": "app", "config": {}}')
    (tmp_path / "webhooks-hsmeta.json").write_text(
        json.dumps(
            {
                "uid": "w",
                "type": "webhooks",
                "config": {
                    "settings": {"targetUrl": "https://x.example.com/h"},
                    "subscriptions": {
                        "legacyCrmObjects": [{"subscriptionType": "contact.propertyChange", "active": True}]
                    },
                },
            }
        )
    )
    response = hubspot_emulator.http.post(f"{hubspot_emulator.url}/_emulator/project", json={"folder": str(tmp_path)})
    assert response.status_code == 400 and "propertyName" in response.json()["message"]


# --- webhooks ----------------------------------------------------------------------


def test_api_writes_become_signed_webhook_events(hubspot_emulator, installed, app_server):
    client = hubspot_emulator.sdk(installed["accessToken"])
    contact = client.crm.objects.basic_api.create(
        "contacts", {"properties": {"email": "w@example.com", "firstname": "Wen"}}
    )
    (delivery,) = deliver(hubspot_emulator)
    assert delivery["status"] == "delivered"
    (request,) = app_server.received("/webhooks/hubspot")
    headers = request["headers"]
    assert Signature.is_valid(
        headers["X-Hubspot-Signature"], DEFAULT_CLIENT_SECRET, request["body"], signature_version="v1"
    )
    assert headers["X-Hubspot-Signature-Version"] == "v1"
    assert Signature.is_valid(
        headers["X-Hubspot-Signature-V3"],
        DEFAULT_CLIENT_SECRET,
        request["body"],
        http_uri=request["url"],
        http_method="POST",
        signature_version="v3",
        timestamp=int(headers["X-Hubspot-Request-Timestamp"]),
    )
    events = json.loads(request["body"])
    kinds = sorted((e["subscriptionType"], e.get("propertyName")) for e in events)
    assert kinds == [
        ("contact.creation", None),
        ("contact.propertyChange", "email"),
        ("contact.propertyChange", "firstname"),
    ]
    creation = next(e for e in events if e["subscriptionType"] == "contact.creation")
    assert creation["objectId"] == int(contact.id) and creation["portalId"] == installed["portalId"]
    assert creation["appId"] == 4_242_001 and creation["attemptNumber"] == 0 and creation["changeFlag"] == "NEW"
    assert creation["changeSource"] == "INTEGRATION" and creation["sourceId"] == "4242001"
    assert isinstance(creation["eventId"], int) and isinstance(creation["occurredAt"], int)
    assert isinstance(creation["subscriptionId"], int)
    email_change = next(e for e in events if e.get("propertyName") == "email")
    assert email_change["propertyValue"] == "w@example.com"


def test_generic_object_events_carry_the_object_type_id(hubspot_emulator, installed, app_server):
    portal = installed["portalId"]
    for object_type, properties in (
        ("products", {"name": "Widget", "hs_sku": "W1"}),
        ("line_items", {"name": "L", "quantity": "1", "price": "3"}),
        ("invoices", {"hs_currency": "USD"}),
        ("commerce_payments", {"hs_initial_amount": "3", "hs_initiated_date": "1"}),
    ):
        hubspot_emulator.control(
            "POST", f"/accounts/{portal}/objects/{object_type}", {"properties": properties}, expect=201
        )
    deliver(hubspot_emulator)
    creations = {
        e["objectTypeId"]: e for e in delivered_events(app_server) if e["subscriptionType"] == "object.creation"
    }
    assert set(creations) == {"0-7", "0-8", "0-53", "0-101"}
    assert all(e["changeSource"] == "CRM_UI" and e["sourceId"].startswith("userId:") for e in creations.values())


def test_deletion_restore_merge_association_and_privacy_events(hubspot_emulator, installed, app_server):
    portal = installed["portalId"]
    client = hubspot_emulator.sdk(installed["accessToken"])
    keep = client.crm.objects.basic_api.create("contacts", {"properties": {"email": "keep@example.com"}})
    gone = client.crm.objects.basic_api.create("contacts", {"properties": {"email": "gone@example.com", "phone": "1"}})
    company = client.crm.objects.basic_api.create("companies", {"properties": {"name": "Co"}})
    deliver(hubspot_emulator)
    app_server.requests.clear()
    client.crm.associations.v4.basic_api.create_default("contacts", keep.id, "companies", company.id)
    requests.post(
        f"{hubspot_emulator.url}/crm/v3/objects/contacts/merge",
        timeout=5,
        json={"primaryObjectId": keep.id, "objectIdToMerge": gone.id},
        headers={"Authorization": f"Bearer {installed['accessToken']}"},
    ).raise_for_status()
    hubspot_emulator.control("DELETE", f"/accounts/{portal}/objects/companies/{company.id}")
    hubspot_emulator.control("POST", f"/accounts/{portal}/objects/companies/{company.id}/restore", expect=200)
    requests.post(
        f"{hubspot_emulator.url}/crm/v3/objects/contacts/gdpr-delete",
        timeout=5,
        json={"objectId": keep.id},
        headers={"Authorization": f"Bearer {installed['accessToken']}"},
    ).raise_for_status()
    deliver(hubspot_emulator)
    events = delivered_events(app_server)
    by_type = {}
    for event in events:
        by_type.setdefault(event["subscriptionType"], []).append(event)
    association = by_type["contact.associationChange"][0]
    assert association["associationType"] == "CONTACT_TO_COMPANY" and association["associationRemoved"] is False
    assert association["fromObjectId"] == int(keep.id) and association["toObjectId"] == int(company.id)
    assert by_type["company.associationChange"][0]["associationType"] == "COMPANY_TO_CONTACT"  # both sides
    merge = by_type["contact.merge"][0]
    assert (merge["primaryObjectId"], merge["mergedObjectIds"], merge["newObjectId"]) == (
        int(keep.id),
        [int(gone.id)],
        int(keep.id),
    )
    assert merge["numberOfPropertiesMoved"] >= 1
    assert [e["objectId"] for e in by_type["company.deletion"]] == [int(company.id)]
    assert [e["objectId"] for e in by_type["company.restore"]] == [int(company.id)]
    assert [e["objectId"] for e in by_type["contact.privacyDeletion"]] == [int(keep.id)]
    assert int(keep.id) in [e["objectId"] for e in by_type["contact.deletion"]]  # a privacy deletion also deletes


def test_events_go_out_in_batches_of_at_most_100(hubspot_emulator, installed, app_server):
    hubspot_emulator.control(
        "POST",
        f"/accounts/{installed['portalId']}/seed",
        {"objectType": "companies", "count": 130, "properties": {"name": "C{n}"}},
        expect=201,
    )
    deliveries = deliver(hubspot_emulator)
    sizes = [len(json.loads(r["body"])) for r in app_server.received("/webhooks/hubspot")]
    assert sum(sizes) == 260 and max(sizes) == 100 and len(deliveries) == 3  # creation + name change each


def test_failures_are_retried_on_the_emulator_clock(hubspot_emulator, installed, app_server):
    hubspot_emulator.control(
        "POST", f"/accounts/{installed['portalId']}/objects/companies", {"properties": {"name": "Retry Co"}}, expect=201
    )
    app_server.answer(status=500)
    (first,) = deliver(hubspot_emulator)
    assert first["status"] == "retrying" and first["outcomes"][0]["status"] == 500
    assert deliver(hubspot_emulator) == []  # not due yet
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 60})
    (second,) = deliver(hubspot_emulator)
    assert second["status"] == "delivered" and second["attempts"] == 2
    attempts = [json.loads(r["body"])[0]["attemptNumber"] for r in app_server.received("/webhooks/hubspot")]
    assert attempts == [0, 1]


def test_a_slow_answer_counts_as_a_failure(hubspot_emulator, installed, app_server):
    hubspot_emulator.control(
        "POST", f"/accounts/{installed['portalId']}/objects/companies", {"properties": {"name": "Slow Co"}}, expect=201
    )
    app_server.answer(delay=5.5)
    (delivery,) = deliver(hubspot_emulator)
    assert delivery["status"] == "retrying" and "Timeout" in delivery["outcomes"][0]["error"]


def test_ten_retries_over_a_day_then_failed(hubspot_emulator, installed, app_server):
    hubspot_emulator.control(
        "POST", f"/accounts/{installed['portalId']}/objects/companies", {"properties": {"name": "Down Co"}}, expect=201
    )
    app_server.answer(status=503, times=20)
    started = hubspot_emulator.control("GET", "/clock")["nowMs"]
    delivery = deliver(hubspot_emulator)[0]
    while delivery["status"] == "retrying":
        hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 36_000})
        delivery = deliver(hubspot_emulator)[0]
    assert delivery["status"] == "failed" and delivery["attempts"] == 11  # the first try and 10 retries
    spread_ms = hubspot_emulator.control("GET", "/clock")["nowMs"] - started
    assert spread_ms <= 11 * 36_000_000
    retry_gaps = sum(__import__("emulators.hubspot.assumptions", fromlist=["x"]).WEBHOOK_RETRY_DELAYS)
    assert 20 * 3600 <= retry_gaps <= 24 * 3600


def test_drop_duplicate_and_reorder_faults(hubspot_emulator, installed, app_server):
    portal = installed["portalId"]

    def company(name):
        hubspot_emulator.control("POST", f"/accounts/{portal}/objects/companies", {"properties": {"name": name}})

    hubspot_emulator.control("POST", "/webhooks/faults", {"action": "drop"}, expect=201)
    company("Dropped")
    assert [d["status"] for d in deliver(hubspot_emulator)] == []
    assert hubspot_emulator.control("GET", "/webhooks/deliveries")["results"][0]["status"] == "dropped"
    hubspot_emulator.control("POST", "/webhooks/faults", {"action": "duplicate"}, expect=201)
    company("Twice")
    deliver(hubspot_emulator)
    bodies = [r["body"] for r in app_server.received("/webhooks/hubspot")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    hubspot_emulator.control("POST", "/webhooks/faults", {"action": "reorder"}, expect=201)
    company("Backwards")
    deliver(hubspot_emulator)
    last = json.loads(app_server.received("/webhooks/hubspot")[-1]["body"])
    assert [e["subscriptionType"] for e in last] == ["company.propertyChange", "company.creation"]


def test_background_delivery_without_being_asked(hubspot_emulator, installed, app_server):
    hubspot_emulator.control("POST", "/webhooks/config", {"autoDeliver": True})
    hubspot_emulator.control(
        "POST", f"/accounts/{installed['portalId']}/objects/companies", {"properties": {"name": "Auto"}}, expect=201
    )
    deadline = time.monotonic() + 5
    while not app_server.received("/webhooks/hubspot"):
        assert time.monotonic() < deadline, "the background sender delivered nothing"
        time.sleep(0.05)


def test_no_webhooks_for_a_portal_without_the_app(hubspot_emulator, project, app_server):
    account = hubspot_emulator.new_account(installApp=False)
    hubspot_emulator.control(
        "POST", f"/accounts/{account['portalId']}/objects/companies", {"properties": {"name": "N"}}
    )
    assert deliver(hubspot_emulator) == []


# --- app card fetches ----------------------------------------------------------------------


def test_card_fetch_is_signed_v3_with_the_documented_parameters(hubspot_emulator, installed, app_server):
    portal = installed["portalId"]
    contact = hubspot_emulator.control(
        "POST", f"/accounts/{portal}/objects/contacts", {"properties": {"email": "card@example.com"}}, expect=201
    )
    app_server.answer(body={"summary": "2 invoices, 1 unpaid"})
    result = hubspot_emulator.control(
        "POST", "/cards/fetch", {"portalId": portal, "objectType": "contacts", "objectId": contact["id"]}, expect=200
    )
    assert result["status"] == 200 and result["body"] == {"summary": "2 invoices, 1 unpaid"}
    (request,) = app_server.received("/hubspot/card")
    assert request["method"] == "GET"
    assert request["args"]["appId"] == "4242001" and request["args"]["portalId"] == str(portal)
    assert request["args"]["associatedObjectId"] == contact["id"]
    assert request["args"]["associatedObjectType"] == "CONTACTS" and "@" in request["args"]["userEmail"]
    headers = request["headers"]
    assert Signature.is_valid(
        headers["X-Hubspot-Signature-V3"],
        DEFAULT_CLIENT_SECRET,
        "",
        http_uri=request["url"],
        http_method="GET",
        signature_version="v3",
        timestamp=int(headers["X-Hubspot-Request-Timestamp"]),
    )
    assert "X-Hubspot-Signature" not in headers  # hubspot.fetch signs v3 only


def test_card_fetch_retries_once_on_5xx_but_not_on_4xx(hubspot_emulator, installed, app_server):
    portal = installed["portalId"]
    app_server.answer(status=502)
    app_server.answer(body={"ok": True})
    result = hubspot_emulator.control(
        "POST", "/cards/fetch", {"portalId": portal, "objectType": "contacts", "objectId": "1"}
    )
    assert result["status"] == 200 and len(result["attempts"]) == 2
    app_server.answer(status=404, body={"error": "no such record"})
    result = hubspot_emulator.control(
        "POST", "/cards/fetch", {"portalId": portal, "objectType": "contacts", "objectId": "2"}
    )
    assert result["status"] == 404 and len(result["attempts"]) == 1
    outside = hubspot_emulator.http.post(
        f"{hubspot_emulator.url}/_emulator/cards/fetch",
        json={"portalId": portal, "objectType": "contacts", "objectId": "1", "url": "https://evil.example.com/x"},
    )
    assert outside.status_code == 400 and "permittedUrls" in outside.json()["message"]


# --- workflow actions ----------------------------------------------------------------------


def execute(hubspot_emulator, installed, contact_id, **inputs) -> dict:
    fields = {"itemSku": "W-1", "amount": "120.00", "paymentMethod": "cash", **inputs}
    return hubspot_emulator.control(
        "POST",
        "/actions/execute",
        {
            "portalId": installed["portalId"],
            "action": "create_paid_invoice",
            "objectType": "CONTACT",
            "objectId": contact_id,
            "inputFields": fields,
        },
        expect=201,
    )


@pytest.fixture
def contact_id(hubspot_emulator, installed):
    return hubspot_emulator.control(
        "POST",
        f"/accounts/{installed['portalId']}/objects/contacts",
        {"properties": {"email": "wf@example.com", "firstname": "Wf"}},
        expect=201,
    )["id"]


def test_action_execution_request_is_signed_and_documented(hubspot_emulator, installed, app_server, contact_id):
    app_server.answer(body={"outputFields": {"qboDocumentId": "130", "hs_execution_state": "SUCCESS"}})
    execution = execute(hubspot_emulator, installed, contact_id)
    assert execution["state"] == "SUCCESS" and execution["outputFields"]["qboDocumentId"] == "130"
    (request,) = app_server.received("/hubspot/actions/create-paid-invoice")
    body = json.loads(request["body"])
    assert body["callbackId"].startswith(f"ap-{installed['portalId']}-")
    assert body["origin"]["portalId"] == installed["portalId"] and body["origin"]["actionDefinitionId"]
    assert body["context"] == {"source": "WORKFLOWS", "workflowId": 192_814_114}
    assert body["object"]["objectId"] == int(contact_id) and body["object"]["objectType"] == "CONTACT"
    assert body["object"]["properties"]["email"] == "wf@example.com"
    assert body["inputFields"]["amount"] == "120.00"
    headers = request["headers"]
    assert Signature.is_valid(
        headers["X-Hubspot-Signature"],
        DEFAULT_CLIENT_SECRET,
        request["body"],
        http_uri=request["url"],
        http_method="POST",
        signature_version="v2",
    )
    assert Signature.is_valid(
        headers["X-Hubspot-Signature-V3"],
        DEFAULT_CLIENT_SECRET,
        request["body"],
        http_uri=request["url"],
        http_method="POST",
        signature_version="v3",
        timestamp=int(headers["X-Hubspot-Request-Timestamp"]),
    )


def test_action_answers_decide_the_state(hubspot_emulator, installed, app_server, contact_id):
    app_server.answer(body={"outputFields": {"errorCode": "QBO_REFUSED", "hs_execution_state": "FAIL_CONTINUE"}})
    assert execute(hubspot_emulator, installed, contact_id)["state"] == "FAIL_CONTINUE"
    app_server.answer(status=400, body={"message": "bad input"})
    assert execute(hubspot_emulator, installed, contact_id)["state"] == "FAILED"
    app_server.answer(status=204)
    assert execute(hubspot_emulator, installed, contact_id)["state"] == "SUCCESS"
    with pytest.raises(AssertionError):  # an input the action does not declare
        execute(hubspot_emulator, installed, contact_id, colour="red")


def test_blocked_and_async_executions_complete_by_callback(hubspot_emulator, installed, app_server, contact_id):
    client = hubspot_emulator.sdk(installed["accessToken"])
    app_server.answer(body={"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}})
    blocked = execute(hubspot_emulator, installed, contact_id)
    assert blocked["state"] == "BLOCK"
    client.automation.actions.callbacks_api.complete(
        blocked["callbackId"],
        CallbackCompletionRequest(output_fields={"hs_execution_state": "SUCCESS", "qboDocumentId": "131"}),
    )
    done = hubspot_emulator.control("GET", f"/actions/executions/{blocked['callbackId']}")
    assert done["state"] == "SUCCESS" and done["outputFields"]["qboDocumentId"] == "131"
    app_server.answer(body={"outputFields": {"hs_execution_state": "ASYNC"}}, times=2)
    first, second = (execute(hubspot_emulator, installed, contact_id) for _ in range(2))
    response = requests.post(
        f"{hubspot_emulator.url}/automation/v4/actions/callbacks/complete",
        timeout=5,
        headers={"Authorization": f"Bearer {installed['accessToken']}"},
        json={
            "inputs": [
                {"callbackId": e["callbackId"], "outputFields": {"hs_execution_state": "FAIL_CONTINUE"}}
                for e in (first, second)
            ]
        },
    )
    assert response.status_code == 204
    states = {e["callbackId"]: e["state"] for e in hubspot_emulator.control("GET", "/actions/executions")["results"]}
    assert states[first["callbackId"]] == states[second["callbackId"]] == "FAIL_CONTINUE"


def test_a_block_expires_and_the_workflow_continues(hubspot_emulator, installed, app_server, contact_id):
    app_server.answer(body={"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "PT1H"}})
    blocked = execute(hubspot_emulator, installed, contact_id)
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 3601})
    hubspot_emulator.control("POST", "/actions/process")
    assert hubspot_emulator.control("GET", f"/actions/executions/{blocked['callbackId']}")["state"] == "EXPIRED"


def test_5xx_and_429_are_retried_for_up_to_three_days(hubspot_emulator, installed, app_server, contact_id):
    app_server.answer(status=500)
    app_server.answer(status=429, headers={"Retry-After": "120"})
    app_server.answer(body={"outputFields": {"hs_execution_state": "SUCCESS"}})
    execution = execute(hubspot_emulator, installed, contact_id)
    assert execution["state"] == "RETRYING"
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 60})
    hubspot_emulator.control("POST", "/actions/process")
    assert hubspot_emulator.control("GET", f"/actions/executions/{execution['callbackId']}")["state"] == "RETRYING"
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 119})
    hubspot_emulator.control("POST", "/actions/process")
    assert len(app_server.received("/hubspot/actions/create-paid-invoice")) == 2  # Retry-After honoured
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 1})
    hubspot_emulator.control("POST", "/actions/process")
    assert hubspot_emulator.control("GET", f"/actions/executions/{execution['callbackId']}")["state"] == "SUCCESS"
    app_server.answer(status=503, times=100)
    failing = execute(hubspot_emulator, installed, contact_id)
    for _ in range(40):
        hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 8 * 3600})
        hubspot_emulator.control("POST", "/actions/process")
    final = hubspot_emulator.control("GET", f"/actions/executions/{failing['callbackId']}")
    assert final["state"] == "FAILED" and 5 <= len(final["attempts"]) <= 20


def test_options_fetch(hubspot_emulator, installed, app_server):
    app_server.answer(body={"options": [{"label": "Widget", "value": "W-1"}], "searchable": True})
    result = hubspot_emulator.control(
        "POST",
        "/actions/options",
        {"portalId": installed["portalId"], "action": "create_paid_invoice", "inputFieldName": "itemSku", "q": "wid"},
    )
    assert result["status"] == 200 and result["body"]["options"][0]["value"] == "W-1"
    (request,) = app_server.received("/hubspot/actions/options")
    body = json.loads(request["body"])
    assert body["inputFieldName"] == "itemSku" and body["fetchOptions"] == {"q": "wid"}
    assert Signature.is_valid(
        request["headers"]["X-Hubspot-Signature"],
        DEFAULT_CLIENT_SECRET,
        request["body"],
        http_uri=request["url"],
        http_method="POST",
        signature_version="v2",
    )


# --- timeline ----------------------------------------------------------------------


def test_app_events_on_the_contact_timeline(hubspot_emulator, installed, contact_id):
    headers = {"Authorization": f"Bearer {installed['accessToken']}"}
    event = {
        "eventTypeName": "invoice_payment",
        "objectId": contact_id,
        "id": "pay-1",
        "properties": {"invoiceNumber": "1037", "amount": "120.00", "currency": "USD", "paidInFull": "true"},
    }
    created = requests.post(
        f"{hubspot_emulator.url}/integrators/timeline/v4/events", json=event, headers=headers, timeout=5
    )
    assert created.status_code == 201 and created.json()["eventTypeName"] == "ae4242001_invoice_payment"
    again = requests.post(
        f"{hubspot_emulator.url}/integrators/timeline/v4/events",
        headers=headers,
        timeout=5,
        json={**event, "eventTypeName": "ae4242001_invoice_payment"},
    )
    assert again.status_code == 201
    stored = hubspot_emulator.control("GET", f"/accounts/{installed['portalId']}/timeline")["results"]
    assert len(stored) == 1 and stored[0]["properties"]["amount"] == "120.00"  # same id: one event
    for bad in (
        {**event, "properties": {"colour": "red"}},
        {**event, "properties": {"paidInFull": "maybe"}},
        {**event, "eventTypeName": "nope"},
    ):
        response = requests.post(
            f"{hubspot_emulator.url}/integrators/timeline/v4/events", json=bad, headers=headers, timeout=5
        )
        assert response.status_code in (400, 404)


def test_legacy_timeline_answers_as_for_an_app_without_templates(hubspot_emulator, installed, contact_id):
    from hubspot.crm.timeline import TimelineEvent
    from hubspot.crm.timeline.exceptions import NotFoundException

    client = hubspot_emulator.sdk(installed["accessToken"])
    with pytest.raises(NotFoundException) as missing:
        client.crm.timeline.events_api.create(
            TimelineEvent(event_template_id="1001", object_id=contact_id, tokens={"a": "b"})
        )
    assert json.loads(missing.value.body)["category"] == "OBJECT_NOT_FOUND"
