"""The QBO emulator's state, in memory: the app, companies (realms) and their entities, tokens.

Entities are stored as the JSON QBO returns (Id and SyncToken strings,
MetaData, domain, sparse). Every handler takes `state.lock` for its work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from emulators.clock import Clock
from emulators.quickbooks import assumptions

CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "CAD": "Canadian Dollar",
    "GBP": "British Pound Sterling",
    "AUD": "Australian Dollar",
    "EUR": "Euro",
    "INR": "Indian Rupee",
}
COUNTRY_CURRENCY = {"US": "USD", "CA": "CAD", "GB": "GBP", "AU": "AUD", "FR": "EUR", "IN": "INR"}
# A fixed UTC offset per company keeps MetaData times like QBO's "2015-07-23T10:58:12-07:00".
COUNTRY_OFFSET_HOURS = {"US": -8, "CA": -5, "GB": 0, "AU": 10, "FR": 1, "IN": 5.5}


@dataclass
class App:
    client_id: str
    client_secret: str
    dev_client_id: str
    dev_client_secret: str
    verifier_token: str

    def environment_of(self, client_id: str, client_secret: str | None = None) -> str | None:
        """'production' or 'sandbox' for a matching key pair (secret unchecked when None)."""
        for environment, (cid, secret) in (
            ("production", (self.client_id, self.client_secret)),
            ("sandbox", (self.dev_client_id, self.dev_client_secret)),
        ):
            if client_id == cid and (client_secret is None or client_secret == secret):
                return environment
        return None


@dataclass
class Company:
    realm_id: str
    name: str
    country: str
    currency: str
    multi_currency: bool
    sandbox: bool
    offset_hours: float
    entities: dict[str, dict[str, dict]] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)
    deleted: list[tuple[str, str, datetime]] = field(default_factory=list)  # for CDC
    next_doc_number: int = assumptions.FIRST_DOC_NUMBER
    request_ids: dict[str, tuple[int, dict]] = field(default_factory=dict)  # requestid → first answer
    next_address_id: int = 100

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.offset_hours))

    def table(self, entity: str) -> dict[str, dict]:
        return self.entities.setdefault(entity, {})

    def new_id(self, entity: str) -> str:
        value = self.next_ids.get(entity, 1)
        self.next_ids[entity] = value + 1
        return str(value)

    @property
    def preferences(self) -> dict:
        return self.table("Preferences")["1"]

    @property
    def company_info(self) -> dict:
        return self.table("CompanyInfo")["1"]

    @property
    def custom_txn_numbers(self) -> bool:
        return bool(self.preferences.get("SalesFormsPrefs", {}).get("CustomTxnNumbers"))

    @property
    def book_close_date(self) -> str | None:
        return self.preferences.get("AccountingInfoPrefs", {}).get("BookCloseDate")

    def to_api(self) -> dict:
        return {
            "realmId": self.realm_id,
            "companyName": self.name,
            "country": self.country,
            "homeCurrency": self.currency,
            "multiCurrency": self.multi_currency,
            "sandbox": self.sandbox,
        }


@dataclass
class Grant:
    """What an access or refresh token stands for."""

    realm_id: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    user_sub: str = "1182d6ec-2a1f-4aa3-af3f-bb3b95db45af"
    issued_at: float = 0.0  # refresh tokens: when this value was first handed out
    replaced_at: float | None = None  # refresh tokens: when a rotation replaced it


@dataclass
class Code:
    code: str
    realm_id: str
    client_id: str
    scopes: tuple[str, ...]
    redirect_uri: str
    expires_at: float


def format_time(moment: datetime, tz: timezone, millis: bool = False) -> str:
    """QBO's timestamps: local offset, e.g. 2015-07-23T10:58:12-07:00 (and .099 in `time`)."""
    local = moment.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        text += f".{local.microsecond // 1000:03d}"
    offset = local.strftime("%z")
    return f"{text}{offset[:3]}:{offset[3:]}"


class QboState:
    def __init__(self, app: App, rate_limits: bool = True) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.app = app
        self.rate_limits_enabled = rate_limits
        self.refresh_grace_seconds = assumptions.REFRESH_GRACE_SECONDS
        self.refresh_rotation_seconds = assumptions.REFRESH_ROTATION_SECONDS
        from emulators.quickbooks.webhooks import WebhookDispatcher

        self.webhooks = WebhookDispatcher(self)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.companies: dict[str, Company] = {}
            self.access_tokens: dict[str, Grant] = {}
            self.refresh_tokens: dict[str, Grant] = {}
            self.codes: dict[str, Code] = {}
            self.auto_approve: str | None = None  # realm id
            self.request_counts: dict[str, int] = {}
            self.request_log: list[dict] = []
            self.faults: list = []
            self.rate_windows: dict[tuple, list[float]] = {}
            self.in_flight: dict[tuple, int] = {}
            self._next_realm = 9_130_357_766_900_001
            self.webhooks.clear()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def new_realm_id(self) -> str:
        self._next_realm += 1
        return str(self._next_realm)
