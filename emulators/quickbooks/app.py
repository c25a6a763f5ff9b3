"""The QBO emulator's WSGI app: the accounting API under /v3/company/{realmId}/…, with auth,
throttling, faults and the request log around it."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta, timezone

from flask import Flask, Response, g, request

from emulators.quickbooks import assumptions, faults
from emulators.quickbooks.entities import (
    NAME_LISTS,
    Writer,
    canonical_entity,
    parse_when,
    public,
)
from emulators.quickbooks.query import Query, field_value, matches, parse, sort_key
from emulators.quickbooks.state import App, Company, QboState, format_time

DEFAULT_CLIENT_ID = "qbo-emulator-client-id"
DEFAULT_CLIENT_SECRET = "qbo-emulator-client-secret"
DEFAULT_DEV_CLIENT_ID = "qbo-emulator-dev-client-id"
DEFAULT_DEV_CLIENT_SECRET = "qbo-emulator-dev-client-secret"
DEFAULT_VERIFIER_TOKEN = "qbo-emulator-verifier-token"
REQUEST_LOG_SIZE = 10_000
PACIFIC = timezone(timedelta(hours=-8))
CDC_UNSUPPORTED = ("JournalCode", "TaxAgency", "TaxCode", "TaxRate", "TimeActivity")


def create_emulator(
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    dev_client_id: str = DEFAULT_DEV_CLIENT_ID,
    dev_client_secret: str = DEFAULT_DEV_CLIENT_SECRET,
    verifier_token: str = DEFAULT_VERIFIER_TOKEN,
    rate_limits: bool = True,
) -> Flask:
    from emulators.quickbooks import control, oauth

    app = Flask(__name__)
    state = QboState(App(client_id, client_secret, dev_client_id, dev_client_secret, verifier_token), rate_limits)
    app.extensions["qbo_emulator"] = state
    app.register_blueprint(oauth.bp)
    app.register_blueprint(control.bp)

    @app.before_request
    def gatekeeper():
        g.started, g.grant, g.throttle_key = time.monotonic(), None, None
        injected = _take_fault(state)
        if injected is not None:
            return injected
        if not request.path.startswith("/v3/"):
            return None
        return _authenticate_and_throttle(state)

    @app.after_request
    def record(response):
        if g.get("throttle_key") is not None:
            with state.lock:
                state.in_flight[g.throttle_key] = max(0, state.in_flight.get(g.throttle_key, 1) - 1)
        if not request.path.startswith("/_emulator"):
            _log(state, response.status_code)
        response.headers.setdefault("intuit_tid", f"emu-{int(time.time() * 1000)}")
        response.headers.setdefault("QBO-Version", "1977.157")
        return response

    @app.errorhandler(faults.QboFault)
    def fault(error: faults.QboFault):
        return _json({"Fault": error.fault(), "time": _time(state, g.get("company"))}, error.status)

    @app.errorhandler(404)
    def unknown(_error):
        return _json(
            {
                "Fault": faults.QboFault("610", "Object Not Found", f"Unknown path {request.path}").fault(),
                "time": _time(state, None),
            },
            404,
        )

    _register_api(app, state)
    return app


def state_of(app: Flask) -> QboState:
    return app.extensions["qbo_emulator"]


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8")


def _time(state: QboState, company: Company | None) -> str:
    """The envelope's `time`, in the company's offset (Pacific time when there is no company)."""
    return format_time(state.now(), company.tz if company else PACIFIC, millis=True)


def _authenticate_and_throttle(state: QboState):
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    with state.lock:
        grant = state.access_tokens.get(token)
        if grant is None:
            detail = "Malformed bearer token: too short or too long" if len(token) < 10 else "Token invalid"
            return _json(faults.authentication(detail), 401)
        if grant.expires_at <= state.clock.now():
            return _json(faults.authentication("Token expired: " + token[:12] + "..."), 401)
        realm_id = request.view_args.get("realm_id") if request.view_args else None
        if realm_id is not None and realm_id != grant.realm_id:
            body = {
                "Fault": {
                    "Error": [
                        {
                            "Message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                            "Detail": "",
                            "code": "3100",
                            "element": "",
                        }
                    ],
                    "type": "AUTHENTICATION",
                },
                "time": _time(state, None),
            }
            return _json(body, assumptions.WRONG_REALM_STATUS)
        g.grant = grant
        g.company = state.companies.get(grant.realm_id)
        if not state.rate_limits_enabled:
            return None
        key = (grant.realm_id, grant.client_id)
        now = state.clock.now()
        hits = [t for t in state.rate_windows.get(key, []) if t > now - 60]
        batches = [t for t in state.rate_windows.get(("batch", *key), []) if t > now - 60]
        is_batch = request.path.endswith("/batch")
        too_many = (
            len(hits) >= assumptions.REQUESTS_PER_MINUTE
            or len([t for t in hits if t > now - 1]) >= assumptions.REQUESTS_PER_SECOND
            or state.in_flight.get(key, 0) >= assumptions.CONCURRENT_REQUESTS
            or (is_batch and len(batches) >= assumptions.BATCHES_PER_MINUTE)
        )
        state.rate_windows[key] = hits
        if too_many:
            return Response(
                faults.THROTTLE_XML.format(time=_time(state, g.company)), status=429, content_type="application/xml"
            )
        hits.append(now)
        if is_batch:
            state.rate_windows[("batch", *key)] = [*batches, now]
        state.in_flight[key] = state.in_flight.get(key, 0) + 1
        g.throttle_key = key
    return None


def _take_fault(state: QboState):
    with state.lock:
        fault = next(
            (
                f
                for f in state.faults
                if f["remaining"] > 0
                and request.path.startswith(f["path"])
                and f.get("method") in (None, request.method)
            ),
            None,
        )
        if fault is None:
            return None
        fault["remaining"] -= 1
    if fault.get("latencyMs"):
        time.sleep(fault["latencyMs"] / 1000)
    if fault.get("timeoutSeconds"):
        time.sleep(fault["timeoutSeconds"])
    status = fault.get("status")
    if status is None:
        return None
    if status == 429:
        return Response(faults.THROTTLE_XML.format(time=_time(state, None)), status=429, content_type="application/xml")
    body = fault.get("body") or {
        "Fault": {
            "Error": [
                {
                    "Message": "An application error has occurred while processing your request",
                    "Detail": f"Injected fault ({status})",
                    "code": "10000",
                    "element": "",
                }
            ],
            "type": "SystemFault",
        },
        "time": _time(state, None),
    }
    return _json(body, status)


def _log(state: QboState, status: int) -> None:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    endpoint = f"{request.method} {rule}"
    if request.method == "POST" and request.view_args and "entity" in request.view_args:
        operation = request.args.get("operation")
        endpoint += f" ({request.view_args.get('entity', '')}{'?operation=' + operation if operation else ''})"
    grant = g.get("grant")
    with state.lock:
        state.request_counts[endpoint] = state.request_counts.get(endpoint, 0) + 1
        state.request_log.append(
            {
                "method": request.method,
                "path": request.full_path.rstrip("?"),
                "endpoint": endpoint,
                "status": status,
                "realmId": grant.realm_id if grant else None,
                "at": state.clock.iso(),
            }
        )
        if len(state.request_log) > REQUEST_LOG_SIZE:
            del state.request_log[: len(state.request_log) - REQUEST_LOG_SIZE]


# --- the accounting API --------------------------------------------------------------------------------------


def _company(state: QboState, realm_id: str) -> Company:
    company = state.companies.get(realm_id)
    if company is None:
        raise faults.QboFault("3100", "ApplicationAuthorizationFailed", f"No company {realm_id}", status=403)
    return company


def _body() -> dict:
    try:
        body = json.loads(request.get_data(as_text=True) or "{}")
    except ValueError:
        raise faults.QboFault(
            "2020", "Request has invalid or unsupported property", "The request body is not valid JSON"
        ) from None
    return body


def run_query(state: QboState, company: Company, text: str) -> dict:
    query = parse(text)
    entity = canonical_entity(query.entity)
    records = [public(r) for r in company.table(entity).values()]
    if entity in NAME_LISTS and not any(c.path.lower() == "active" for c in query.conditions):
        records = [r for r in records if r.get("Active", True)]
    for condition in query.conditions:
        if condition.path.lower() == "id" and condition.op not in ("=", "IN"):
            raise faults.query_invalid("Id supports only = and IN")
    records = [r for r in records if all(matches(r, c) for c in query.conditions)]
    if query.count:
        return {"totalCount": len(records)}
    for path, descending in reversed(query.order):
        records.sort(key=lambda r, p=path: sort_key(r, p), reverse=descending)
    if not query.order:
        records.sort(key=lambda r: int(r["Id"]) if str(r.get("Id", "")).isdigit() else 0)
    page = records[query.start - 1 : query.start - 1 + query.max_results]
    if query.projection is not None:
        page = [_project(record, query, entity) for record in page]
    if not page:
        return {}
    return {entity: page, "startPosition": query.start, "maxResults": len(page)}


def _project(record: dict, query: Query, entity: str) -> dict:
    projected = {"Id": record["Id"], "domain": "QBO", "sparse": True}
    for name in query.projection:
        value = (
            field_value(record, name)
            if "." in name
            else next((v for k, v in record.items() if k.lower() == name.lower()), None)
        )
        if value is None and not any(k.lower() == name.split(".")[0].lower() for k in record):
            continue
        projected[name] = value
    return projected


def _wants_invoice_link() -> bool:
    return "invoicelink" in [part.strip().lower() for part in request.args.get("include", "").split(",")]


def _with_invoice_link(company: Company, invoice: dict) -> dict:
    """`include=invoiceLink` (NOTES §1.1): the customer-facing payment link, present only when the
    invoice can be paid online and has a BillEmail to send it to (assumptions.INVOICE_LINK_*)."""
    payable = any(invoice.get(flag) is True for flag in assumptions.INVOICE_LINK_PAYMENT_FLAGS)
    if not payable or not (invoice.get("BillEmail") or {}).get("Address"):
        return invoice
    token = hashlib.sha256(f"{company.realm_id}:{invoice['Id']}".encode()).hexdigest()[:40]
    return {**invoice, "InvoiceLink": assumptions.INVOICE_LINK_FORMAT.format(token=token)}


def _register_api(app: Flask, state: QboState) -> None:
    @app.post("/v3/company/<realm_id>/query")
    @app.get("/v3/company/<realm_id>/query")
    def query(realm_id: str):
        text = request.args.get("query") if request.method == "GET" else request.get_data(as_text=True)
        with state.lock:
            company = _company(state, realm_id)
            answer = run_query(state, company, text or "")
            if _wants_invoice_link():
                answer["Invoice"] = [_with_invoice_link(company, invoice) for invoice in answer.get("Invoice", [])]
            return _json({"QueryResponse": answer, "time": _time(state, company)})

    @app.get("/v3/company/<realm_id>/cdc")
    def cdc(realm_id: str):
        with state.lock:
            company = _company(state, realm_id)
            return _json(
                change_data_capture(
                    state, company, request.args.get("entities", ""), request.args.get("changedSince", "")
                )
            )

    @app.post("/v3/company/<realm_id>/batch")
    def batch(realm_id: str):
        body = _body()
        items = body.get("BatchItemRequest")
        if not isinstance(items, list):
            raise faults.required("BatchItemRequest")
        if len(items) > assumptions.BATCH_MAX_ITEMS:
            raise faults.business(
                f"Business Validation Error: A batch can hold at most {assumptions.BATCH_MAX_ITEMS} "
                f"items; this one has {len(items)}."
            )
        with state.lock:
            company = _company(state, realm_id)
            answers = [_batch_item(state, company, item) for item in items]
            return _json({"BatchItemResponse": answers, "time": _time(state, company)})

    @app.get("/v3/company/<realm_id>/preferences")
    def preferences(realm_id: str):
        with state.lock:
            company = _company(state, realm_id)
            return _json({"Preferences": public(company.preferences), "time": _time(state, company)})

    @app.get("/v3/company/<realm_id>/companyinfo/<entity_id>")
    def company_info(realm_id: str, entity_id: str):
        with state.lock:
            company = _company(state, realm_id)
            if entity_id not in (realm_id, "1"):
                raise faults.not_found("CompanyInfo", entity_id)
            return _json({"CompanyInfo": public(company.company_info), "time": _time(state, company)})

    @app.post("/v3/company/<realm_id>/<entity>")
    def write(realm_id: str, entity: str):
        body = _body()
        request_id = request.args.get("requestid")
        with state.lock:
            company = _company(state, realm_id)
            name = canonical_entity(entity)
            if request_id and request_id in company.request_ids:  # QBO answers a repeat with the first answer
                status, answer = company.request_ids[request_id]
                return _json(answer, status)
            try:
                saved = Writer(state, company).save(name, body, request.args.to_dict())
                status, answer = 200, {name: saved, "time": _time(state, company)}
            except faults.QboFault as error:
                status, answer = error.status, {"Fault": error.fault(), "time": _time(state, company)}
            if request_id:
                company.request_ids[request_id] = (status, answer)
            return _json(answer, status)

    @app.get("/v3/company/<realm_id>/<entity>/<entity_id>")
    def read(realm_id: str, entity: str, entity_id: str):
        with state.lock:
            company = _company(state, realm_id)
            name = canonical_entity(entity)
            record = company.table(name).get(entity_id)
            if record is None:
                raise faults.not_found(name, entity_id)
            answer = public(record)
            if name == "Invoice" and _wants_invoice_link():
                answer = _with_invoice_link(company, answer)
            return _json({name: answer, "time": _time(state, company)})

    @app.post("/v3/company/<realm_id>/invoice/<entity_id>/send")
    def send(realm_id: str, entity_id: str):
        with state.lock:
            company = _company(state, realm_id)
            invoice = company.table("Invoice").get(entity_id)
            if invoice is None:
                raise faults.not_found("Invoice", entity_id)
            send_to = request.args.get("sendTo") or (invoice.get("BillEmail") or {}).get("Address")
            if not send_to:
                raise faults.required("BillEmail")
            invoice["BillEmail"] = {"Address": send_to}
            invoice["EmailStatus"] = "EmailSent"
            invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": format_time(state.now(), company.tz)}
            invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
            invoice["MetaData"]["LastUpdatedTime"] = format_time(state.now(), company.tz)
            state.webhooks.record(company, "Invoice", entity_id, "Emailed")
            return _json({"Invoice": public(invoice), "time": _time(state, company)})


def _batch_item(state: QboState, company: Company, item: dict) -> dict:
    batch_id = item.get("bId")
    try:
        if "Query" in item:
            return {"bId": batch_id, "QueryResponse": run_query(state, company, item["Query"])}
        entity_key = next((k for k in item if k not in ("bId", "operation", "optionsData")), None)
        if entity_key is None:
            raise faults.required("entity")
        entity = canonical_entity(entity_key)
        operation = item.get("operation", "create")
        params = {"delete": {"operation": "delete"}, "void": {"operation": "void"}}.get(operation, {})
        if operation == "void" and entity != "Invoice":
            params = {"operation": "update", "include": "void"}
        saved = Writer(state, company).save(entity, item[entity_key], params)
        return {"bId": batch_id, entity: saved}
    except faults.QboFault as error:
        return {"bId": batch_id, "Fault": {"type": error.fault_type, "Error": error.fault()["Error"]}}


def change_data_capture(state: QboState, company: Company, entities_text: str, changed_since: str) -> dict:
    entities = [canonical_entity(e.strip()) for e in entities_text.split(",") if e.strip()]
    if not entities:
        raise faults.required("entities")
    for entity in entities:
        if entity in CDC_UNSUPPORTED:
            raise faults.query_invalid(f"Operation cdc is not supported for {entity}")
    since = parse_when(changed_since, company.tz)
    if since is None:
        raise faults.required("changedSince")
    if since < state.now() - timedelta(days=assumptions.CDC_WINDOW_DAYS):
        raise faults.QboFault(
            assumptions.CDC_TOO_OLD_CODE,
            "Invalid query",
            f"Operation cdc with changedSince date {changed_since} which is older than fixed days is not supported.",
        )
    budget = assumptions.CDC_MAX_OBJECTS
    responses = []
    for entity in entities:
        live = [
            r
            for r in company.table(entity).values()
            if (parse_when(r["MetaData"]["LastUpdatedTime"], company.tz) or since) >= since
        ]
        live.sort(key=lambda r: parse_when(r["MetaData"]["LastUpdatedTime"], company.tz))
        gone = [(entity_id, when) for name, entity_id, when in company.deleted if name == entity and when >= since]
        objects = [public(r) for r in live] + [
            {
                "status": "Deleted",
                "domain": "QBO",
                "Id": entity_id,
                "MetaData": {"LastUpdatedTime": format_time(when, company.tz)},
            }
            for entity_id, when in gone
        ]
        objects = objects[:budget]
        budget -= len(objects)
        if objects:
            responses.append({entity: objects, "startPosition": 1, "maxResults": len(objects)})
    return {"CDCResponse": [{"QueryResponse": responses or [{}]}], "time": _time(state, company)}
