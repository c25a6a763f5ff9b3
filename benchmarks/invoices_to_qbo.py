"""Benchmark: a first invoices sync from HubSpot into QuickBooks, and the run after it that finds nothing.

Both emulators and the app run in this process (benchmarks/stack.py). HubSpot gets CONTACTS contacts
(synced to QBO customers first, untimed: an invoice needs its customer) and INVOICES open invoices of
three line items each — one with the SKU of a QBO item, one with a product QBO does not know (the
Custom line item), one plain — and every other invoice has a payment collected in HubSpot, which
becomes a QBO payment. The run goes to the end in this process, on SQLite, with the emulators' rate
limits off: the product's own limiter paces it, so the figure to compare is API calls per invoice
against the rate-limit floor. Prints one JSON line and writes .bench/invoices_to_qbo.json. `make bench`.
"""

from __future__ import annotations

import os

import requests
from stack import bench_stack, report

from sync.setup import set_up

INVOICES = int(os.environ.get("BENCH_INVOICES", "1000"))
CONTACTS = int(os.environ.get("BENCH_CONTACTS", "100"))


def _seed(stack, object_type: str, records: list[dict]) -> list[str]:
    answer = requests.post(
        f"{stack.hubspot_url}/_emulator/accounts/{stack.demo.portal_id}/seed",
        json={"objectType": object_type, "records": records},
        timeout=600,
    )
    answer.raise_for_status()
    return answer.json()["ids"]


def _to(record_id: str, type_id: int) -> list[dict]:
    return [
        {"to": {"id": record_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
    ]


def main() -> dict:
    results: dict[str, object] = {"invoices": INVOICES, "lines_per_invoice": 3, "contacts": CONTACTS}
    with bench_stack() as stack:
        runtime, demo = stack.runtime, stack.demo
        requests.post(
            f"{stack.qbo_url}/_emulator/companies/{demo.realm_id}/seed",
            json={
                "entity": "Item",
                "records": [{"Name": "Widget", "Type": "Service", "Sku": "W-1", "IncomeAccountRef": {"value": "6"}}],
            },  # fmt: skip
            timeout=60,
        ).raise_for_status()
        contacts = _seed(
            stack,
            "contacts",
            [
                {"properties": {"email": f"buyer{n}@bench.example", "firstname": "Buyer", "lastname": str(n)}}
                for n in range(CONTACTS)
            ],  # fmt: skip
        )
        set_up(runtime, demo.company_id, "contacts", "two_way", "hubspot", filters={"hubspot": None})
        stack.timed_run("contacts")  # untimed here: every contact gets its customer
        set_up(runtime, demo.company_id, "invoices", "two_way", "hubspot")
        invoices = _seed(
            stack,
            "invoices",
            [
                {"properties": {"hs_currency": "USD"}, "associations": _to(contacts[n % CONTACTS], 177)}
                for n in range(INVOICES)
            ],  # fmt: skip
        )
        lines = []
        for invoice in invoices:
            lines += [
                {"properties": {"name": "Widget", "hs_sku": "W-1", "quantity": "2", "price": "19.99"},
                 "associations": _to(invoice, 410)},
                {"properties": {"name": "Set-up", "quantity": "1", "price": "150"}, "associations": _to(invoice, 410)},
                {"properties": {"name": "Travel", "quantity": "3", "price": "12.5"}, "associations": _to(invoice, 410)},
            ]  # fmt: skip
        _seed(stack, "line_items", lines)
        base = f"{stack.hubspot_url}/_emulator/accounts/{demo.portal_id}/objects/invoices"
        for invoice in invoices:
            requests.patch(f"{base}/{invoice}", json={"properties": {"hs_invoice_status": "open"}}, timeout=30)
        payments = [
            {
                "properties": {"hs_initial_amount": "100.00", "hs_initiated_date": "2026-12-05T10:00:00Z",
                               "hs_latest_status": "succeeded", "hs_processor_type": "hs_payments"},
                "associations": _to(invoice, 542),
            }
            for invoice in invoices[::2]
        ]  # fmt: skip
        _seed(stack, "commerce_payments", payments)
        results.update(stack.first_and_next("invoices", INVOICES, "invoice"))
    return results


if __name__ == "__main__":
    report("invoices_to_qbo", main())
