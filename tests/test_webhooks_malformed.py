"""Signed deliveries whose JSON is valid but not shaped as expected: never a 500, never a lost good event.

A malformed delivery (not the sender's top-level shape, not JSON) is a 400 with the reason and
stores nothing; a well-formed delivery stores its good events and keeps the others aside as
`ignored`, with the reason. On SQLite and on PostgreSQL, where an over-long id or a NUL byte used
to fail the whole insert with a DataError. Each delivery is signed as the sender signs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from sync.store.models import WebhookEvent
from tests.conftest import BOTH_DATABASES, stack_on_both_databases, with_contacts_sync

HUBSPOT_SECRET = "ledgersync-emulator-client-secret"
INTUIT_TOKEN = "qbo-emulator-verifier-token"
stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)
installed = pytest.fixture(name="installed")(with_contacts_sync)  # the events below are ones a sync uses


def send_hubspot(stack, body: bytes) -> requests.Response:
    from emulators.hubspot import signatures

    timestamp = int(time.time() * 1000)
    url = f"{stack.url}/webhooks/hubspot"
    headers = signatures.headers(HUBSPOT_SECRET, "POST", url, body.decode(), timestamp, versions=("v3",))
    return requests.post(url, data=body, timeout=10, headers={"Content-Type": "application/json", **headers})


def send_quickbooks(stack, body: bytes) -> requests.Response:
    signature = base64.b64encode(hmac.new(INTUIT_TOKEN.encode(), body, hashlib.sha256).digest()).decode()
    return requests.post(
        f"{stack.url}/webhooks/quickbooks",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/json", "intuit-signature": signature},
    )


def rows(stack) -> list[WebhookEvent]:
    with stack.db() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def forget(stack) -> None:
    with stack.db() as session:
        session.execute(delete(WebhookEvent))
        session.commit()


def good_hubspot(portal: int, object_id: int = 51) -> dict:
    return {
        "eventId": object_id,
        "portalId": portal,
        "subscriptionType": "contact.propertyChange",
        "objectId": object_id,
        "propertyName": "phone",
        "propertyValue": "555",
        "occurredAt": 1_760_000_000_000,
        "attemptNumber": 0,
    }


BAD_HUBSPOT_EVENTS = [
    1,
    "x",
    None,
    [],
    {"portalId": 1, "subscriptionType": 5, "objectId": 1},
    {"portalId": 1, "subscriptionType": "contact.creation", "objectId": 1, "occurredAt": 1e300},
    {"portalId": 1, "subscriptionType": "contact.creation", "objectId": 1, "occurredAt": 10**20},
    {"portalId": 10**29, "subscriptionType": "contact.creation", "objectId": 1},
    {"portalId": 1, "subscriptionType": "contact.creation", "objectId": "9" * 300},
    {"portalId": 1, "subscriptionType": "contact.creation", "objectId": 1, "objectTypeId": "x" * 100},
    {"portalId": 1, "subscriptionType": "c" * 200, "objectId": 1},
    {"portalId": 1},
    {"portalId": True, "subscriptionType": "contact.creation"},
]


def test_hubspot_events_that_cannot_be_used_are_kept_aside_and_the_good_ones_stored(stack, installed):
    account, *_ = installed
    portal = account["portalId"]
    for bad in BAD_HUBSPOT_EVENTS:
        forget(stack)
        body = json.dumps([good_hubspot(portal), bad]).encode()
        answer = send_hubspot(stack, body)
        assert answer.status_code == 200, (bad, answer.text)
        assert answer.json() == {"stored": 1, "duplicates": 0, "ignored": 1}, bad
        good, aside = rows(stack)
        assert good.status == "pending" and good.object_id == "51" and good.installation_id is not None
        assert aside.status == "ignored" and aside.installation_id is None and aside.error, bad
        assert aside.event_type == "invalid" and aside.object_id is None


def test_a_nul_byte_in_a_hubspot_event_is_stored_without_it(stack, installed):
    account, *_ = installed
    event = {**good_hubspot(account["portalId"]), "propertyValue": "a\u0000b", "extra\u0000": "c"}
    answer = send_hubspot(stack, json.dumps([event]).encode())
    assert answer.status_code == 200 and answer.json()["stored"] == 1
    (row,) = rows(stack)
    assert row.payload["propertyValue"] == "ab" and row.payload["extra"] == "c"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{}", "JSON array"),
        (b'{"events": []}', "JSON array"),
        (b"1", "JSON array"),
        (b"not json", "not JSON"),
        (b'[{"portalId": 1, "subscriptionType": "contact.creation", "occurredAt": Infinity}]', "not JSON"),
        (b'[{"portalId": 1, "subscriptionType": "contact.creation", "occurredAt": NaN}]', "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested"),
        (b"[" * 40 + b"]" * 40, "nested"),
        (json.dumps([{"portalId": 1, "subscriptionType": "contact.creation"}] * 1001).encode(), "at most"),
    ],
)
def test_a_malformed_hubspot_delivery_is_a_400_with_the_reason(stack, installed, body, reason):
    answer = send_hubspot(stack, body)
    assert answer.status_code == 400 and reason in answer.json()["error"]
    assert rows(stack) == []


def good_cloud_event(realm: str, entity_id: str = "7") -> dict:
    return {
        "specversion": "1.0",
        "id": f"evt-{entity_id}",
        "source": "intuit.test",
        "type": "qbo.customer.updated.v1",
        "datacontenttype": "application/json",
        "time": "2026-01-05T10:00:00.000Z",
        "intuitentityid": entity_id,
        "intuitaccountid": realm,
        "data": {},
    }


def good_legacy_entity(entity_id: str = "7") -> dict:
    return {"name": "Customer", "id": entity_id, "operation": "Update", "lastUpdated": "2026-01-05T10:00:00-0800"}


@pytest.mark.parametrize(
    "bad",
    [
        1,
        "x",
        None,
        {"type": "qbo.customer.updated.v1", "intuitaccountid": "1" * 200, "intuitentityid": "1"},
        {"type": "qbo.customer.updated.v1", "intuitaccountid": 5, "intuitentityid": "1"},
        {"type": "qbo.customer.updated.v1", "intuitaccountid": "123", "intuitentityid": "9" * 100},
        {"type": 7, "intuitaccountid": "123", "intuitentityid": "1"},
        {"type": "nonsense", "intuitaccountid": "123", "intuitentityid": "1"},
    ],
)
def test_cloudevents_that_cannot_be_used_are_kept_aside(stack, installed, bad):
    _account, _users, _browser, company, _page = installed
    answer = send_quickbooks(stack, json.dumps([good_cloud_event(company["realmId"]), bad]).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 1, "duplicates": 0, "ignored": 1}
    good, aside = rows(stack)
    assert good.status == "pending" and good.object_id == "7" and good.qbo_company_id is not None
    assert aside.status == "ignored" and aside.error and aside.installation_id is None


@pytest.mark.parametrize(
    "bad_notification",
    [
        5,
        {"realmId": "123", "dataChangeEvent": None},
        {"realmId": "123", "dataChangeEvent": {"entities": "x"}},
        {"realmId": 123, "dataChangeEvent": {"entities": []}},
        {"realmId": "1" * 200, "dataChangeEvent": {"entities": []}},
    ],
)
def test_legacy_notifications_that_cannot_be_used_are_kept_aside(stack, installed, bad_notification):
    _account, _users, _browser, company, _page = installed
    good = {"realmId": company["realmId"], "dataChangeEvent": {"entities": [good_legacy_entity()]}}
    answer = send_quickbooks(stack, json.dumps({"eventNotifications": [good, bad_notification]}).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 1, "duplicates": 0, "ignored": 1}
    stored_row, aside = rows(stack)
    assert stored_row.status == "pending" and stored_row.event_type == "customer.update"
    assert aside.status == "ignored" and aside.error


@pytest.mark.parametrize(
    "bad_entity",
    [7, None, "Customer", {"name": "Customer", "id": "9" * 100, "operation": "Update"}, {"name": 5, "id": "1"}],
)
def test_legacy_entities_that_cannot_be_used_are_kept_aside(stack, installed, bad_entity):
    _account, _users, _browser, company, _page = installed
    entities = [good_legacy_entity(), bad_entity]
    body = {"eventNotifications": [{"realmId": company["realmId"], "dataChangeEvent": {"entities": entities}}]}
    answer = send_quickbooks(stack, json.dumps(body).encode())
    assert answer.status_code == 200 and answer.json() == {"stored": 1, "duplicates": 0, "ignored": 1}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{}", "not a QuickBooks webhook delivery"),
        (b'{"eventNotifications": "x"}', "eventNotifications"),
        (b'{"eventNotifications": 5}', "eventNotifications"),
        (b"7", "not a QuickBooks webhook delivery"),
        (b"[{]", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested"),
    ],
)
def test_a_malformed_quickbooks_delivery_is_a_400_with_the_reason(stack, installed, body, reason):
    answer = send_quickbooks(stack, body)
    assert answer.status_code == 400 and reason in answer.json()["error"]
    assert rows(stack) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
HUBSPOT_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "portalId": JSON_VALUES | st.integers(),
        "subscriptionType": JSON_VALUES | st.sampled_from(["contact.creation", "object.propertyChange"]),
        "objectId": JSON_VALUES | st.integers(),
        "objectTypeId": JSON_VALUES | st.sampled_from(["0-1", "0-53"]),
        "occurredAt": JSON_VALUES | st.integers(),
    },
)


def test_generated_deliveries_never_get_a_500_and_store_one_row_per_event(stack, installed):
    """hypothesis: any JSON array of event-like objects (or anything else) in a signed delivery."""

    @settings(max_examples=40, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(events=st.lists(HUBSPOT_LIKE | JSON_VALUES, max_size=5), quickbooks=st.booleans())
    def deliver(events, quickbooks):
        forget(stack)
        body = json.dumps(events).encode()
        answer = send_quickbooks(stack, body) if quickbooks else send_hubspot(stack, body)
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 200:
            counts = answer.json()
            assert counts["stored"] + counts["duplicates"] + counts["ignored"] == len(events)
            assert len(rows(stack)) == counts["stored"] + counts["ignored"]
        else:
            assert rows(stack) == []

    deliver()
