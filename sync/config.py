"""Ledgersync's configuration: one immutable object, read from the environment.

(Not to be confused with a sync's *settings* — its direction, mappings and filters — which are
rows of `SyncSettings` in the database.)

Everything that varies between a laptop, CI and production is an environment
variable (optionally from a `.env` file). `Config.from_env()` reads them once
and the result is passed explicitly to whatever needs it: the Flask app, the
RQ jobs, the CLI. Nothing reads `os.environ` anywhere else, so a test can build
a `Config` by hand and know exactly what the code under test sees.

Production refuses to start without its secrets and names every missing
variable. Development generates `SECRET_KEY` and `TOKEN_ENCRYPTION_KEY` once,
keeps them under `instance/` (mode 0600) and reuses them, so tokens stored in
the development database stay readable across restarts.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

PROJECT_ROOT = Path(__file__).resolve().parent.parent

HUBSPOT_API_BASE_URL = "https://api.hubapi.com"
HUBSPOT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
QBO_API_BASE_URLS = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
# intuit-oauth's own constants use these exact URLs, trailing slash included.
INTUIT_DISCOVERY_URLS = {
    "production": "https://developer.intuit.com/.well-known/openid_configuration/",
    "sandbox": "https://developer.intuit.com/.well-known/openid_sandbox_configuration/",
}

# Variables that production must be given explicitly (development can do without).
PRODUCTION_REQUIRED = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "TOKEN_ENCRYPTION_KEY",
    "APP_BASE_URL",
    "HUBSPOT_APP_ID",
    "HUBSPOT_CLIENT_ID",
    "HUBSPOT_CLIENT_SECRET",
    "INTUIT_CLIENT_ID",
    "INTUIT_CLIENT_SECRET",
    "INTUIT_WEBHOOK_VERIFIER_TOKEN",
)


class ConfigError(RuntimeError):
    """The environment does not describe a runnable Ledgersync."""


@dataclass(frozen=True)
class Config:
    """Every setting Ledgersync has; see the README's table for each variable."""

    app_env: str = "development"
    instance_path: Path = PROJECT_ROOT / "instance"
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str = ""
    token_encryption_key: str = ""
    app_base_url: str = "http://localhost:8000"
    log_level: str = "INFO"
    log_format: str = "json"
    # Callables ("module:function") told of every token refresh as (provider, access token), in
    # whichever process refreshes: `make demo` keeps instance/demo.json current with one.
    token_refresh_hooks: tuple[str, ...] = ()

    hubspot_app_id: str = ""
    hubspot_client_id: str = ""
    hubspot_client_secret: str = ""
    hubspot_api_base_url: str = HUBSPOT_API_BASE_URL
    hubspot_authorize_url: str = HUBSPOT_AUTHORIZE_URL

    intuit_client_id: str = ""
    intuit_client_secret: str = ""
    intuit_webhook_verifier_token: str = ""
    intuit_environment: str = "production"
    qbo_api_base_url: str = QBO_API_BASE_URLS["production"]
    intuit_discovery_url: str = INTUIT_DISCOVERY_URLS["production"]
    # How long a run's lock outlives its last renewal: a worker that died frees its run after this.
    run_lease_seconds: float = 60.0

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        candidates = (
            self.secret_key,
            *self.token_encryption_key.split(","),
            self.hubspot_client_secret,
            self.intuit_client_secret,
            self.intuit_webhook_verifier_token,
            _password_of(self.database_url),
            _password_of(self.redis_url or ""),
        )
        # Very short values would redact ordinary words; real secrets are long.
        return tuple(value for value in candidates if value and len(value) >= 6)

    def with_overrides(self, **changes: object) -> Config:
        """A copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        load_dotenv_file: bool = True,
    ) -> Config:
        """Read the settings from `environ` (default: `os.environ` plus `.env`).

        Raises `ConfigError` naming the variables at fault.
        """
        if environ is None:
            environ = _environ_with_dotenv() if load_dotenv_file else dict(os.environ)

        def get(name: str, default: str = "") -> str:
            return environ.get(name, "").strip() or default

        app_env = get("APP_ENV", "development").lower()
        if app_env not in ("development", "production"):
            raise ConfigError(f"APP_ENV must be 'development' or 'production', not {app_env!r}")
        production = app_env == "production"

        if production:
            missing = [name for name in PRODUCTION_REQUIRED if not get(name)]
            if missing:
                raise ConfigError(
                    "APP_ENV=production needs these environment variables, which are not set: " + ", ".join(missing)
                )

        intuit_environment = get("INTUIT_ENVIRONMENT", "production").lower()
        if intuit_environment not in QBO_API_BASE_URLS:
            raise ConfigError(f"INTUIT_ENVIRONMENT must be 'production' or 'sandbox', not {intuit_environment!r}")

        instance_path = Path(get("INSTANCE_PATH", str(PROJECT_ROOT / "instance"))).resolve()
        secret_key = get("SECRET_KEY")
        token_key = get("TOKEN_ENCRYPTION_KEY")
        if not production:
            secret_key = secret_key or _instance_secret(instance_path / "secret_key", _new_secret_key)
            token_key = token_key or _instance_secret(instance_path / "token_encryption_key", _new_fernet_key)
        _check_fernet_keys(token_key)

        log_format = get("LOG_FORMAT", "json").lower()
        if log_format not in ("json", "text"):
            raise ConfigError(f"LOG_FORMAT must be 'json' or 'text', not {log_format!r}")

        settings = cls(
            app_env=app_env,
            instance_path=instance_path,
            database_url=normalize_database_url(get("DATABASE_URL", f"sqlite:///{instance_path / 'ledgersync.db'}")),
            redis_url=get("REDIS_URL") or None,
            secret_key=secret_key,
            token_encryption_key=token_key,
            app_base_url=get("APP_BASE_URL", "http://localhost:8000").rstrip("/"),
            log_level=get("LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            token_refresh_hooks=tuple(
                spec.strip() for spec in get("LEDGERSYNC_TOKEN_REFRESH_HOOKS", "").split(",") if spec.strip()
            ),
            hubspot_app_id=get("HUBSPOT_APP_ID"),
            hubspot_client_id=get("HUBSPOT_CLIENT_ID"),
            hubspot_client_secret=get("HUBSPOT_CLIENT_SECRET"),
            hubspot_api_base_url=get("HUBSPOT_API_BASE_URL", HUBSPOT_API_BASE_URL).rstrip("/"),
            hubspot_authorize_url=get("HUBSPOT_AUTHORIZE_URL", HUBSPOT_AUTHORIZE_URL),
            intuit_client_id=get("INTUIT_CLIENT_ID"),
            intuit_client_secret=get("INTUIT_CLIENT_SECRET"),
            intuit_webhook_verifier_token=get("INTUIT_WEBHOOK_VERIFIER_TOKEN"),
            intuit_environment=intuit_environment,
            qbo_api_base_url=get("QBO_API_BASE_URL", QBO_API_BASE_URLS[intuit_environment]).rstrip("/"),
            intuit_discovery_url=get("INTUIT_DISCOVERY_URL", INTUIT_DISCOVERY_URLS[intuit_environment]),
            run_lease_seconds=_positive(get("LEDGERSYNC_RUN_LEASE_SECONDS", "60"), "LEDGERSYNC_RUN_LEASE_SECONDS"),
        )
        _check_urls(settings)
        return settings


def _positive(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, not {text!r}")
    return value


def normalize_database_url(url: str) -> str:
    """Accept Heroku-style `postgres://` and pick our driver (psycopg 3) for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _environ_with_dotenv() -> dict[str, str]:
    """`os.environ` over the values of an optional `.env` file (the environment wins)."""
    from dotenv import dotenv_values

    dotenv_path = Path(os.environ.get("DOTENV_PATH", PROJECT_ROOT / ".env"))
    values = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    values.update(os.environ)
    return values


