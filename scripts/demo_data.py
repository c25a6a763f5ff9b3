"""The demo's story, told against the running emulators: data, install, connect, set up, sync, watch.

Called by scripts/demo.py once every process is healthy. Everything goes over HTTP as it would
in production: the emulators' control APIs stand in for a person using HubSpot and QuickBooks (a
portal and its admin, a company, records typed in), the OAuth installs follow the real redirects,
and the syncs run in the RQ worker, woken by the emulators' webhooks.

The data is chosen so that every rule shows (see `flask sync status` afterwards):
- Ana's email is already on a QBO customer: they are linked, not duplicated.
- Cara bills for Northwind Traders: a customer named after her primary company is created.
- Ben bills for Globex, but "Globex" is already a QBO customer (born there, with another email):
  display names are unique in QBO, so Ben fails with "duplicate display name" and its advice.
- Dan Vendor bills as himself, and "Dan Vendor" is a QBO vendor: the same failure.
- Eve has no invoice: the recommended filter leaves her out (excluded).
- Fay and Gus are both contacts of one invoice: "ambiguous billing contact" (no guessing).
- Hana, Ivan and Globex's accounts-payable customer exist only in QBO: created in HubSpot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import func, select

from sync.clients import errors
from sync.clients.hubspot import HubSpotClient
from sync.clients.quickbooks import QuickBooksClient
from sync.clients.ratelimit import RateLimiter
from sync.objects import object_type
from sync.objects.products import first_account
from sync.runtime import Runtime
from sync.setup import set_up
from sync.store.models import Installation, QboCompany, RecordLink, SyncBacklog, WebhookEvent
from sync.tasks.syncing import enqueue_run, run_job_id
from sync.tokens import TokenManager

DEMO_OBJECTS = ("contacts", "products")
PRIMARY_COMPANY, INVOICE_CONTACT, LINE_ITEM_INVOICE, PAYMENT_INVOICE = 1, 177, 410, 542  # HubSpot association types

COMPANIES = {"northwind": "Northwind Traders", "globex": "Globex"}
CONTACTS = [  # (key, first, last, email, phone, primary company key)
    ("ana", "Ana", "Silva", "ana@northwind.example", "+1 415 555 0101", "northwind"),
    ("cara", "Cara", "Diaz", "cara@northwind.example", "+1 415 555 0102", "northwind"),
    ("ben", "Ben", "Ode", "ben@globex.example", "+1 212 555 0103", "globex"),
    ("dan", "Dan", "Vendor", "dan@example.com", "+1 312 555 0104", None),
    ("eve", "Eve", "Park", "eve@example.com", "+1 617 555 0105", None),
    ("fay", "Fay", "Wong", "fay@example.com", "+1 206 555 0106", None),
    ("gus", "Gus", "Moreau", "gus@example.com", "+1 206 555 0107", None),
]
QBO_CUSTOMERS = [
    {"DisplayName": "Ana Silva", "GivenName": "Ana", "FamilyName": "Silva",
     "PrimaryEmailAddr": {"Address": "ana@northwind.example"}},
    {"DisplayName": "Globex", "CompanyName": "Globex", "PrimaryEmailAddr": {"Address": "ap@globex.example"}},
    {"DisplayName": "Hana Ito", "GivenName": "Hana", "FamilyName": "Ito",
     "PrimaryEmailAddr": {"Address": "hana@example.com"}, "PrimaryPhone": {"FreeFormNumber": "+1 503 555 0108"}},
    {"DisplayName": "Ivan Petrov", "GivenName": "Ivan", "FamilyName": "Petrov",
     "PrimaryEmailAddr": {"Address": "ivan@example.com"}},
]  # fmt: skip
QBO_VENDORS = [{"DisplayName": "Dan Vendor", "PrimaryEmailAddr": {"Address": "billing@danvendor.example"}}]
# Products and services on both sides: matched by SKU (any case), one without a SKU and a category left
# out with the reason, and a HubSpot product whose name an item already has (QBO names are unique).
QBO_ITEMS = [  # (Name, Type, Sku, UnitPrice)
    ("Consulting", "Service", "CONS-1", 150),
    ("Widget", "NonInventory", "WID-1", 19.99),
    ("Loose screws", "NonInventory", None, 0.05),
    ("Hardware", "Category", None, None),
]
HUBSPOT_PRODUCTS = [  # (name, hs_sku, price, hs_product_type)
    ("Consulting hour", "cons-1", "120", "service"),
    ("Gadget", "GAD-1", "35.50", "non_inventory"),
    ("Widget", "WID-2", "18", "non_inventory"),
]


@dataclass
class Demo:
    app_url: str
    hubspot_url: str
    qbo_url: str
    portal_id: int = 0
    realm_id: str = ""
    installation_id: int = 0
    company_id: int = 0
    contacts: dict[str, str] | None = None  # key → HubSpot id


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _control(base: str, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
    answer = requests.request(method, f"{base}/_emulator{path}", json=body, timeout=15)
    if (expect and answer.status_code != expect) or answer.status_code >= 400:
        raise SystemExit(f"[demo] {method} {path} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json() if answer.content else None


def install_and_connect(runtime: Runtime, demo: Demo) -> None:
    """A portal admin installs the app and connects a US QuickBooks company, through the real redirects."""
    account = _control(
        demo.hubspot_url,
        "POST",
        "/accounts",
        {
            "installApp": False,
            "adminEmail": "owner@northwind.example",
            "tier": "professional",
            "paymentsProcessor": "hubspot_payments",  # so payments from QuickBooks show as HubSpot payments
        },
        201,
    )
    demo.portal_id = account["portalId"]
    admin = next(u for u in account["users"] if u.get("superAdmin"))
    _control(demo.hubspot_url, "POST", "/oauth/auto-approve", {"userId": admin["userId"]}, 200)
    browser = requests.Session()  # follows the 302s: app → HubSpot consent → app callback
    page = browser.get(f"{demo.app_url}/oauth/hubspot/install", timeout=30)
    if page.status_code != 200 or not page.url.endswith("/connection"):
        raise SystemExit(f"[demo] the HubSpot install did not finish ({page.status_code} at {page.url})")
    company = _control(
        demo.qbo_url, "POST", "/companies", {"country": "US", "name": "Northwind Books", "connect": False}, 201
    )
    demo.realm_id = company["realmId"]
    _control(demo.qbo_url, "POST", "/oauth/auto-approve", {"realmId": demo.realm_id}, 200)
    page = browser.get(f"{demo.app_url}/oauth/quickbooks/connect", timeout=30)
    if page.status_code != 200:
        raise SystemExit(f"[demo] connecting QuickBooks did not finish ({page.status_code} at {page.url})")
    with runtime.database.session() as session:
        installation = session.scalar(select(Installation).where(Installation.hub_id == demo.portal_id))
        qbo = session.scalar(select(QboCompany).where(QboCompany.realm_id == demo.realm_id))
        if qbo is None or qbo.status != "connected":
            raise SystemExit("[demo] the QuickBooks company is not connected")
        demo.installation_id, demo.company_id = installation.id, qbo.id
    say(f"installed in HubSpot portal {demo.portal_id}; QuickBooks company {demo.realm_id} connected")


def seed_people(demo: Demo) -> None:
    """What both businesses' systems already hold before the sync is set up."""
    for entity, records in (("Customer", QBO_CUSTOMERS), ("Vendor", QBO_VENDORS)):
        _control(demo.qbo_url, "POST", f"/companies/{demo.realm_id}/seed", {"entity": entity, "records": records}, 201)
    companies = {}
    for key, name in COMPANIES.items():
        body = {"properties": {"name": name, "domain": f"{key}.example"}}
        companies[key] = _control(demo.hubspot_url, "POST", f"/accounts/{demo.portal_id}/objects/companies", body)["id"]
    demo.contacts = {}
    for key, first, last, email, phone, company in CONTACTS:
        body = {
            "properties": {"firstname": first, "lastname": last, "email": email, "phone": phone},
            "associations": [_association(companies[company], PRIMARY_COMPANY)] if company else [],
        }
        demo.contacts[key] = _control(demo.hubspot_url, "POST", f"/accounts/{demo.portal_id}/objects/contacts", body)[
            "id"
        ]
    say(f"demo data: {len(CONTACTS)} HubSpot contacts, {len(QBO_CUSTOMERS)} QBO customers and a QBO vendor")


