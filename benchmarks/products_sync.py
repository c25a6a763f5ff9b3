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

import math
import os

import requests
from stack import bench_stack, report

from sync.clients.ratelimit import HUBSPOT_LIMITS, QBO_LIMITS
from sync.setup import set_up

ITEMS = int(os.environ.get("BENCH_ITEMS", "1500"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "1500"))


def _floor_seconds(calls: dict[str, int], qbo_batches: int) -> float:
    """The least time the published limits allow for these calls: n requests under "L per W seconds"
    need (ceil(n / L) - 1) × W seconds (the slowest side and window decide)."""

    def least(count: int, windows) -> float:
        return max((math.ceil(count / limit) - 1) * seconds for limit, seconds in windows) if count else 0.0

    hubspot = least(calls["hubspot"], HUBSPOT_LIMITS["api"])
    qbo = max(least(calls["quickbooks"] - qbo_batches, QBO_LIMITS["api"]), least(qbo_batches, QBO_LIMITS["batch"]))
    return round(max(hubspot, qbo), 1)


def _batches(base: str) -> int:
    log = requests.get(f"{base}/_emulator/requests?limit=0", timeout=30).json()
    return sum(count for endpoint, count in log.get("byEndpoint", {}).items() if endpoint.endswith("/batch"))


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
        batches_before = _batches(stack.qbo_url)
        first, summary, calls = stack.timed_run("products")
        records = ITEMS + PRODUCTS
        results["first_sync_seconds"] = round(first, 2)
        results["records_per_second"] = round(records / first, 1)
        results["first_sync_counts"] = summary.counts
        results["first_sync_api_calls"] = calls
        results["api_calls_per_record"] = {side: round(n / records, 3) for side, n in calls.items()}
        results["rate_limit_floor_seconds"] = _floor_seconds(calls, _batches(stack.qbo_url) - batches_before)
        seconds, again, calls = stack.timed_run("products")
        results["next_run_seconds"] = round(seconds, 2)
        results["next_run_counts"] = again.counts
        results["next_run_api_calls"] = calls
    return results


if __name__ == "__main__":
    report("products_sync", main())
