"""HubSpot calling the app: app-card fetches, workflow-action executions, options fetches (NOTES §5–6).

These are triggered through the control API (a user opening a record, a
workflow reaching the action) and answer with what the app said. Executions
that must be retried (5xx, 429, no answer) or that the app blocks are kept
and moved on by the background thread, on the emulator's clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import requests

from emulators.hubspot import assumptions, signatures
from emulators.hubspot.errors import not_found, validation

if TYPE_CHECKING:
    from emulators.hubspot.state import EmulatorState

FINAL_STATES = ("SUCCESS", "FAIL_CONTINUE", "FAILED", "EXPIRED")
ISO_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def duration_seconds(text: str) -> int | None:
    """Seconds in an ISO-8601 duration such as P1WT1H (what hs_expiration_duration holds)."""
    match = ISO_DURATION.match(text or "")
    if not match or not any(match.groups()):
        return None
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass
class Execution:
    callback_id: str
    hub_id: int
    action_uid: str
    url: str
    body: dict
    started_at: float
    state: str = "PENDING"  # PENDING | RETRYING | SUCCESS | FAIL_CONTINUE | BLOCK | ASYNC | FAILED | EXPIRED
    output_fields: dict = field(default_factory=dict)
    attempts: list[dict] = field(default_factory=list)
    due_at: float | None = None  # next retry, or the end of a block

    def to_api(self) -> dict:
        return {
            "callbackId": self.callback_id,
            "portalId": self.hub_id,
            "action": self.action_uid,
            "url": self.url,
            "request": self.body,
            "state": self.state,
            "outputFields": self.output_fields,
            "attempts": self.attempts,
        }


def send(
    method: str, url: str, body: object | None, secret: str, now_ms: int, versions: tuple, timeout: float
) -> tuple[int | None, object, str | None, dict]:
    """One signed request: (status or None, parsed JSON or text, error, response headers)."""
    text = "" if body is None else json.dumps(body, separators=(",", ":"))
    headers = signatures.headers(secret, method, url, text, now_ms, versions=versions)
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = requests.request(
            method, url, data=text.encode() if body is not None else None, headers=headers, timeout=timeout
        )
    except requests.RequestException as error:
        return None, None, f"{type(error).__name__}: {error}"[:500], {}
    try:
        payload = response.json()
    except ValueError:
        payload = response.text[:2000]
    return response.status_code, payload, None, dict(response.headers)


class AppCaller:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.executions: dict[str, Execution] = {}
        self._counter = 0

    def _project(self):
        if self.state.project is None:
            raise validation("No project loaded: POST /_emulator/project with the hubspot_extensions folder first")
        return self.state.project

    def _user(self, hub_id: int, user_id: int | None):
        account = self.state.accounts.get(hub_id)
        if account is None:
            raise not_found(f"No account {hub_id}")
        users = list(account.users.values())
        user = account.users.get(user_id) if user_id else (users[0] if users else None)
        if user is None:
            raise not_found(f"No user {user_id} in account {hub_id}")
        return account, user

    # --- app cards: hubspot.fetch ------------------------------------------------------------------------------

    def card_fetch(
        self,
        hub_id: int,
        object_type: str,
        object_id: str,
        *,
        card: str | None = None,
        user_id: int | None = None,
        url: str | None = None,
        method: str = "GET",
        body: dict | None = None,
    ) -> dict:
        project = self._project()
        with self.state.lock:
            account, user = self._user(hub_id, user_id)
            if url is None:
                chosen = project.cards.get(card) if card else next(iter(project.cards.values()), None)
                if chosen is None or not chosen.get("fetchUrl"):
                    raise validation("No card with a fetchUrl (card-config.json) in the project; pass `url`")
                url = chosen["fetchUrl"]
            permitted = project.app.get("permittedUrls", {}).get("fetch", [])
            if not any(url.startswith(p) for p in permitted):
                raise validation(f"{url} is not under the app's permittedUrls.fetch {permitted}")
            query = {
                "appId": self.state.default_app.app_id,
                "portalId": hub_id,
                "userId": user.user_id,
                "userEmail": user.email,
                "associatedObjectId": object_id,
                "associatedObjectType": object_type.upper(),
            }
            target = project.local_url(url)
            target += ("&" if "?" in target else "?") + urlencode(query)
            secret = self.state.default_app.client_secret
        attempts = []
        for attempt in range(2):  # one retry on connection failure or 5xx
            status, payload, error, _headers = send(
                method, target, body, secret, self.state.clock.now_ms(), ("v3",), assumptions.CARD_FETCH_TIMEOUT_SECONDS
            )
            attempts.append({"attempt": attempt, "status": status, "error": error})
            if status is not None and status < 500:
                break
        return {"url": target, "status": status, "body": payload, "error": error, "attempts": attempts}

    # --- workflow actions ---------------------------------------------------------------------------------------

    def execute_action(
        self,
        hub_id: int,
        action_uid: str,
        object_type: str,
        object_id: str,
        input_fields: dict,
        workflow_id: int = 192_814_114,
    ) -> Execution:
        project = self._project()
        with self.state.lock:
            action = project.actions.get(action_uid)
            if action is None:
                raise not_found(f"No workflow action {action_uid} in the project")
            self._user(hub_id, None)
            self._check_inputs(action, input_fields)
            self._counter += 1
            callback_id = f"ap-{hub_id}-{action['definitionId']}-{self._counter}-0"
            body = {
                "callbackId": callback_id,
                "origin": {
                    "portalId": hub_id,
                    "actionDefinitionId": action["definitionId"],
                    "actionDefinitionVersion": 1,
                    "extensionDefinitionId": action["definitionId"],
                    "extensionDefinitionVersionId": 1,
                },
                "context": {"source": "WORKFLOWS", "workflowId": workflow_id},
                "object": {
                    "objectId": int(object_id),
                    "objectType": object_type.upper(),
                    "properties": self._object_properties(hub_id, object_type, object_id, action),
                },
                "inputFields": input_fields,
            }
            execution = Execution(
                callback_id,
                hub_id,
                action_uid,
                project.local_url(action["actionUrl"]),
                body,
                started_at=self.state.clock.now(),
            )
            self.executions[callback_id] = execution
        self._attempt(execution)
        return execution

    @staticmethod
    def _check_inputs(action: dict, input_fields: dict) -> None:
        declared = {f["typeDefinition"]["name"]: f for f in action.get("inputFields", [])}
        unknown = sorted(set(input_fields) - set(declared))
        missing = sorted(n for n, f in declared.items() if f.get("isRequired") and n not in input_fields)
        if unknown or missing:
            raise validation(f"Input fields do not match the action: unknown {unknown}, missing required {missing}")

    def _object_properties(self, hub_id: int, object_type: str, object_id: str, action: dict) -> dict:
        from emulators.hubspot.crm import Crm
        from emulators.hubspot.schema import resolve_object_type

        wanted = action.get("objectRequestOptions", {}).get("properties", [])
        resolved = resolve_object_type(object_type)
        if not wanted or resolved is None:
            return {}
        record = Crm(self.state, self.state.accounts[hub_id]).find(resolved, object_id)
        if record is None:
            raise not_found(f"No {resolved.name} {object_id} in account {hub_id}")
        return {name: record.properties.get(name) for name in wanted}

    def _attempt(self, execution: Execution) -> None:
        secret = self.state.default_app.client_secret
        status, payload, error, headers = send(
            "POST",
            execution.url,
            execution.body,
            secret,
            self.state.clock.now_ms(),
            ("v2", "v3"),
            assumptions.ACTION_TIMEOUT_SECONDS,
        )
        now = self.state.clock.now()
        with self.state.lock:
            execution.attempts.append({"at": self.state.clock.iso(), "status": status, "error": error, "body": payload})
            outputs = payload.get("outputFields", {}) if isinstance(payload, dict) else {}
            declared_state = outputs.get("hs_execution_state") if isinstance(outputs, dict) else None
            if status is not None and 200 <= status < 300:
                execution.output_fields = outputs if isinstance(outputs, dict) else {}
                execution.state = declared_state or "SUCCESS"
                if execution.state == "BLOCK":
                    wait = (
                        duration_seconds(outputs.get("hs_expiration_duration", ""))
                        or assumptions.ACTION_BLOCK_DEFAULT_SECONDS
                    )
                    execution.due_at = now + wait
                elif execution.state == "ASYNC":
                    execution.due_at = now + assumptions.ACTION_BLOCK_DEFAULT_SECONDS
                return
            retryable = status is None or status >= 500 or status == 429
            if not retryable:
                execution.state = "FAILED"
                return
            if now - execution.started_at >= assumptions.ACTION_RETRY_WINDOW:
                execution.state = "FAILED"
                return
            if status == 429:
                retry_after = headers.get("Retry-After", "")
                delay = int(retry_after) if retry_after.isdigit() else assumptions.ACTION_RETRY_FIRST_DELAY
            else:
                failures = sum(1 for a in execution.attempts if a["status"] is None or a["status"] >= 500)
                delay = min(
                    assumptions.ACTION_RETRY_FIRST_DELAY * 2 ** (failures - 1), assumptions.ACTION_RETRY_MAX_DELAY
                )
            execution.state, execution.due_at = "RETRYING", now + delay

    def complete(self, callback_id: str, output_fields: dict) -> None:
        """The app finishes a blocked or async execution (callbacks-complete endpoints)."""
        execution = self.executions.get(callback_id)
        if execution is None:
            raise not_found(f"No execution waiting for callback {callback_id}", callbackId=[callback_id])
        if execution.state not in ("BLOCK", "ASYNC"):
            raise validation(f"Execution {callback_id} is {execution.state}, not waiting for a callback")
        state = output_fields.get("hs_execution_state", "SUCCESS")
        if state not in ("SUCCESS", "FAIL_CONTINUE"):
            raise validation("hs_execution_state must be SUCCESS or FAIL_CONTINUE when completing a callback")
        execution.output_fields, execution.state, execution.due_at = output_fields, state, None

    def process_due(self) -> None:
        """Retry executions that are due, and let expired blocks continue."""
        now = self.state.clock.now()
        with self.state.lock:
            due = [e for e in self.executions.values() if e.due_at is not None and e.due_at <= now]
        for execution in due:
            if execution.state == "RETRYING":
                self._attempt(execution)
            elif execution.state in ("BLOCK", "ASYNC"):
                with self.state.lock:
                    execution.state, execution.due_at = "EXPIRED", None

    # --- options fetch -----------------------------------------------------------------------------------------

    def fetch_options(
        self,
        hub_id: int,
        action_uid: str,
        input_field: str,
        input_fields: dict | None = None,
        q: str | None = None,
        after: str | None = None,
    ) -> dict:
        project = self._project()
        with self.state.lock:
            action = project.actions.get(action_uid)
            if action is None:
                raise not_found(f"No workflow action {action_uid} in the project")
            field_spec = next(
                (f for f in action.get("inputFields", []) if f["typeDefinition"]["name"] == input_field), None
            )
            options_url = (field_spec or {}).get("typeDefinition", {}).get("optionsUrl")
            if not options_url:
                raise validation(f"Input field {input_field} of {action_uid} has no optionsUrl")
            body = {
                "origin": {
                    "portalId": hub_id,
                    "actionDefinitionId": action["definitionId"],
                    "actionDefinitionVersion": 1,
                },
                "objectTypeId": "0-1",
                "inputFieldName": input_field,
                "inputFields": input_fields or {},
                "fetchOptions": {k: v for k, v in (("q", q), ("after", after)) if v is not None},
            }
            url = project.local_url(options_url)
        status, payload, error, _headers = send(
            "POST",
            url,
            body,
            self.state.default_app.client_secret,
            self.state.clock.now_ms(),
            ("v2", "v3"),
            assumptions.ACTION_TIMEOUT_SECONDS,
        )
        return {"url": url, "request": body, "status": status, "body": payload, "error": error}
