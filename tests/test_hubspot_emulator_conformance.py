"""Property-based conformance: every operation the HubSpot emulator serves, driven from HubSpot's specs.

For each operation in `../shared/reference/hubspot/*.json` that the emulator routes, schemathesis
generates requests from the spec itself: conforming ones (positive mode) and ones that break the
spec on purpose (negative mode: wrong types, missing fields, items that are not objects, …). Each
request goes to the emulator in-process (WSGI) with a valid token, and the test asserts what a
real client relies on:

- no 5xx, ever (the SDK treats a 5xx as temporary and retries the request);
- the response, error bodies included, matches the spec (tests/hubspot_spec.py, openapi-core);
- a request the emulator refuses as malformed is a HubSpot-shaped 400: `status: "error"`,
  `category: "VALIDATION_ERROR"` and a message.

Generation is derandomized, so a run is repeatable; the failures listed are the first few
distinct ones per operation, with the request that caused them.
"""

from __future__ import annotations

import json
import re
from functools import cache

import pytest
import schemathesis
from flask import request
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.conftest import skip_or_fail_in_ci
from tests.hubspot_spec import REFERENCE, SpecReport, check, reference_available

# Every spec in the reference whose operations the emulator may serve. Object types the emulator
# does not model (discounts, fees, taxes) are routed by the generic objects path and refused with a
# 400: they are driven too, so that refusal stays well-formed.
SPECS = (
    "crm-contacts-v3.json",
    "crm-companies-v3.json",
    "crm-deals-v3.json",
    "crm-products-v3.json",
    "crm-line-items-v3.json",
    "crm-invoices-v3.json",
    "crm-commerce-payments-v3.json",
    "crm-payments-v3.json",
    "crm-discounts-v3.json",
    "crm-fees-v3.json",
    "crm-taxes-v3.json",
    "crm-objects-v3.json",
    "crm-properties-v3.json",
    "crm-associations-v4.json",
    "automation-actions-v4.json",
    "crm-timeline-v3.json",
    "oauth-v1.json",
)
EXAMPLES_PER_MODE = 12
FAILURES_SHOWN = 3
SPEC_REPORT = SpecReport()  # filled by the emulator as it answers; drained after each request
OBJECT_TYPES = ("contacts", "companies", "deals", "products", "line_items", "invoices", "commerce_payments")


@cache
def emulator():
    """One emulator for the module, with a portal holding a few associated records of each type."""
    from emulators.hubspot.app import create_emulator

    app = create_emulator(rate_limits=False)
    app.testing = False  # an unhandled error must come back as the 500 a client would see

    @app.after_request
    def validate_against_spec(response):  # inside the app: the request body is still readable here
        check(request, response, SPEC_REPORT)
        return response

    client = app.test_client()
    account = client.post(
        "/_emulator/accounts", json={"tier": "professional", "paymentsProcessor": "hubspot_payments"}
    ).get_json()
    ids: dict[str, list[str]] = {}
    for object_type in OBJECT_TYPES:
        created = client.post(
            f"/_emulator/accounts/{account['portalId']}/seed",
            json={"objectType": object_type, "count": 2, "properties": _seed_properties(object_type)},
        )
        assert created.status_code == 201, created.text
        ids[object_type] = created.get_json()["ids"]
    token = account["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    contact, company = ids["contacts"][0], ids["companies"][0]
    client.put(f"/crm/v4/objects/contacts/{contact}/associations/default/companies/{company}", headers=headers)
    return app, token, ids


SEED_PROPERTIES = {
    "contacts": {"email": "person{n}@example.com", "firstname": "Person {n}"},
    "companies": {"name": "Company {n}"},
    "deals": {"dealname": "Deal {n}"},
    "products": {"name": "Product {n}", "hs_sku": "SKU-{n}", "price": "10.50"},
    "line_items": {"name": "Line {n}", "quantity": "2", "price": "10.50"},
    "invoices": {"hs_currency": "USD"},
    "commerce_payments": {"hs_initial_amount": "21.00", "hs_initiated_date": "2026-01-0{n}"},
}


def _seed_properties(object_type: str) -> dict:
    return SEED_PROPERTIES[object_type]


@cache
def spec_document(name: str) -> dict:
    from tests.hubspot_spec import prepared_document

    return prepared_document(name)


def served_operations() -> list[tuple[str, str, str]]:
    """(spec, METHOD, path template) for every spec operation the emulator has a route for."""
    if not reference_available():
        return []
    from emulators.hubspot.app import create_emulator

    adapter = create_emulator(rate_limits=False).url_map.bind("localhost")
    operations = []
    for name in SPECS:
        if not (REFERENCE / name).exists():
            continue
        for path, item in json.loads((REFERENCE / name).read_text()).get("paths", {}).items():
            for method in item:
                if method in ("get", "post", "put", "patch", "delete") and _routed(adapter, method, path):
                    operations.append((name, method.upper(), path))
    return operations


def _routed(adapter, method: str, path: str) -> bool:
    concrete = re.sub(r"\{[^}]+\}", "contacts", path)
    try:
        adapter.match(concrete, method=method.upper())
    except (NotFound, MethodNotAllowed):
        return False
    return True


def _path_values(name: str, ids: dict[str, list[str]]) -> list[str]:
    """Values that reach the emulator's logic (known object types, seeded ids) for a path parameter."""
    lowered = name.lower()
    if lowered.endswith("objecttype") or lowered == "objecttype":
        return [*OBJECT_TYPES, "0-1", "0-2", "unknown_type"]
    if lowered.endswith("id"):
        return [*(i for values in ids.values() for i in values[:1]), "999999", "not-a-number"]
    return []


def _strategy(operation, ids):
    """Generated requests: as the spec generates them, with real ids and types, and off-spec ones."""
    parameters = [p for p in operation.path_parameters]
    known = {p.name: _path_values(p.name, ids) for p in parameters}
    known = {k: v for k, v in known.items() if v}
    strategies = [operation.as_strategy(), operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
    if known:
        fixed = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in known.items()})
        strategies.append(fixed.flatmap(lambda values: operation.as_strategy(path_parameters=values)))
        strategies.append(
            fixed.flatmap(
                lambda values: operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=values)
            )
        )
    return st.one_of(strategies)


