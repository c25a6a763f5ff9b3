"""Benchmark: is the HubSpot emulator fast enough for 100k records?

Seeds 100,000 contacts through the control API, then measures what the sync
will do against it: paging through every contact with the SDK (1,000 pages of
100), a filtered search sorted by last-modified date over all of them, and
single reads. Prints one JSON line (and writes .bench/hubspot_emulator.json).
Run with `make bench`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import requests
from hubspot import HubSpot
from hubspot.crm.objects import PublicObjectSearchRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulators.hubspot import EmulatorServer  # noqa: E402

RECORDS = 100_000
CHUNK = 10_000


def timed(label: str, results: dict, function):
    started = time.perf_counter()
    value = function()
    results[label] = round(time.perf_counter() - started, 3)
    return value


def main() -> dict:
    results: dict[str, object] = {"records": RECORDS}
    with EmulatorServer(rate_limits=False) as server:
        account = requests.post(f"{server.url}/_emulator/accounts", json={}, timeout=30).json()
        client = HubSpot(access_token=account["accessToken"], host=server.url)

        def seed():
            for start in range(0, RECORDS, CHUNK):
                records = [
                    {
                        "properties": {
                            "email": f"c{n}@example.com",
                            "firstname": f"F{n % 977}",
                            "lifecyclestage": "customer" if n % 3 else "lead",
                        }
                    }
                    for n in range(start, start + CHUNK)
                ]
                response = requests.post(
                    f"{server.url}/_emulator/accounts/{account['portalId']}/seed",
                    json={"objectType": "contacts", "records": records},
                    timeout=300,
                )
                response.raise_for_status()

        timed("seed_seconds", results, seed)

        def page_all():
            count, after = 0, None
            while True:
                page = client.crm.objects.basic_api.get_page(
                    "contacts", limit=100, after=after, properties=["email", "firstname"]
                )
                count += len(page.results)
                if page.paging is None:
                    return count
                after = page.paging.next.after

        results["paged_records"] = timed("page_all_seconds", results, page_all)

        def search():
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]}],
                sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                limit=200,
            )
            return client.crm.objects.search_api.do_search("contacts", public_object_search_request=request).total

        results["search_total"] = timed("search_seconds", results, search)

        def reads():
            for n in range(200):
                client.crm.objects.basic_api.get_by_id("contacts", f"c{n * 400}@example.com", id_property="email")

        timed("200_reads_seconds", results, reads)
        results["requests_logged"] = requests.get(f"{server.url}/_emulator/requests?limit=0", timeout=30).json()[
            "total"
        ]
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


if __name__ == "__main__":
    outcome = main()
    print(json.dumps(outcome))
    Path(".bench").mkdir(exist_ok=True)
    Path(".bench/hubspot_emulator.json").write_text(json.dumps(outcome, indent=2) + "\n")
