import re
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from sync.config import INTUIT_DISCOVERY_URLS, PRODUCTION_REQUIRED, Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent


def production_env(**overrides) -> dict[str, str]:
    env = {name: f"value-of-{name.lower()}" for name in PRODUCTION_REQUIRED}
    env.update(
        APP_ENV="production",
        DATABASE_URL="postgres://user:pw@db.example.com:5432/ledgersync",
        REDIS_URL="redis://cache.example.com:6379/0",
        TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        APP_BASE_URL="https://ledgersync.example.com",
    )
    env.update(overrides)
    return env


def test_defaults_in_development(tmp_path):
    settings = Config.from_env({"INSTANCE_PATH": str(tmp_path)})
    assert settings.app_env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path / 'ledgersync.db'}"
    assert settings.redis_url is None
    assert settings.app_base_url == "http://localhost:8000"
    assert settings.hubspot_api_base_url == "https://api.hubapi.com"
    assert settings.hubspot_authorize_url == "https://app.hubspot.com/oauth/authorize"
    assert settings.qbo_api_base_url == "https://quickbooks.api.intuit.com"
    assert settings.intuit_discovery_url == INTUIT_DISCOVERY_URLS["production"]


def test_development_generates_secrets_once_and_reuses_them(tmp_path):
    first = Config.from_env({"INSTANCE_PATH": str(tmp_path)})
    second = Config.from_env({"INSTANCE_PATH": str(tmp_path)})
    assert first.secret_key and first.secret_key == second.secret_key
    assert first.token_encryption_key == second.token_encryption_key
    Fernet(first.token_encryption_key.encode())  # a usable key
    for name in ("secret_key", "token_encryption_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} is mode {oct(mode)}"


def test_explicit_secrets_win_over_generated_ones(tmp_path):
    key = Fernet.generate_key().decode()
    settings = Config.from_env(
        {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "given-secret", "TOKEN_ENCRYPTION_KEY": key}
    )
    assert (settings.secret_key, settings.token_encryption_key) == ("given-secret", key)
    assert not (tmp_path / "secret_key").exists()


def test_production_names_every_missing_variable():
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"APP_ENV": "production"})
    for name in PRODUCTION_REQUIRED:
        assert name in str(raised.value)


def test_production_names_the_one_missing_variable():
    env = production_env()
    del env["INTUIT_WEBHOOK_VERIFIER_TOKEN"]
    with pytest.raises(ConfigError, match="INTUIT_WEBHOOK_VERIFIER_TOKEN") as raised:
        Config.from_env(env)
    assert "SECRET_KEY" not in str(raised.value)


def test_production_never_generates_secrets(tmp_path):
    env = production_env(INSTANCE_PATH=str(tmp_path))
    del env["SECRET_KEY"]
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config.from_env(env)
    assert not (tmp_path / "secret_key").exists()


def test_production_requires_https_base_url():
    with pytest.raises(ConfigError, match="APP_BASE_URL must be https"):
        Config.from_env(production_env(APP_BASE_URL="http://ledgersync.example.com"))


def test_production_settings_are_read():
    settings = Config.from_env(production_env())
    assert settings.is_production
    assert settings.database_url == "postgresql+psycopg://user:pw@db.example.com:5432/ledgersync"
    # Secrets are collected for redaction; the 2-letter password is too short to redact safely.
    assert settings.hubspot_client_secret in settings.secret_values
    assert "pw" not in settings.secret_values


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_urls_are_normalized(tmp_path, given, expected):
    assert Config.from_env({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": given}).database_url == expected


def test_sandbox_environment_picks_sandbox_hosts(tmp_path):
    settings = Config.from_env({"INSTANCE_PATH": str(tmp_path), "INTUIT_ENVIRONMENT": "sandbox"})
    assert settings.qbo_api_base_url == "https://sandbox-quickbooks.api.intuit.com"
    assert settings.intuit_discovery_url == INTUIT_DISCOVERY_URLS["sandbox"]


def test_base_urls_can_point_at_emulators(tmp_path):
    settings = Config.from_env(
        {
            "INSTANCE_PATH": str(tmp_path),
            "HUBSPOT_API_BASE_URL": "http://localhost:8101/",
            "HUBSPOT_AUTHORIZE_URL": "http://localhost:8101/oauth/authorize",
            "QBO_API_BASE_URL": "http://localhost:8102",
            "INTUIT_DISCOVERY_URL": "http://localhost:8102/.well-known/openid_configuration",
        }
    )
    assert settings.hubspot_api_base_url == "http://localhost:8101"
    assert settings.qbo_api_base_url == "http://localhost:8102"
    assert settings.intuit_discovery_url.startswith("http://localhost:8102/")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("APP_ENV", "staging", "APP_ENV"),
        ("INTUIT_ENVIRONMENT", "test", "INTUIT_ENVIRONMENT"),
        ("TOKEN_ENCRYPTION_KEY", "not-a-fernet-key", "TOKEN_ENCRYPTION_KEY"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("QBO_API_BASE_URL", "quickbooks.example.com", "QBO_API_BASE_URL"),
        ("QBO_API_BASE_URL", "http://quickbooks.example.com", "https unless it is on localhost"),
        ("HUBSPOT_API_BASE_URL", "http://10.0.0.5:8101", "https unless it is on localhost"),
    ],
)
def test_bad_values_are_refused_by_name(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env({"INSTANCE_PATH": str(tmp_path), name: value})


def test_several_encryption_keys_are_accepted(tmp_path):
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    assert Config.from_env({"INSTANCE_PATH": str(tmp_path), "TOKEN_ENCRYPTION_KEY": keys})


def test_dotenv_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text("HUBSPOT_CLIENT_ID=from-dotenv\nHUBSPOT_APP_ID=from-dotenv\n")
    monkeypatch.setenv("DOTENV_PATH", str(dotenv))
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("HUBSPOT_APP_ID", "from-environment")
    settings = Config.from_env()
    assert settings.hubspot_client_id == "from-dotenv"
    assert settings.hubspot_app_id == "from-environment"


def test_readme_documents_every_variable():
    source = (ROOT / "sync" / "config.py").read_text()
    read = set(re.findall(r'get\(\s*"([A-Z_]+)"', source)) | set(PRODUCTION_REQUIRED)
    readme = (ROOT / "README.md").read_text()
    table_rows = {m for m in re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE)}
    assert read - table_rows == set(), "variables missing from the README's table"


def test_the_run_lease_is_a_positive_number_of_seconds():
    assert Config.from_env({}, load_dotenv_file=False).run_lease_seconds == 60
    assert Config.from_env({"LEDGERSYNC_RUN_LEASE_SECONDS": "12"}, load_dotenv_file=False).run_lease_seconds == 12
    for bad in ("0", "-5", "soon"):
        with pytest.raises(ConfigError, match="LEDGERSYNC_RUN_LEASE_SECONDS must be a positive number"):
            Config.from_env({"LEDGERSYNC_RUN_LEASE_SECONDS": bad}, load_dotenv_file=False)
