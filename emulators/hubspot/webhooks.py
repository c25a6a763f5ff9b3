"""Webhooks (NOTES §4): events from the emulator's own writes, batched, signed, delivered, retried.

Every write through the API (or through the control API's "UI" edits) records
a change; each change becomes one event per matching subscription of the
loaded project. Events wait in a per-portal queue and go out in requests of at
most 100, signed v1 and v3, to the app's target URL. A failure (connection
error, any non-2xx, no answer within 5 s) is retried on the emulator's clock,
up to 10 times over about 24 hours, with `attemptNumber` counting up.

A background thread delivers whatever is due; tests can turn that off and
call `deliver_now()` through the control API instead, and can drop,
duplicate or reorder the next deliveries.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import requests

from emulators.hubspot import assumptions, signatures
from emulators.hubspot.schema import ObjectType
from emulators.serving import BackgroundLoop

if TYPE_CHECKING:
    from emulators.hubspot.state import Account, EmulatorState

BATCH_LIMIT = 100
TIMEOUT_SECONDS = 5.0
LEGACY_PREFIXES = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "products": "product",
    "line_items": "line_item",
}
CLASSIC_KINDS = ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange", "privacyDeletion")


@dataclass
class Delivery:
    delivery_id: int
    hub_id: int
    events: list[dict]
    due_at: float
    attempt: int = 0
    status: str = "pending"  # pending | retrying | delivered | failed | dropped
    outcomes: list[dict] = field(default_factory=list)

    def to_api(self) -> dict:
        return {
            "id": self.delivery_id,
            "portalId": self.hub_id,
            "status": self.status,
            "attempts": self.attempt,
            "eventIds": [e["eventId"] for e in self.events],
            "events": self.events,
            "outcomes": self.outcomes,
        }


class WebhookDispatcher:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.auto_deliver = True
        self.pending: dict[int, list[dict]] = {}
        self.deliveries: list[Delivery] = []
        self.faults: list[str] = []  # "drop" | "duplicate" | "reorder", applied to the next deliveries
        self._next_event_id = 1
        self._next_delivery_id = 1
        self._sending = threading.Lock()
        self._loop = BackgroundLoop(self._step, "hubspot-webhooks")

    # --- recording changes ----------------------------------------------------------------------------

    def record(
        self, account: Account, source: tuple[str, str], kind: str, object_type: ObjectType, object_id: int, **fields
    ) -> None:
        """Turn one change into events for every subscription that wants it (caller holds state.lock)."""
        project = self.state.project
        if project is None or project.webhook_target() is None:
            return
        if self.state.default_app.app_id not in account.installed_apps:
            return
        for subscription in project.subscriptions():
            subscription_type = self._matches(subscription, kind, object_type, fields.get("propertyName"))
            if subscription_type is None:
                continue
            event = {
                "eventId": self._next_event_id,
                "subscriptionId": subscription["id"],
                "portalId": account.hub_id,
                "appId": self.state.default_app.app_id,
                "occurredAt": self.state.clock.now_ms(),
                "subscriptionType": subscription_type,
                "attemptNumber": 0,
                "objectId": object_id,
                "changeSource": source[0],
                "sourceId": source[1],
            }
            if subscription_type.startswith("object."):
                event["objectTypeId"] = object_type.type_id
            if kind == "creation":
                event["changeFlag"] = "NEW"
            event.update({k: v for k, v in fields.items() if v is not None})
            self._next_event_id += 1
            self.pending.setdefault(account.hub_id, []).append(event)

    @staticmethod
    def _matches(subscription: dict, kind: str, object_type: ObjectType, property_name: str | None) -> str | None:
        wanted = subscription.get("subscriptionType", "")
        prefix, _, wanted_kind = wanted.partition(".")
        if wanted_kind != kind:
            return None
        if prefix == "object":
            named = str(subscription.get("objectType", "")).lower()
            if named not in (object_type.singular, object_type.name, object_type.type_id):
                return None
        elif LEGACY_PREFIXES.get(object_type.name) != prefix:
            return None
        if kind == "propertyChange" and subscription.get("propertyName") != property_name:
            return None
        return wanted

    # --- delivering --------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Close the pending events into deliveries of ≤ 100 events (caller holds state.lock)."""
        now = self.state.clock.now()
        for hub_id, events in self.pending.items():
            for start in range(0, len(events), BATCH_LIMIT):
                batch = events[start : start + BATCH_LIMIT]
                fault = self.faults.pop(0) if self.faults else None
                if fault == "reorder":
                    batch = list(reversed(batch))
                delivery = Delivery(self._next_delivery_id, hub_id, batch, due_at=now)
                self._next_delivery_id += 1
                if fault == "drop":
                    delivery.status = "dropped"
                self.deliveries.append(delivery)
                if fault == "duplicate":
                    self.deliveries.append(
                        Delivery(self._next_delivery_id, hub_id, [dict(e) for e in batch], due_at=now)
                    )
                    self._next_delivery_id += 1
        self.pending.clear()

    def deliver_due(self) -> list[Delivery]:
        """Send every delivery that is due now; returns them (with their outcomes)."""
        with self._sending:
            with self.state.lock:
                self.flush()
                now = self.state.clock.now()
                due = [d for d in self.deliveries if d.status in ("pending", "retrying") and d.due_at <= now]
                target = self.state.project.webhook_target() if self.state.project else None
                secret = self.state.default_app.client_secret
            for delivery in due:
                self._send(delivery, target, secret)
            return due

    def _send(self, delivery: Delivery, target: str | None, secret: str) -> None:
        events = [{**event, "attemptNumber": delivery.attempt} for event in delivery.events]
        body = json.dumps(events, separators=(",", ":"))
        timestamp = self.state.clock.now_ms()
        headers = {
            "Content-Type": "application/json",
            **signatures.headers(secret, "POST", target or "", body, timestamp, versions=("v1", "v3")),
        }
        started = time.monotonic()
        outcome = {"attemptNumber": delivery.attempt, "at": self.state.clock.iso()}
        try:
            if target is None:
                raise requests.ConnectionError("no target URL")
            response = requests.post(target, data=body.encode(), headers=headers, timeout=TIMEOUT_SECONDS)
            outcome.update(status=response.status_code, body=response.text[:500])
            succeeded = 200 <= response.status_code < 300
        except requests.RequestException as error:
            outcome.update(status=None, error=f"{type(error).__name__}: {error}"[:500])
            succeeded = False
        outcome["durationMs"] = round((time.monotonic() - started) * 1000, 1)
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

    # --- the background thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _step(self) -> None:
        if self.auto_deliver:
            self.deliver_due()
            self.state.calls.process_due()


def association_type_name(from_type: ObjectType, to_type: ObjectType) -> str:
    """`CONTACT_TO_COMPANY`, as associationChange events name it."""
    return f"{from_type.singular}_to_{to_type.singular}".upper()
