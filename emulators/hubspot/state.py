"""The emulator's whole state, in memory: apps, accounts, tokens, records, associations.

One `EmulatorState` per server. Every HTTP handler takes `state.lock` for the
whole of its work on the state, so concurrent requests see consistent data
(latency faults sleep outside the lock).
"""

from __future__ import annotations

import bisect
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from emulators.clock import Clock
from emulators.hubspot.schema import OBJECT_TYPES, PropertyDefinition, default_properties, default_property_groups

ALL_SCOPES = (
    "oauth",
    *(f"crm.objects.{t.scope}.{access}" for t in OBJECT_TYPES.values() for access in ("read", "write")),
    *(f"crm.schemas.{t.scope}.{access}" for t in OBJECT_TYPES.values() for access in ("read", "write")),
    "e-commerce",
    "automation",
    "timeline",
    "tax_rates.read",
    "settings.users.read",
)


def iso_from_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class App:
    app_id: int
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ALL_SCOPES  # what the app may request
    name: str = "Ledgersync"


@dataclass
class User:
    user_id: int
    email: str
    super_admin: bool = False
    marketplace_access: bool = False

    @property
    def can_install_apps(self) -> bool:
        return self.super_admin or self.marketplace_access


@dataclass
class Record:
    id: int
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    history: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    archived_ms: int | None = None


@dataclass
class ObjectTable:
    """The records of one object type in one portal, ordered by id for paging."""

    records: dict[int, Record] = field(default_factory=dict)
    ordered_ids: list[int] = field(default_factory=list)
    archived: dict[int, Record] = field(default_factory=dict)
    merged_into: dict[int, int] = field(default_factory=dict)
    unique_index: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        self.records[record.id] = record
        bisect.insort(self.ordered_ids, record.id)

    def remove(self, record_id: int) -> Record:
        record = self.records.pop(record_id)
        index = bisect.bisect_left(self.ordered_ids, record_id)
        del self.ordered_ids[index]
        return record

    def resolve(self, record_id: int) -> int:
        """Follow merges to the surviving id."""
        seen = set()
        while record_id in self.merged_into and record_id not in seen:
            seen.add(record_id)
            record_id = self.merged_into[record_id]
        return record_id


@dataclass
class Account:
    """A HubSpot portal."""

    hub_id: int
    tier: str = "professional"
    time_zone: str = "US/Eastern"
    currency: str = "USD"
    domain: str = ""
    payments_processor: str | None = None  # "hubspot_payments" | "stripe" | None
    allow_open_invoice_deletion: bool = False
    users: dict[int, User] = field(default_factory=dict)
    installed_apps: set[int] = field(default_factory=set)
    tables: dict[str, ObjectTable] = field(default_factory=lambda: {name: ObjectTable() for name in OBJECT_TYPES})
    properties: dict[str, dict[str, PropertyDefinition]] = field(
        default_factory=lambda: {name: default_properties(name) for name in OBJECT_TYPES}
    )
    # object type → group name → {"name", "label", "displayOrder", "archived"}
    property_groups: dict[str, dict[str, dict]] = field(
        default_factory=lambda: {name: default_property_groups(name) for name in OBJECT_TYPES}
    )
    # (from_type, from_id, to_type) → {to_id: {type_id, …}}
    associations: dict[tuple[str, int, str], dict[int, set[int]]] = field(default_factory=dict)
    next_invoice_number: int = 1001

    def to_api(self) -> dict:
        return {
            "portalId": self.hub_id,
            "tier": self.tier,
            "timeZone": self.time_zone,
            "currency": self.currency,
            "domain": self.domain,
            "paymentsProcessor": self.payments_processor,
            "users": [
                {
                    "userId": u.user_id,
                    "email": u.email,
                    "superAdmin": u.super_admin,
                    "marketplaceAccess": u.marketplace_access,
                }
                for u in self.users.values()
            ],
            "installedApps": sorted(self.installed_apps),
        }


@dataclass
class AccessToken:
    token: str
    hub_id: int
    app_id: int
    user_id: int
    scopes: tuple[str, ...]
    expires_at: float  # emulated seconds


@dataclass
class RefreshToken:
    token: str
    hub_id: int
    app_id: int
    user_id: int
    scopes: tuple[str, ...]


