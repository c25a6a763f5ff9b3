"""Change detection against the emulators: windows past HubSpot's 10,000 cap and QBO's 1,000 cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.clients.hubspot import HubSpotClient
from sync.clients.quickbooks import QuickBooksClient
from sync.cursors import hubspot_changes, quickbooks_changes


def emulator_now(emulator) -> datetime:
    return datetime.fromtimestamp(emulator.control("GET", "/clock")["nowMs"] / 1000, UTC)


def seed_contacts(hubspot_emulator, portal, count, start=0, step_seconds=0.0):
    for n in range(start, start + count):
        hubspot_emulator.control(
            "POST", f"/accounts/{portal}/objects/contacts", {"properties": {"email": f"c{n}@example.com"}}, expect=201
        )
        if step_seconds:
            hubspot_emulator.control("POST", "/clock", {"advanceSeconds": step_seconds})


def test_hubspot_changes_since_a_watermark(make_settings, hubspot_emulator, hubspot_account):
    portal = hubspot_account["portalId"]
    hubspot_emulator.control("POST", "/config", {"rateLimits": False})
    client = HubSpotClient(
        make_settings(hubspot_api_base_url=hubspot_emulator.url), portal, hubspot_account["accessToken"]
    )
    seed_contacts(hubspot_emulator, portal, 5)
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 1000})  # the token lives 1800 s
    since = emulator_now(hubspot_emulator)
    hubspot_emulator.control("POST", "/clock", {"advanceSeconds": 300})
    changed = client.search("contacts", {"limit": 2})["results"]
    for record in changed:
        client.update("contacts", record["id"], {"firstname": "Changed"})
    run_started = emulator_now(hubspot_emulator)
    changes = hubspot_changes(client, "contacts", "lastmodifieddate", since, run_started)
    assert set(changes.records) == {r["id"] for r in changed}
    assert since < changes.watermark <= run_started
    early = hubspot_changes(client, "contacts", "lastmodifieddate", since, since + timedelta(seconds=1))
    assert early.watermark == since + timedelta(seconds=1)  # never past the run's start


def test_hubspot_changes_rewindow_past_the_cap(make_settings, hubspot_emulator, hubspot_account):
    portal = hubspot_account["portalId"]
    hubspot_emulator.control("POST", "/config", {"rateLimits": False})
    client = HubSpotClient(
        make_settings(hubspot_api_base_url=hubspot_emulator.url), portal, hubspot_account["accessToken"]
    )
    hubspot_emulator.control("POST", "/clock", {"speed": 0.000001})  # frozen: many records share a timestamp
    seed_contacts(hubspot_emulator, portal, 70)  # 70 ties
    seed_contacts(hubspot_emulator, portal, 60, start=70, step_seconds=1)  # then distinct timestamps
    everything = hubspot_changes(
        client, "contacts", "lastmodifieddate", None, emulator_now(hubspot_emulator), page_size=10, cap=30
    )  # a cap of 30 stands in for 10,000
    assert len(everything.records) == 130
    assert everything.requests > 13  # it had to re-window, and walk the ties by id


def test_quickbooks_cdc_reads_on_past_the_1000_cap(make_settings, qbo_emulator, qbo_company):
    realm = qbo_company["realmId"]
    settings = make_settings(
        qbo_api_base_url=qbo_emulator.url,
        intuit_discovery_url=f"{qbo_emulator.url}/.well-known/openid_configuration/",
        intuit_client_id="qbo-emulator-client-id",
        intuit_client_secret="qbo-emulator-client-secret",
    )
    client = QuickBooksClient(settings, realm, qbo_company["accessToken"])
    since = emulator_now(qbo_emulator) - timedelta(hours=1)
    qbo_emulator.control("POST", "/clock", {"speed": 0.000001})
    for block in range(3):
        qbo_emulator.control(
            "POST",
            f"/companies/{realm}/seed",
            {"entity": "Customer", "count": 450, "record": {"DisplayName": f"B{block} C{{n}}"}},
            expect=201,
        )
        qbo_emulator.control("POST", "/clock", {"advanceSeconds": 2})
    first_id = client.query("select * from Customer where DisplayName = 'B0 C1'")["Customer"][0]["Id"]
    sync_token = client.read("Customer", first_id)["SyncToken"]
    client.sparse_update("Customer", first_id, sync_token, {"Notes": "changed"})
    changes = quickbooks_changes(client, ["Customer"], since, emulator_now(qbo_emulator))
    assert len(changes.records) == 1350 and changes.records[f"Customer:{first_id}"]["Notes"] == "changed"
    assert changes.requests >= 2 and changes.watermark


def test_quickbooks_over_1000_changes_in_one_second_and_old_watermarks(make_settings, qbo_emulator, qbo_company):
    realm = qbo_company["realmId"]
    settings = make_settings(
        qbo_api_base_url=qbo_emulator.url,
        intuit_discovery_url=f"{qbo_emulator.url}/.well-known/openid_configuration/",
        intuit_client_id="qbo-emulator-client-id",
        intuit_client_secret="qbo-emulator-client-secret",
    )
    client = QuickBooksClient(settings, realm, qbo_company["accessToken"])
    qbo_emulator.control("POST", "/clock", {"speed": 0.000001})
    since = emulator_now(qbo_emulator) - timedelta(minutes=5)
    qbo_emulator.control(
        "POST",
        f"/companies/{realm}/seed",
        {"entity": "Customer", "count": 1005, "record": {"DisplayName": "Same second {n}"}},
        expect=201,
    )
    changes = quickbooks_changes(client, ["Customer"], since, emulator_now(qbo_emulator))
    assert len(changes.records) == 1005
    old = quickbooks_changes(client, ["Customer"], since - timedelta(days=45), emulator_now(qbo_emulator))
    assert len(old.records) == 1005  # past CDC's 30 days: read with queries
