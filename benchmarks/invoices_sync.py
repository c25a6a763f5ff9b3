"""Benchmark: a first invoices sync from QuickBooks into HubSpot, and the run after it that finds nothing.

Both emulators and the app run in this process (benchmarks/stack.py). QuickBooks gets CUSTOMERS
customers (synced to HubSpot contacts first, untimed: an invoice needs its contact) and INVOICES
invoices of three lines each, every invoice paid — half in part, half in full — by a payment of its
own; the HubSpot portal has HubSpot payments, so each payment becomes a HubSpot payment. The invoice
run goes to the end in this process, on SQLite, with the emulators' rate limits off: the product's
own limiter paces it, so the figure to compare is API calls per invoice against the rate-limit floor
— the seconds the published limits alone would take for those calls. Prints one JSON line and writes
.bench/invoices_sync.json. `make bench`.
"""

from __future__ import annotations

import os
from decimal import Decimal

import requests
from stack import bench_stack, report

from sync.setup import set_up

INVOICES = int(os.environ.get("BENCH_INVOICES", "1000"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100"))


def _seed(stack, entity: str, records: list[dict]) -> list[str]:
    answer = requests.post(
        f"{stack.qbo_url}/_emulator/companies/{stack.demo.realm_id}/seed",
        json={"entity": entity, "records": records},
        timeout=600,
    )
    answer.raise_for_status()
    return answer.json()["ids"]


def main() -> dict:
    results: dict[str, object] = {"invoices": INVOICES, "lines_per_invoice": 3, "customers": CUSTOMERS}
    with bench_stack() as stack:
        runtime, demo = stack.runtime, stack.demo
        requests.patch(
            f"{stack.hubspot_url}/_emulator/accounts/{demo.portal_id}",
            json={"paymentsProcessor": "hubspot_payments"},
            timeout=30,
        ).raise_for_status()
        customers = _seed(
            stack,
            "Customer",
            [
                {"DisplayName": f"Customer {n}", "PrimaryEmailAddr": {"Address": f"customer{n}@bench.example"}}
                for n in range(CUSTOMERS)
            ],
        )
        items = _seed(
            stack,
            "Item",
            [{"Name": f"Service {n}", "Type": "Service", "IncomeAccountRef": {"value": "6"}} for n in range(3)],
        )
        set_up(runtime, demo.company_id, "contacts", "two_way", "quickbooks", filters={"hubspot": None})
        stack.timed_run("contacts")  # untimed here: every customer gets its contact
        set_up(runtime, demo.company_id, "invoices")  # as recommended: QBO → HubSpot, created from today

        def line(item: str, quantity: int, price: str) -> dict:
            amount = str(quantity * Decimal(price))
            return {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount,
                "Description": f"{quantity} × {price}",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": quantity, "UnitPrice": price},
            }

        invoices = _seed(
            stack,
            "Invoice",
            [
                {
                    "CustomerRef": {"value": customers[n % CUSTOMERS]},
                    "Line": [line(items[0], 1 + n % 4, "19.99"), line(items[1], 2, "7.35"), line(items[2], 1, "100")],
                }
                for n in range(INVOICES)
            ],
        )
        totals = {i: (1 + n % 4) * Decimal("19.99") + Decimal("114.70") for n, i in enumerate(invoices)}
        _seed(
            stack,
            "Payment",
            [
                {
                    "CustomerRef": {"value": customers[n % CUSTOMERS]},
                    "TotalAmt": str(paid),
                    "Line": [{"Amount": str(paid), "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}],
                }
                for n, invoice in enumerate(invoices)
                for paid in [totals[invoice] if n % 2 else (totals[invoice] / 2).quantize(Decimal("0.01"))]
            ],
        )
        results.update(stack.first_and_next("invoices", INVOICES, "invoice"))
    return results


if __name__ == "__main__":
    report("invoices_sync", main())