def seed_products(runtime: Runtime, demo: Demo) -> None:
    """Products in HubSpot and items in QuickBooks, before the product sync is set up."""
    income = first_account(_qbo(runtime, demo), "Income")
    for name, item_type, sku, price in QBO_ITEMS:
        body = {"Name": name, "Type": item_type}
        if item_type != "Category":
            body["IncomeAccountRef"] = {"value": income}
        body.update({"Sku": sku} if sku else {})
        body.update({"UnitPrice": price} if price is not None else {})
        _control(demo.qbo_url, "POST", f"/companies/{demo.realm_id}/item", body, 200)
    for name, sku, price, kind in HUBSPOT_PRODUCTS:
        properties = {"name": name, "hs_sku": sku, "price": price, "hs_product_type": kind}
        _control(demo.hubspot_url, "POST", f"/accounts/{demo.portal_id}/objects/products", {"properties": properties})
    say(f"demo data: {len(HUBSPOT_PRODUCTS)} HubSpot products, {len(QBO_ITEMS)} QBO items (one a category)")


def _association(to_id: str, type_id: int) -> dict:
    return {
        "to": {"id": str(to_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def issue_invoices(runtime: Runtime, demo: Demo) -> None:
    """Invoices sent after the sync was set up: what makes a contact a billing contact."""
    for key in ("ana", "cara", "ben", "dan", "fay"):
        _invoice(demo, [demo.contacts[key]], amount=120 + len(key))
    # Gus is added to Fay's invoice afterwards (HubSpot opens an invoice with exactly one contact).
    shared = _invoices_of(runtime, demo, demo.contacts["fay"])[0]
    hubspot = _hubspot_sdk(runtime, demo)
    from hubspot.crm.associations.v4 import AssociationSpec

    hubspot.crm.associations.v4.basic_api.create(
        "invoices",
        shared,
        "contacts",
        demo.contacts["gus"],
        [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=INVOICE_CONTACT)],
    )
    say("invoices issued in HubSpot to Ana, Cara, Ben, Dan, and to Fay and Gus together")


def _invoice(demo: Demo, contact_ids: list[str], amount: int) -> str:
    base = f"/accounts/{demo.portal_id}/objects"
    invoice = _control(
        demo.hubspot_url,
        "POST",
        f"{base}/invoices",
        {"properties": {"hs_currency": "USD"}, "associations": [_association(c, INVOICE_CONTACT) for c in contact_ids]},
    )
    _control(
        demo.hubspot_url,
        "POST",
        f"{base}/line_items",
        {
            "properties": {"name": "Design work", "quantity": "1", "price": str(amount)},
            "associations": [_association(invoice["id"], LINE_ITEM_INVOICE)],
        },
    )
    _control(
        demo.hubspot_url, "PATCH", f"{base}/invoices/{invoice['id']}", {"properties": {"hs_invoice_status": "open"}}
    )
    return invoice["id"]


def _invoices_of(runtime: Runtime, demo: Demo, contact_id: str) -> list[str]:
    return _hubspot(runtime, demo).associated_ids("contacts", "invoices", [contact_id]).get(contact_id, [])


def _hubspot(runtime: Runtime, demo: Demo) -> HubSpotClient:
    token = TokenManager(runtime).hubspot_access_token(demo.installation_id)
    # the demo shares the portal's limits with the worker: its reads wait their turn rather than fail
    return HubSpotClient(runtime.config, demo.portal_id, token, RateLimiter(runtime.jobs.connection, max_wait=60.0))


def _hubspot_sdk(runtime: Runtime, demo: Demo):
    from hubspot import HubSpot

    token = TokenManager(runtime).hubspot_access_token(demo.installation_id)
    return HubSpot(access_token=token, host=demo.hubspot_url)


def _qbo(runtime: Runtime, demo: Demo) -> QuickBooksClient:
    access, refresh = TokenManager(runtime).quickbooks_tokens(demo.company_id)
    return QuickBooksClient(
        runtime.config, demo.realm_id, access, refresh, RateLimiter(runtime.jobs.connection, max_wait=60.0)
    )


def set_up_products(runtime: Runtime, demo: Demo) -> None:
    settings = set_up(runtime, demo.company_id, "products", "two_way", "quickbooks")
    income = settings.options["income_account_id"]
    say(
        "products ⇄ items set up: two-way (the recommended set-up is QBO → HubSpot; the demo shows both ways),"
        f" QuickBooks wins conflicts, matched by SKU; items made from HubSpot book to income account {income}"
    )


def set_up_contacts(runtime: Runtime, demo: Demo) -> None:
    settings = set_up(runtime, demo.company_id, "contacts", "two_way", "hubspot")
    say(
        "contacts ⇄ customers set up: two-way, HubSpot wins conflicts; recommended filters "
        f"(HubSpot → QBO: {settings.filters.get('hubspot')}, QBO → HubSpot: all)"
    )


def initial_sync(
    runtime: Runtime, demo: Demo, stopping=lambda: False, limit: float = 300, objects: tuple[str, ...] = DEMO_OBJECTS
) -> None:
    """Queue the first sync for the RQ worker, as production does, and show its progress until it
    settles: nothing left in the backlog, no run queued or running, no webhook event unprocessed."""
    kinds = [object_type(kind) for kind in objects]
    events = sorted({name for kind in kinds for name in (*kind.event_types, *kind.hubspot_triggers)})
    for kind in objects:
        enqueue_run(runtime, demo.company_id, kind)
    job_ids = [
        run_job_id(demo.company_id, kind) + suffix
        for kind in objects
        for suffix in ("", "-next", "-after", "-later", "-again", "-later-again")
    ]
    started = time.monotonic()
    settled_since, shown = None, None
    while not stopping():
        with runtime.database.session() as session:
            queued = session.scalar(
                select(func.count()).select_from(SyncBacklog).where(SyncBacklog.qbo_company_id == demo.company_id)
            )
            seen = session.scalar(
                select(func.count()).select_from(RecordLink).where(RecordLink.qbo_company_id == demo.company_id)
            )
            unprocessed = session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(
                    WebhookEvent.installation_id == demo.installation_id,
                    WebhookEvent.status == "pending",
                    WebhookEvent.object_type.in_(events),
                )
            )
        busy = any(_job_status(runtime, job_id) in ("queued", "started", "deferred", "scheduled") for job_id in job_ids)
        total = seen + queued
        if (seen, total) != shown:  # a progress figure, on one line
            shown = (seen, total)
            print(
                f"\r[demo] {', '.join(objects)} sync (in the worker): {seen}/{total} records"
                f" ({100 * seen // max(total, 1)}%)",
                end="",
                flush=True,
            )
        if busy or queued or unprocessed:
            settled_since = None
        elif settled_since is None:
            settled_since = time.monotonic()
        elif time.monotonic() - settled_since > 2:
            break
        if time.monotonic() - started > limit:
            print(flush=True)
            raise SystemExit(f"[demo] the initial sync did not settle within {limit:g} s (see the worker's log)")
        time.sleep(0.5)
    print(flush=True)
    with runtime.database.session() as session:
        for kind in objects:
            counts = dict(
                session.execute(
                    select(RecordLink.state, func.count())
                    .where(RecordLink.qbo_company_id == demo.company_id, RecordLink.object_type == kind)
                    .group_by(RecordLink.state)
                ).all()
            )
            label = "initial sync done" if kind == "contacts" else f"initial {kind} sync done"
            say(f"{label}: " + ", ".join(f"{state} {count}" for state, count in sorted(counts.items())))
            rows = session.scalars(
                select(RecordLink).where(
                    RecordLink.qbo_company_id == demo.company_id,
                    RecordLink.object_type == kind,
                    RecordLink.state.in_(("failed", "excluded")),
                )
            ).all()
            emails = {demo.contacts[key]: email for key, _first, _last, email, _phone, _company in CONTACTS}
            for link in rows:
                who = emails.get(link.hubspot_id) or (
                    f"hubspot {link.hubspot_id}" if link.hubspot_id else f"quickbooks {link.qbo_id}"
                )
                if link.state == "failed":
                    say(f"  failed: {who}: [{link.error_category}] {link.error_message}")
                elif kind != "contacts":
                    say(f"  left out: {who}: {link.excluded_reason}")


def bill_in_quickbooks(runtime: Runtime, demo: Demo, stopping=lambda: False) -> None:
    """Invoices made in QuickBooks after the invoice sync is set up (as recommended: QBO → HubSpot), one
    paid in part and one in full, mirrored into HubSpot by the worker."""
    set_up(runtime, demo.company_id, "invoices")
    say("invoices from QuickBooks set up (recommended): QBO → HubSpot, invoices created from today")
    qbo = _qbo(runtime, demo)
    customers = {
        c["DisplayName"]: c["Id"] for c in _patiently(lambda: qbo.query("select * from Customer")).get("Customer", [])
    }
    item = _patiently(lambda: qbo.query("select * from Item where Name = 'Consulting'"))["Item"][0]
    for name, hours, paid in (("Hana Ito", 3, 200), ("Ivan Petrov", 2, 300)):
        line = {
            "DetailType": "SalesItemLineDetail",
            "Amount": hours * 150,
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": hours, "UnitPrice": 150},
        }
        invoice = _patiently(
            lambda name=name, line=line: qbo.create(
                "Invoice", {"CustomerRef": {"value": customers[name]}, "Line": [line]}
            )
        )
        link = {"Amount": paid, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
        payment = {"CustomerRef": {"value": customers[name]}, "TotalAmt": paid, "Line": [link]}
        _patiently(lambda payment=payment: qbo.create("Payment", payment))
    initial_sync(runtime, demo, stopping, objects=("invoices",))
    hubspot = _hubspot(runtime, demo)
    with runtime.database.session() as session:
        mirrors = session.scalars(
            select(RecordLink.hubspot_id).where(
                RecordLink.qbo_company_id == demo.company_id,
                RecordLink.object_type == "invoices",
                RecordLink.state == "syncing",
            )
        ).all()
    shown = ["ledgersync_qbo_number", "hs_invoice_status", "ledgersync_qbo_amount_paid", "ledgersync_qbo_balance_due"]
    payments = _patiently(lambda: hubspot.associated_ids("invoices", "commerce_payments", sorted(mirrors)))
    for mirror in _patiently(lambda: hubspot.batch_read("invoices", sorted(mirrors), [*shown, "hs_balance_due"])):
        number, status, paid, due = (mirror["properties"].get(name) for name in shown)
        count = len(payments.get(mirror["id"], []))
        say(
            f"  HubSpot invoice {mirror['id']} mirrors QBO invoice {number}: {status}, paid {paid}, balance due {due}"
            f" ({count} HubSpot payment{'s' if count != 1 else ''}, HubSpot's balance due"
            f" {mirror['properties'].get('hs_balance_due')})"
        )


def bill_in_hubspot(runtime: Runtime, demo: Demo, stopping=lambda: False) -> None:
    """The invoice sync made two-way: invoices issued in HubSpot go to QuickBooks — the earlier ones (each
    as its rules say) and a new one for Ana with a line on a product QBO knows and one it does not, paid in
    HubSpot, which arrives as a QBO invoice and a QBO payment."""
    set_up(runtime, demo.company_id, "invoices", "two-way", "hubspot")
    say("invoices set up two-way: invoices issued in HubSpot now go to QuickBooks too")
    qbo = _qbo(runtime, demo)
    consulting = _patiently(lambda: qbo.query("select * from Item where Name = 'Consulting'"))["Item"][0]["Id"]
    with runtime.database.session() as session:
        product = session.scalar(
            select(RecordLink.hubspot_id).where(
                RecordLink.qbo_company_id == demo.company_id,
                RecordLink.object_type == "products",
                RecordLink.qbo_id == consulting,
            )
        )
    base = f"/accounts/{demo.portal_id}/objects"
    invoice = _control(
        demo.hubspot_url,
        "POST",
        f"{base}/invoices",
        {"properties": {"hs_currency": "USD"}, "associations": [_association(demo.contacts["ana"], INVOICE_CONTACT)]},
    )["id"]
    for properties in (
        {"name": "Consulting hour", "hs_product_id": product, "quantity": "2", "price": "120"},
        {"name": "Rush delivery", "quantity": "1", "price": "25"},
    ):
        body = {"properties": properties, "associations": [_association(invoice, LINE_ITEM_INVOICE)]}
        _control(demo.hubspot_url, "POST", f"{base}/line_items", body)
    _control(demo.hubspot_url, "PATCH", f"{base}/invoices/{invoice}", {"properties": {"hs_invoice_status": "open"}})
    payment = {
        "properties": {
            "hs_initial_amount": "265.00",
            "hs_initiated_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "hs_latest_status": "succeeded",
            "hs_processor_type": "hs_payments",
        },
        "associations": [_association(invoice, PAYMENT_INVOICE)],
    }
    paid = _control(demo.hubspot_url, "POST", f"{base}/commerce_payments", payment)["id"]
    say("an invoice issued in HubSpot to Ana (a consulting line, a rush delivery line), paid in HubSpot")
    initial_sync(runtime, demo, stopping, objects=("invoices",))
    with runtime.database.session() as session:
        qbo_id = session.scalar(
            select(RecordLink.qbo_id).where(RecordLink.object_type == "invoices", RecordLink.hubspot_id == invoice)
        )
    if qbo_id is None:
        say("  Ana's invoice did not reach QuickBooks")
        return
    made = _patiently(lambda: qbo.read("Invoice", qbo_id))
    lines = [
        f"{line['SalesItemLineDetail']['ItemRef'].get('name') or line['SalesItemLineDetail']['ItemRef']['value']}"
        f" {line['Amount']:.2f}"
        for line in made["Line"]
        if line.get("DetailType") == "SalesItemLineDetail"
    ]
    payments = [t for t in made.get("LinkedTxn") or [] if t.get("TxnType") == "Payment"]
    say(
        f"  HubSpot invoice {invoice} arrived in QuickBooks as invoice {made['DocNumber']}: {', '.join(lines)};"
        f" total {made['TotalAmt']:.2f}, {len(payments)} QBO payment (HubSpot payment {paid}),"
        f" balance {made['Balance']:.2f}"
    )


def _job_status(runtime: Runtime, job_id: str) -> str | None:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return str(Job.fetch(job_id, connection=runtime.jobs.connection).get_status())
    except NoSuchJobError:
        return None


def watch_changes(runtime: Runtime, demo: Demo, stopping=lambda: False, limit: float = 60) -> dict[str, float | None]:
    """A change typed into each side, timed until it shows on the other side (webhooks → worker)."""
    timings: dict[str, float | None] = {}
    phone = "+1 415 555 0199"
    _control(
        demo.hubspot_url,
        "PATCH",
        f"/accounts/{demo.portal_id}/objects/contacts/{demo.contacts['ana']}",
        {"properties": {"phone": phone}},
    )
    started = time.monotonic()
    qbo_id = _linked_qbo_id(runtime, demo, demo.contacts["ana"])
    timings["HubSpot → QBO"] = _until(
        lambda: (_qbo(runtime, demo).read("Customer", qbo_id).get("PrimaryPhone") or {}).get("FreeFormNumber") == phone,
        started,
        limit,
        stopping,
    )
    hana = _patiently(lambda: _qbo(runtime, demo).query("select * from Customer where DisplayName = 'Hana Ito'"))[
        "Customer"
    ][0]
    _control(
        demo.qbo_url,
        "POST",
        f"/companies/{demo.realm_id}/customer",
        {"Id": hana["Id"], "SyncToken": hana["SyncToken"], "sparse": True, "FamilyName": "Ito-Sato"},
    )
    started = time.monotonic()
    timings["QBO → HubSpot"] = _until(
        lambda: any(
            c["properties"].get("lastname") == "Ito-Sato"
            for c in _hubspot(runtime, demo).batch_read("contacts", ["hana@example.com"], ["lastname"], "email")
        ),
        started,
        limit,
        stopping,
    )
    for direction, seconds in timings.items():
        say(
            f"{direction}: a change arrived in {seconds:.1f} s"
            if seconds is not None
            else f"{direction}: the change had not arrived after {limit:g} s (see the worker's log)"
        )
    return timings


def _patiently(call, limit: float = 60):
    """The demo shares the realm's rate limits with the worker: wait its turn rather than fail."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return call()
        except errors.RateLimited as limited:
            if time.monotonic() > deadline:
                raise
            time.sleep(min(max(limited.retry_after, 0.2), 5))


def _linked_qbo_id(runtime: Runtime, demo: Demo, hubspot_id: str) -> str:
    with runtime.database.session() as session:
        return session.scalar(
            select(RecordLink.qbo_id).where(
                RecordLink.qbo_company_id == demo.company_id, RecordLink.hubspot_id == hubspot_id
            )
        )


def _until(check, started: float, limit: float, stopping=lambda: False) -> float | None:
    while time.monotonic() - started < limit and not stopping():
        try:
            if check():
                return time.monotonic() - started
        except errors.RateLimited:
            pass  # the worker is busy with this realm: look again in a moment
        except errors.ApiError as error:
            say(f"(still waiting: {error.message})")
        time.sleep(1)
    return None


def demo_file_content(runtime: Runtime, demo: Demo) -> dict:
    tokens = TokenManager(runtime)
    return {
        "app_url": demo.app_url,
        "hubspot": {
            "base_url": demo.hubspot_url,
            "portal_id": demo.portal_id,
            "access_token": tokens.hubspot_access_token(demo.installation_id),
        },
        "quickbooks": {
            "base_url": demo.qbo_url,
            "realm_id": demo.realm_id,
            "access_token": tokens.quickbooks_tokens(demo.company_id)[0],
        },
    }


def keep_tokens_fresh(runtime: Runtime, demo: Demo) -> None:
    """Asking for the tokens refreshes them shortly before they expire; each refresh rewrites demo.json."""
    tokens = TokenManager(runtime)
    tokens.hubspot_access_token(demo.installation_id)
    tokens.quickbooks_tokens(demo.company_id)
