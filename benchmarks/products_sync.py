"""Benchmark: a first products ⇄ items sync (two-way), and the run after it that finds nothing to do.

Both emulators and the app run in this process (benchmarks/stack.py). QuickBooks gets ITEMS items
and HubSpot PRODUCTS products, a third of the items sharing a SKU with a product (those link; the
rest are created on the other side). The run goes to the end in this process, on SQLite, with the
emulators' rate limits off: the product's own limiter paces it, so the figure to compare is API
calls per record against the rate-limit floor — the seconds the published limits alone would take
for those calls (HubSpot 110 requests / 10 s per portal; QBO 500 / minute per realm, batches 40 /
minute). Prints one JSON line and writes .bench/products_sync.json. `make bench`.
"""

from __future__ import annotations

import os

import requests
from stack import bench_stack, report

from sync.setup import set_up

ITEMS = int(os.environ.get("BENCH_ITEMS", "1500"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "1500"))


def main() -> dict:
    results: dict[str, object] = {"items": ITEMS, "products": PRODUCTS}
    with bench_stack() as stack:
        runtime, demo = stack.runtime, stack.demo
        shared = ITEMS // 3
        items = [
            {
                "Name": f"Item {n}",
                "Type": "Service",
                "Sku": f"SKU-{n}" if n < shared else f"Q-{n}",
                "UnitPrice": n + 0.25,
                "IncomeAccountRef": {"value": "6"},  # "Services" in the emulator's chart of accounts
            }
            for n in range(ITEMS)
        ]
        requests.post(
            f"{stack.qbo_url}/_emulator/companies/{demo.realm_id}/seed",
            json={"entity": "Item", "records": items},
            timeout=300,
        ).raise_for_status()
        products = [
            {"properties": {"name": f"Product {n}", "hs_sku": f"sku-{n}", "price": f"{n}.10"}} for n in range(PRODUCTS)
        ]
        requests.post(
            f"{stack.hubspot_url}/_emulator/accounts/{demo.portal_id}/seed",
            json={"objectType": "products", "records": products},
            timeout=300,
        ).raise_for_status()
        set_up(runtime, demo.company_id, "products", "two_way", "quickbooks")
        results.update(stack.first_and_next("products", ITEMS + PRODUCTS))
    return results


if __name__ == "__main__":
    report("products_sync", main())