def _describe(case, response) -> str:
    body = case.body if type(case.body).__name__ != "NotSet" else None
    return (
        f"{case.method} {case.formatted_path} query={case.query} body={json.dumps(body, default=str)[:300]} "
        f"→ {response.status_code} {response.get_data(as_text=True)[:300]}"
    )


def _problems(case, response) -> list[str]:
    problems = []
    if response.status_code >= 500:
        problems.append(f"server error: {_describe(case, response)}")
        return problems
    problems += [f"spec violation: {v} (request: {_describe(case, response)})" for v in SPEC_REPORT.violations]
    SPEC_REPORT.violations.clear()
    # OAuth v1 errors carry their code in `status` (BAD_REFRESH_TOKEN, …; NOTES §4), not a category.
    if response.status_code == 400 and response.is_json and not case.path.startswith("/oauth/"):
        body = response.get_json(silent=True)
        shaped = (
            isinstance(body, dict)
            and body.get("status") == "error"
            and body.get("category") == "VALIDATION_ERROR"
            and isinstance(body.get("message"), str)
            and body["message"]
        )
        if not shaped:
            problems.append(f"400 not shaped as HubSpot's VALIDATION_ERROR: {_describe(case, response)}")
    return problems


OPERATIONS = served_operations()


@pytest.mark.parametrize(("spec_name", "method", "path"), OPERATIONS or [("none", "GET", "/")])
def test_generated_requests_get_no_5xx_and_spec_shaped_answers(spec_name, method, path):
    if not OPERATIONS:
        skip_or_fail_in_ci(f"HubSpot's OpenAPI specs are missing from {REFERENCE} (../shared/reference/hubspot)")
    app, token, ids = emulator()
    schema = schemathesis.openapi.from_dict(spec_document(spec_name))
    schema.app = app
    operation = schema[path][method].ok() if hasattr(schema[path][method], "ok") else schema[path][method]
    client = app.test_client()
    failures: dict[str, str] = {}

    @settings(
        max_examples=EXAMPLES_PER_MODE * 2,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, ids))
    def drive(case):
        kwargs = case.as_transport_kwargs(headers={"Authorization": f"Bearer {token}"})
        response = client.open(**kwargs)
        for problem in _problems(case, response):
            failures.setdefault(problem[:160], problem)

    drive()
    shown = list(failures.values())[:FAILURES_SHOWN]
    assert not failures, f"{len(failures)} distinct problems on {method} {path}:\n" + "\n".join(shown)


def test_every_served_operation_is_driven():
    """The list above is not silently empty or short: the core CRM, association and OAuth routes are in it."""
    if not OPERATIONS:
        skip_or_fail_in_ci(f"HubSpot's OpenAPI specs are missing from {REFERENCE} (../shared/reference/hubspot)")
    driven = {(method, path) for _, method, path in OPERATIONS}
    for expected in (
        ("POST", "/crm/v3/objects/contacts/batch/read"),
        ("POST", "/crm/v3/objects/{objectType}/search"),
        ("GET", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"),
        ("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default"),
        ("GET", "/crm/v3/properties/{objectType}"),
        ("POST", "/automation/v4/actions/callbacks/complete"),
    ):
        assert expected in driven, expected
    assert len(OPERATIONS) > 150
