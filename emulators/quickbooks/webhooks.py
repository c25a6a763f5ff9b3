"""QBO webhooks (NOTES §6): CloudEvents (default) or the legacy eventNotifications format, signed
with `intuit-signature`, realms mixed in one delivery, retried on the emulator's clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import requests

from emulators.quickbooks import assumptions
from emulators.quickbooks.state import format_time
from emulators.serving import BackgroundLoop

if TYPE_CHECKING:
    from emulators.quickbooks.state import Company, QboState

CLOUD_EVENT_VERBS = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Merge": "merged",
    "Void": "voided",
    "Emailed": "emailed",
}


def signature(verifier_token: str, body: bytes) -> str:
    """base64(HMAC-SHA256(key=verifier token, msg=raw body))."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Delivery:
    delivery_id: int
    events: list[dict]
    due_at: float
    attempt: int = 0
    status: str = "pending"
    outcomes: list[dict] = field(default_factory=list)

    def to_api(self) -> dict:
        return {
            "id": self.delivery_id,
            "status": self.status,
            "attempts": self.attempt,
            "events": self.events,
            "outcomes": self.outcomes,
        }


class WebhookDispatcher:
    def __init__(self, state: QboState) -> None:
        self.state = state
        self.url: str | None = None
        self.format = "cloudevents"
        self.auto_deliver = True
        self._sending = threading.Lock()
        self._loop = BackgroundLoop(self._step, "qbo-webhooks")
        self.clear()

    def clear(self) -> None:
        self.pending: list[dict] = []
        self.deliveries: list[Delivery] = []
        self.faults: list[str] = []
        self._next_id = 1

    def record(self, company: Company, entity: str, entity_id: str, operation: str) -> None:
        if self.url is None:
            return
        self.pending.append(
            {
                "realmId": company.realm_id,
                "name": entity,
                "id": entity_id,
                "operation": operation,
                "lastUpdated": format_time(self.state.now(), company.tz),
                "eventId": str(uuid.uuid4()),
                "time": self.state.now().isoformat().replace("+00:00", "Z"),
            }
        )

    def body_of(self, events: list[dict]) -> bytes:
        if self.format == "legacy":
            realms: dict[str, list[dict]] = {}
            for event in events:
                realms.setdefault(event["realmId"], []).append(
                    {
                        "name": event["name"],
                        "id": event["id"],
                        "operation": event["operation"],
                        "lastUpdated": event["lastUpdated"],
                    }
                )
            payload = {
                "eventNotifications": [
                    {"realmId": realm, "dataChangeEvent": {"entities": entities}} for realm, entities in realms.items()
                ]
            }
        else:
            payload = [
                {
                    "specversion": "1.0",
                    "id": e["eventId"],
                    "source": "intuit.emulator",
                    "type": f"qbo.{e['name'].lower()}.{CLOUD_EVENT_VERBS[e['operation']]}.v1",
                    "datacontenttype": "application/json",
                    "time": e["time"],
                    "intuitentityid": e["id"],
                    "intuitaccountid": e["realmId"],
                    "data": {},
                }
                for e in events
            ]
        return json.dumps(payload, separators=(",", ":")).encode()

    def flush(self) -> None:
        now = self.state.clock.now()
        for start in range(0, len(self.pending), assumptions.WEBHOOK_BATCH):
            batch = self.pending[start : start + assumptions.WEBHOOK_BATCH]
            fault = self.faults.pop(0) if self.faults else None
            if fault == "reorder":
                batch = list(reversed(batch))
            delivery = Delivery(self._next_id, batch, now)
            self._next_id += 1
            if fault == "drop":
                delivery.status = "dropped"
            self.deliveries.append(delivery)
            if fault == "duplicate":
                self.deliveries.append(Delivery(self._next_id, list(batch), now))
                self._next_id += 1
        self.pending = []

    def deliver_due(self) -> list[Delivery]:
        with self._sending:
            with self.state.lock:
                self.flush()
                now = self.state.clock.now()
                due = [d for d in self.deliveries if d.status in ("pending", "retrying") and d.due_at <= now]
                url, token = self.url, self.state.app.verifier_token
            for delivery in due:
                self._send(delivery, url, token)
            return due

    def _send(self, delivery: Delivery, url: str | None, token: str) -> None:
        body = self.body_of(delivery.events)
        headers = {
            "content-type": "application/json; charset=utf-8",
            "intuit-signature": signature(token, body),
            "intuit-t-id": str(uuid.uuid4()),
            "intuit-created-time": self.state.now().isoformat(),
            "intuit-notification-schema-version": "0.1",
            "user-agent": "intuit_notification_server/0.1",
        }
        outcome = {"attempt": delivery.attempt, "at": self.state.clock.iso()}
        try:
            if url is None:
                raise requests.ConnectionError("no webhook URL")
            response = requests.post(url, data=body, headers=headers, timeout=assumptions.WEBHOOK_TIMEOUT_SECONDS)
            outcome.update(status=response.status_code)
            succeeded = response.status_code == 200
        except requests.RequestException as error:
            outcome.update(status=None, error=f"{type(error).__name__}: {error}"[:300])
            succeeded = False
        with self.state.lock:
            delivery.outcomes.append(outcome)
            delivery.attempt += 1
            if succeeded:
                delivery.status = "delivered"
            elif delivery.attempt > len(assumptions.WEBHOOK_RETRY_DELAYS):
                delivery.status = "failed"
            else:
                delivery.status = "retrying"
                delivery.due_at = self.state.clock.now() + assumptions.WEBHOOK_RETRY_DELAYS[delivery.attempt - 1]

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _step(self) -> None:
        if self.auto_deliver:
            self.deliver_due()