@dataclass
class AuthorizationCode:
    code: str
    hub_id: int
    app_id: int
    user_id: int
    scopes: tuple[str, ...]
    redirect_uri: str
    expires_at: float


@dataclass
class Fault:
    """An injected failure: the next `remaining` requests matching path/method misbehave."""

    fault_id: str
    path_prefix: str
    method: str | None
    status: int | None
    latency_ms: int
    timeout_seconds: float | None
    remaining: int
    body: dict | None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0 and path.startswith(self.path_prefix) and (self.method is None or self.method == method)
        )

    def to_api(self) -> dict:
        return {
            "id": self.fault_id,
            "path": self.path_prefix,
            "method": self.method,
            "status": self.status,
            "latencyMs": self.latency_ms,
            "timeoutSeconds": self.timeout_seconds,
            "remaining": self.remaining,
        }


class EmulatorState:
    def __init__(self, app_id: int, client_id: str, client_secret: str, rate_limits: bool = True) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.default_app = App(app_id, client_id, client_secret)
        self.rate_limits_enabled = rate_limits
        self.project = None  # the loaded hubspot_extensions project (emulators.hubspot.project.Project)
        from emulators.hubspot.calls import AppCaller
        from emulators.hubspot.webhooks import WebhookDispatcher

        self.webhooks = WebhookDispatcher(self)
        self.calls = AppCaller(self)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.apps: dict[int, App] = {self.default_app.app_id: self.default_app}
            self.accounts: dict[int, Account] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.codes: dict[str, AuthorizationCode] = {}
            self.faults: list[Fault] = []
            self.request_counts: dict[str, int] = {}
            self.request_log: list[dict] = []
            self.auto_approve: dict | None = None
            self.rate_windows: dict[tuple, list[float]] = {}
            self._next_hub_id = 10_000_001
            self._next_user_id = 5_000_001
            self._next_object_id = 1_001
            self.timeline_events: dict[int, list[dict]] = {}  # app-event occurrences per portal
            if hasattr(self, "webhooks"):
                self.webhooks.pending.clear()
                self.webhooks.deliveries.clear()
                self.webhooks.faults.clear()
                self.calls.executions.clear()

    # --- ids ---------------------------------------------------------------

    def new_object_id(self) -> int:
        self._next_object_id += 1
        return self._next_object_id

    def new_user_id(self) -> int:
        self._next_user_id += 1
        return self._next_user_id

    # --- accounts and tokens ----------------------------------------------

    def create_account(self, tier: str = "professional", hub_id: int | None = None, **options) -> Account:
        if hub_id is None:
            hub_id = self._next_hub_id
            self._next_hub_id += 1
        account = Account(
            hub_id=hub_id, tier=tier, domain=options.pop("domain", f"portal-{hub_id}.example.com"), **options
        )
        self.accounts[hub_id] = account
        return account

    def add_user(
        self, account: Account, email: str, super_admin: bool = False, marketplace_access: bool = False
    ) -> User:
        user = User(self.new_user_id(), email, super_admin, marketplace_access)
        account.users[user.user_id] = user
        return user

    def find_user(self, user_id: int) -> tuple[Account, User] | None:
        for account in self.accounts.values():
            if user_id in account.users:
                return account, account.users[user_id]
        return None

    def issue_tokens(
        self, hub_id: int, app_id: int, user_id: int, scopes: tuple[str, ...], refresh: RefreshToken | None = None
    ) -> tuple[AccessToken, RefreshToken]:
        from emulators.hubspot.assumptions import ACCESS_TOKEN_SECONDS

        access = AccessToken(
            token=f"emu-at-{hub_id}-{secrets.token_urlsafe(24)}",
            hub_id=hub_id,
            app_id=app_id,
            user_id=user_id,
            scopes=scopes,
            expires_at=self.clock.now() + ACCESS_TOKEN_SECONDS,
        )
        self.access_tokens[access.token] = access
        if refresh is None:
            refresh = RefreshToken(
                token=str(uuid.uuid4()), hub_id=hub_id, app_id=app_id, user_id=user_id, scopes=scopes
            )
            self.refresh_tokens[refresh.token] = refresh
        self.accounts[hub_id].installed_apps.add(app_id)
        return access, refresh
