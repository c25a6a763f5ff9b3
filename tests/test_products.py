"""Products ⇄ items end to end: the runner, the official SDKs and both emulators, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sync.runner import run_object
from sync.setup import set_up
from sync.store.models import QboCompany, RecordLink, SyncActivity, SyncSettings
from tests.conftest import BOTH_DATABASES, assert_run_writes_nothing, hubspot_sdk, stack_on_both_databases

stack_database_url = pytest.fixture(params=BOTH_DATABASES, name="stack_database_url")(stack_on_both_databases)
PRODUCT_PROPERTIES = [
    "name",
    "description",
    "price",
    "hs_sku",
    "hs_cost_of_goods_sold",
    "hs_product_type",
    "ledgersync_purchase_description",
    "ledgersync_qbo_item_id",
]


@pytest.fixture
def shop(stack, installed):
    """A connected company whose QBO has an income, an expense and an inventory asset account."""
    account, _users, _browser, company, _page = installed
    with stack.db() as session:
        company_id = session.scalar(select(QboCompany)).id
    stack.hubspot.control("POST", "/config", {"rateLimits": False})
    return account["portalId"], company["realmId"], company_id


def _accounts(stack, realm) -> dict[str, str]:
    with stack.qbo.state.lock:
        return {a["Name"]: a["Id"] for a in stack.qbo.state.companies[realm].table("Account").values()}


def _first_income_account(stack, realm) -> str:
    with stack.qbo.state.lock:
        accounts = stack.qbo.state.companies[realm].table("Account").values()
        return min((a["Id"] for a in accounts if a["AccountType"] == "Income" and a.get("Active", True)), key=int)


def _item(stack, realm, **fields) -> dict:
    accounts = _accounts(stack, realm)
    body = {"Type": "Service", "IncomeAccountRef": {"value": accounts["Services"]}, **fields}
    if body["Type"] == "Inventory":
        body.update(
            TrackQtyOnHand=True,
            QtyOnHand=5,
            InvStartDate="2026-01-01",
            AssetAccountRef={"value": accounts["Inventory Asset"]},
            ExpenseAccountRef={"value": accounts["Cost of Goods Sold"]},
        )
    if body["Type"] in ("Category", "Group"):
        body.pop("IncomeAccountRef")
    return stack.qbo.control("POST", f"/companies/{realm}/item", body, expect=200)["Item"]


def _product(stack, portal, **properties) -> dict:
    return stack.hubspot.control("POST", f"/accounts/{portal}/objects/products", {"properties": properties}, expect=201)


def hubspot_products(stack) -> dict[str, dict]:
    """Live products by name, with the properties we sync."""
    found = hubspot_sdk(stack).crm.products.get_all(properties=PRODUCT_PROPERTIES)
    return {p.properties["name"]: {**p.properties, "id": p.id} for p in found}


def qbo_items(stack, realm) -> dict[str, dict]:
    with stack.qbo.state.lock:
        return {i["Name"]: dict(i) for i in stack.qbo.state.companies[realm].table("Item").values()}


def _row(stack, **ids) -> RecordLink:
    with stack.db() as session:
        return session.scalar(select(RecordLink).filter_by(object_type="products", **ids))


def _activity(stack, link: RecordLink) -> list[str]:
    with stack.db() as session:
        rows = session.scalars(select(SyncActivity).where(SyncActivity.record_link_id == link.id))
        return [f"{row.action}: {row.message}" for row in rows]


def test_recommended_set_up_brings_every_product_and_service_into_hubspot(stack, shop):
    portal, realm, company_id = shop
    consulting = _item(stack, realm, Name="Consulting", Sku="C-1", UnitPrice=150.5, Description="An hour")
    widget = _item(
        stack, realm, Name="Widget", Sku="W-1", Type="NonInventory", UnitPrice=19.99, PurchaseCost=4.1,
        PurchaseDesc="Bought in bulk", ExpenseAccountRef={"value": _accounts(stack, realm)["Cost of Goods Sold"]},
    )  # fmt: skip
    gizmo = _item(stack, realm, Name="Gizmo", Sku="G-1", Type="Inventory", UnitPrice=7)
    hardware = _item(stack, realm, Name="Hardware", Type="Category")
    loose = _item(stack, realm, Name="Loose", UnitPrice=1)  # no SKU
    twins = [_item(stack, realm, Name=f"Twin {n}", Sku="DUP") for n in (1, 2)]
    existing = _product(stack, portal, name="Consulting (old name)", hs_sku=" c-1 ", price="99")

    settings = set_up(stack.runtime, company_id, "products")
    assert settings.direction == "qbo_to_hubspot"  # the recommended set-up, pre-filled
    assert settings.options["income_account_id"] == _first_income_account(stack, realm)  # shown by `sync setup`
    summary = run_object(stack.runtime, company_id, "products")
    assert summary.counts.get("link") == 1 and summary.counts.get("create") == 2, summary.counts

    products = hubspot_products(stack)
    # matched by SKU (trimmed, any case): QBO wins in a one-way sync QBO → HubSpot
    assert products["Consulting"]["id"] == existing["id"] and products["Consulting"]["price"] == "150.5"
    assert products["Consulting"]["description"] == "An hour"
    assert products["Widget"]["price"] == "19.99" and products["Widget"]["hs_cost_of_goods_sold"] == "4.1"
    assert products["Widget"]["ledgersync_purchase_description"] == "Bought in bulk"
    assert (
        products["Widget"]["hs_product_type"] == "non_inventory" and products["Gizmo"]["hs_product_type"] == "inventory"
    )
    assert products["Gizmo"]["ledgersync_qbo_item_id"] == gizmo["Id"]
    assert set(products) == {"Consulting", "Widget", "Gizmo"}
    assert _row(stack, qbo_id=consulting["Id"]).hubspot_id == existing["id"]
    assert _row(stack, qbo_id=widget["Id"]).state == "syncing"
    left_out = _row(stack, qbo_id=hardware["Id"])
    assert left_out.state == "excluded" and "Service, NonInventory or Inventory" in left_out.excluded_reason
    no_sku = _row(stack, qbo_id=loose["Id"])
    assert no_sku.state == "excluded" and "no SKU" in no_sku.excluded_reason
    for twin in twins:
        row = _row(stack, qbo_id=twin["Id"])
        assert row.state == "failed" and row.error_category == "duplicate SKU"
        assert twins[0]["Id"] in row.error_message and twins[1]["Id"] in row.error_message
    assert_run_writes_nothing(stack, company_id, "products")

    # An edit in QBO crosses with its decimals exact; an edit in HubSpot does not flow back (one way).
    current = qbo_items(stack, realm)["Widget"]
    body = {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True, "UnitPrice": 20.05}
    stack.qbo.control("POST", f"/companies/{realm}/item", body, expect=200)
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/products/{products['Gizmo']['id']}", {"properties": {"price": "8"}}
    )
    run_object(stack.runtime, company_id, "products")
    assert hubspot_products(stack)["Widget"]["price"] == "20.05"
    assert qbo_items(stack, realm)["Gizmo"]["UnitPrice"] == 7
    assert_run_writes_nothing(stack, company_id, "products")


def test_products_from_hubspot_become_items_with_their_accounts(stack, shop):
    portal, realm, company_id = shop
    _item(stack, realm, Name="Consulting", Sku="C-1")
    set_up(stack.runtime, company_id, "products", "two-way", "hubspot")
    run_object(stack.runtime, company_id, "products")
    gadget = _product(
        stack, portal, name="Gadget: large", hs_sku="GA-1", price="25.10", hs_cost_of_goods_sold="9.5",
        hs_product_type="inventory", description="Big",
    )  # fmt: skip
    clash = _product(stack, portal, name="Consulting", hs_sku="X-9", price="1")
    _product(stack, portal, name="Nameless SKU-less")  # no SKU: left out, saying why
    twins = [_product(stack, portal, name=f"Twin {n}", hs_sku="TW-1") for n in (1, 2)]  # one SKU, two products
    long_name = "L" * 120  # QBO allows 100 characters
    _product(stack, portal, name=long_name, hs_sku="LONG-1")
    summary = run_object(stack.runtime, company_id, "products")
    assert summary.counts.get("create") == 3, summary.counts
    for twin in twins:
        row = _row(stack, hubspot_id=twin["id"])
        assert row.state == "failed" and row.error_category == "duplicate SKU"
        assert twins[0]["id"] in row.error_message and twins[1]["id"] in row.error_message
    assert "L" * 100 in qbo_items(stack, realm)

    items = qbo_items(stack, realm)
    made = items["Gadget- large"]  # ":" is QBO's sub-item separator: cleaned, and the same name both sides
    accounts = _accounts(stack, realm)
    assert made["Type"] == "NonInventory" and made["Sku"] == "GA-1" and made["UnitPrice"] == 25.1
    assert made["IncomeAccountRef"]["value"] == _first_income_account(stack, realm)
    assert made["ExpenseAccountRef"]["value"] == accounts["Cost of Goods Sold"] and made["PurchaseCost"] == 9.5
    row = _row(stack, hubspot_id=gadget["id"])
    assert any("NonInventory" in message for message in _activity(stack, row))
    failed = _row(stack, hubspot_id=clash["id"])
    assert failed.state == "failed" and failed.error_category == "duplicate item name"
    assert "What to do:" in failed.error_message
    assert "Gadget: large" in hubspot_products(stack)  # HubSpot keeps its name; the cleaned one is the same to us
    assert_run_writes_nothing(stack, company_id, "products")

    # A price edited in HubSpot reaches QBO exactly; a deleted item leaves a tombstone (deletes kept).
    stack.hubspot.control(
        "PATCH", f"/accounts/{portal}/objects/products/{gadget['id']}", {"properties": {"price": "0.10"}}
    )
    run_object(stack.runtime, company_id, "products")
    assert qbo_items(stack, realm)["Gadget- large"]["UnitPrice"] == 0.1
    current = qbo_items(stack, realm)["Gadget- large"]
    body = {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True, "Active": False}
    stack.qbo.control("POST", f"/companies/{realm}/item", body, expect=200)
    run_object(stack.runtime, company_id, "products")
    assert _row(stack, hubspot_id=gadget["id"]).qbo_deleted_at is not None
    assert "Gadget: large" in hubspot_products(stack)  # kept in HubSpot, never recreated in QBO
    assert_run_writes_nothing(stack, company_id, "products")


def test_matching_by_name_and_another_currency(stack, shop):
    portal, realm, company_id = shop
    loose = _item(stack, realm, Name="Loose", UnitPrice=3)
    product = _product(stack, portal, name="Loose", price="5")
    stack.hubspot.control("PATCH", f"/accounts/{portal}", {"currency": "EUR"})
    set_up(stack.runtime, company_id, "products", "two-way", "quickbooks", options={"match_by_name": True})
    summary = run_object(stack.runtime, company_id, "products")
    assert summary.counts.get("link") == 1, summary.counts
    row = _row(stack, qbo_id=loose["Id"])
    assert row.hubspot_id == product["id"]
    # HubSpot's company currency (EUR) is not QBO's home currency (USD): prices stay as they are.
    assert hubspot_products(stack)["Loose"]["price"] == "5" and qbo_items(stack, realm)["Loose"]["UnitPrice"] == 3
    assert "price" not in row.base_values
    made = _product(stack, portal, name="Euro thing", hs_sku="E-1", price="12")
    run_object(stack.runtime, company_id, "products")
    assert "UnitPrice" not in qbo_items(stack, realm)["Euro thing"]
    assert any("currency is EUR" in message for message in _activity(stack, _row(stack, hubspot_id=made["id"])))


def test_set_up_refuses_accounts_the_company_cannot_use(stack, shop):
    _portal, realm, company_id = shop
    accounts = _accounts(stack, realm)
    with pytest.raises(ValueError, match="must be an active Income or Other Income account"):
        set_up(stack.runtime, company_id, "products", options={"income_account_id": accounts["Cost of Goods Sold"]})
    with pytest.raises(ValueError, match="not an account"):
        set_up(stack.runtime, company_id, "products", options={"income_account_id": "999999"})
    settings = set_up(stack.runtime, company_id, "products", options={"allow_inventory": True})
    assert settings.options["asset_account_id"] == accounts["Inventory Asset"]
    assert settings.options["inventory_start_date"]
    with stack.db() as session:
        assert session.scalar(select(SyncSettings).filter_by(object_type="products")).options["allow_inventory"]


def test_a_worker_killed_mid_batch_leaves_no_duplicate_item(stack, shop, monkeypatch):
    """The batch create reached QBO, then the worker died before recording it: the next run adopts each
    item by its unique name instead of creating it again."""
    from sync.clients.quickbooks import QuickBooksClient
    from sync.locks import lock_key

    portal, realm, company_id = shop
    set_up(stack.runtime, company_id, "products", "two-way", "hubspot")
    for n in range(3):
        _product(stack, portal, name=f"Part {n}", hs_sku=f"P-{n}", price=f"{n}.25")
    original = QuickBooksClient.batch_create

    def create_then_die(self, entity, bodies):
        original(self, entity, bodies)
        raise SystemExit("worker killed after the batch reached QBO")

    monkeypatch.setattr(QuickBooksClient, "batch_create", create_then_die)
    with pytest.raises(SystemExit):
        run_object(stack.runtime, company_id, "products")
    monkeypatch.undo()
    stack.runtime.jobs.connection.delete(lock_key(company_id, "products"))  # the dead worker's lock expires
    summary = run_object(stack.runtime, company_id, "products")
    assert summary.counts.get("resumed") == 3, summary.counts
    items = qbo_items(stack, realm)
    assert sorted(items) == ["Part 0", "Part 1", "Part 2"] and items["Part 2"]["UnitPrice"] == 2.25
    for name, item in items.items():
        assert hubspot_products(stack)[name]["ledgersync_qbo_item_id"] == item["Id"]
    assert_run_writes_nothing(stack, company_id, "products")


def test_inventory_when_allowed_and_an_inactive_income_account_explained(stack, shop):
    portal, realm, company_id = shop
    accounts = _accounts(stack, realm)
    set_up(stack.runtime, company_id, "products", "two-way", "hubspot", options={"allow_inventory": True})
    stock = _product(stack, portal, name="Stock", hs_sku="S-1", price="3", hs_product_type="inventory")
    run_object(stack.runtime, company_id, "products")
    item = qbo_items(stack, realm)["Stock"]
    assert item["Type"] == "Inventory" and item["TrackQtyOnHand"] is True and item["QtyOnHand"] == 0
    assert item["AssetAccountRef"]["value"] == accounts["Inventory Asset"] and item["InvStartDate"]
    assert _row(stack, hubspot_id=stock["id"]).state == "syncing"

    income = _first_income_account(stack, realm)
    with stack.qbo.state.lock:
        stack.qbo.state.companies[realm].table("Account")[income]["Active"] = False  # made inactive in QBO
    late = _product(stack, portal, name="Late", hs_sku="L-1", price="1")
    run_object(stack.runtime, company_id, "products")
    row = _row(stack, hubspot_id=late["id"])
    assert row.state == "failed" and row.error_category == "account inactive"
    assert "choose another income account" in row.error_message


def test_a_product_webhook_queues_a_products_run_that_a_worker_carries_out(stack, shop):
    """HubSpot's product webhook (object.creation, objectTypeId 0-7) reaches the app, queues one products run,
    and a real RQ worker carries it out; the sweep does the same for a QBO change without its webhook."""
    from rq import SimpleWorker

    from sync.job_queue import QUEUE_NAMES
    from sync.runtime import use_runtime
    from sync.tasks.syncing import sweep

    portal, realm, company_id = shop
    set_up(stack.runtime, company_id, "products", "two-way", "hubspot")
    run_object(stack.runtime, company_id, "products")  # the first run: nothing yet
    stack.hubspot.control("POST", "/webhooks/config", {"autoDeliver": False})
    _product(stack, portal, name="Hooked", hs_sku="H-1", price="2.5")
    stack.hubspot.control("POST", "/webhooks/deliver")
    assert stack.runtime.jobs.queue("default").job_ids == [f"sync-{company_id}-products"]

    def drain() -> None:
        queues = [stack.runtime.jobs.queue(name) for name in QUEUE_NAMES]
        with use_runtime(stack.runtime):
            SimpleWorker(queues, connection=stack.runtime.jobs.connection).work(burst=True)

    drain()
    assert qbo_items(stack, realm)["Hooked"]["UnitPrice"] == 2.5
    current = qbo_items(stack, realm)["Hooked"]
    body = {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True, "Description": "From QBO"}
    stack.qbo.control("POST", f"/companies/{realm}/item", body, expect=200)
    with use_runtime(stack.runtime):
        assert sweep() == 1  # the products sync (contacts is not set up here)
    drain()
    assert hubspot_products(stack)["Hooked"]["description"] == "From QBO"