def _new_secret_key() -> str:
    return secrets.token_urlsafe(48)


def _new_fernet_key() -> str:
    return Fernet.generate_key().decode()


def _instance_secret(path: Path, generate) -> str:
    """Read a generated development secret, creating it (mode 0600) the first time.

    The web process and the worker may start together: O_EXCL makes exactly one
    of them write the file, and the other reads what it wrote.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)  # the creator has opened but not yet written it
        raise ConfigError(f"{path} is empty: delete it to generate a new one") from None
    value = generate()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def _check_fernet_keys(value: str) -> None:
    """TOKEN_ENCRYPTION_KEY is one Fernet key, or several comma-separated (newest first)."""
    for key in value.split(","):
        try:
            Fernet(key.strip().encode())
        except (ValueError, TypeError):
            raise ConfigError(
                "TOKEN_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes), "
                "or several separated by commas; generate one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
            ) from None


def _check_urls(settings: Config) -> None:
    for name in (
        "app_base_url",
        "hubspot_api_base_url",
        "hubspot_authorize_url",
        "qbo_api_base_url",
        "intuit_discovery_url",
    ):
        url = getattr(settings, name)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{name.upper()} must be an http(s) URL, not {url!r}")
        # Tokens travel to these hosts: plain http only ever to a local emulator.
        if name != "app_base_url" and parts.scheme == "http" and not is_local_host(parts.hostname):
            raise ConfigError(f"{name.upper()} must be https unless it is on localhost, not {url!r}")
    if settings.is_production and urlsplit(settings.app_base_url).scheme != "https":
        raise ConfigError("APP_BASE_URL must be https in production (OAuth and webhooks need it)")


def is_local_host(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


def _password_of(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
