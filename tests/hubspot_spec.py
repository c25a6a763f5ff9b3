"""Validation of the HubSpot emulator's responses against HubSpot's own OpenAPI specs.

The specs are `../shared/reference/hubspot/*.json`, unmodified. Each is loaded
with its server URL replaced by "/" so that paths on any host match. A
response is checked against the first spec that knows its path and method;
paths that no spec covers (the control API, the authorize page) are
reported as such.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound

REFERENCE = Path(
    os.environ.get(
        "HUBSPOT_REFERENCE_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "hubspot"
    )
)
# Specific specs first: the generic objects spec would match the typed paths too.
SPEC_ORDER = (
    "crm-contacts-v3.json",
    "crm-companies-v3.json",
    "crm-products-v3.json",
    "crm-line-items-v3.json",
    "crm-invoices-v3.json",
    "crm-commerce-payments-v3.json",
    "crm-deals-v3.json",
    "crm-objects-v3.json",
    "crm-properties-v3.json",
    "crm-associations-v4.json",
    "crm-associations-schema-v4.json",
    "automation-actions-v4.json",
    "crm-timeline-v3.json",
    "oauth-v1.json",
)


def reference_available() -> bool:
    return (REFERENCE / SPEC_ORDER[0]).exists()


def prepared_document(name: str) -> dict:
    """One spec as HubSpot publishes it, served from "/" and with the two known adjustments below."""
    document = copy.deepcopy(json.loads((REFERENCE / name).read_text()))
    document["servers"] = [{"url": "/"}]
    _json_for_any_media_type(document)
    _nullable_property_values(document)
    return document


@cache
def specs() -> list[tuple[str, OpenAPI]]:
    return [(name, OpenAPI.from_dict(prepared_document(name))) for name in SPEC_ORDER]


def _json_for_any_media_type(node: object) -> None:
    """Error bodies are declared `*/*` (HubSpot sends JSON: validate them as JSON); 204s as `content: {}`."""
    if isinstance(node, dict):
        if node.get("content") == {}:
            del node["content"]  # "no content" (204): openapi-core would demand a body otherwise
        content = node.get("content")
        if isinstance(content, dict) and "*/*" in content and "application/json" not in content:
            content["application/json"] = content.pop("*/*")
        for value in node.values():
            _json_for_any_media_type(value)
    elif isinstance(node, list):
        for value in node:
            _json_for_any_media_type(value)


def _nullable_property_values(document: dict) -> None:
    """The one known gap in the specs: they type record property values as plain strings, but
    HubSpot answers null for a requested property that is empty (NOTES §1.3: `{str: str|null}`)."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        values = schema.get("properties", {}).get("properties", {}).get("additionalProperties")
        if name.startswith("SimplePublic") and isinstance(values, dict) and values.get("type") == "string":
            values["nullable"] = True


@dataclass
class SpecReport:
    checked: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def check(request, response, report: SpecReport) -> None:
    """Validate one werkzeug request/response pair; record the outcome in `report`."""
    if request.path.startswith("/_emulator"):
        return
    openapi_request = WerkzeugOpenAPIRequest(request)
    openapi_response = WerkzeugOpenAPIResponse(response)
    label = f"{request.method} {request.path} → {response.status_code}"
    for name, spec in specs():
        try:
            spec.validate_response(openapi_request, openapi_response)
        except (PathNotFound, OperationNotFound, ServerNotFound):
            continue
        except Exception as error:  # any validation failure is a finding, with its detail
            detail = getattr(error, "schema_errors", None) or getattr(error, "__cause__", None) or error
            report.violations.append(f"{label} [{name}]: {type(error).__name__}: {detail}")
            return
        report.checked.append(label)
        return
    report.uncovered.append(label)
