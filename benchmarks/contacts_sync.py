"""Benchmark: a first contacts ⇄ customers sync, and the run after it that finds nothing to do.

Both emulators and the app run in this process (benchmarks/stack.py), then HubSpot gets CONTACTS
contacts and QuickBooks CUSTOMERS customers, a third of them sharing an email with a contact (those
link instead of being created). The sync runs to the end in this process, as `flask sync run`
does, with the emulators' rate limits off (the product's own limiter still paces it), on
SQLite. Measured: seconds, records a second, API calls per side, peak RSS (the emulators'
memory included). Prints one JSON line and writes .bench/contacts_sync.json. `make bench`.
"""

from __future__ import annotations

import os

import requests
from stack import bench_stack, report

from sync.setup import set_up

CONTACTS = int(os.environ.get("BENCH_CONTACTS", "3000"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1500"))


def main() -> dict:
    results: dict[str, object] = {"contacts": CONTACTS, "customers": CUSTOMERS}
    with bench_stack() as stack:
        runtime, demo = stack.runtime, stack.demo
        shared = CUSTOMERS // 3
        contacts = [
            {"properties": {"email": f"p{n}@example.com", "firstname": f"First{n}", "lastname": f"Last{n}"}}
            for n in range(CONTACTS)
        ]
        requests.post(
            f"{stack.hubspot_url}/_emulator/accounts/{demo.portal_id}/seed",
            json={"objectType": "contacts", "records": contacts},
            timeout=300,
        ).raise_for_status()
        customers = [
            {
                "DisplayName": f"Customer {n}",
                "PrimaryEmailAddr": {"Address": f"p{n}@example.com" if n < shared else f"q{n}@example.com"},
            }
            for n in range(CUSTOMERS)
        ]
        requests.post(
            f"{stack.qbo_url}/_emulator/companies/{demo.realm_id}/seed",
            json={"entity": "Customer", "records": customers},
            timeout=300,
        ).raise_for_status()
        set_up(runtime, demo.company_id, "contacts", "two_way", "hubspot", filters={"hubspot": None})
        first, summary, calls = stack.timed_run("contacts")
        results["first_sync_seconds"] = round(first, 2)
        results["records_per_second"] = round((CONTACTS + CUSTOMERS) / first, 1)
        results["first_sync_counts"] = summary.counts
        results["first_sync_api_calls"] = calls
        seconds, again, calls = stack.timed_run("contacts")
        results["next_run_seconds"] = round(seconds, 2)
        results["next_run_counts"] = again.counts
        results["next_run_api_calls"] = calls
    return results


if __name__ == "__main__":
    report("contacts_sync", main())
