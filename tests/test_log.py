import io
import json
import logging

import pytest

from sync.log import REDACTED, configure_logging


@pytest.fixture
def log_output(make_settings):
    stream = io.StringIO()
    settings = make_settings(hubspot_client_secret="hs-client-secret-123456")
    handler = configure_logging(settings, stream=stream)
    yield settings, stream
    logging.getLogger().removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_extra_fields(log_output):
    _, stream = log_output
    logging.getLogger("ledgersync.test").info("synced %d records", 3, extra={"portal_id": 42})
    (entry,) = lines(stream)
    assert entry["message"] == "synced 3 records"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "ledgersync.test"
    assert entry["portal_id"] == 42
    assert entry["time"].endswith("+00:00")


def test_configured_secrets_are_redacted(log_output):
    settings, stream = log_output
    logging.getLogger("x").warning("client secret is %s", settings.hubspot_client_secret)
    logging.getLogger("x").warning("key %s", settings.token_encryption_key)
    output = stream.getvalue()
    assert settings.hubspot_client_secret not in output
    assert settings.token_encryption_key not in output
    assert output.count(REDACTED) == 2


@pytest.mark.parametrize(
    "text",
    [
        "POST /oauth/v1/token body=grant_type=refresh_token&refresh_token=abc123def456&client_id=x",
        '{"access_token": "eyJhbGciOiJSUzI1NiJ9.payload.sig", "expires_in": 1800}',
        "headers: Authorization: Bearer pat-na1-11111111-2222",
        "X-HubSpot-Signature-v3: c2lnbmF0dXJlCg==",
    ],
)
def test_token_shaped_values_are_redacted(log_output, text):
    _, stream = log_output
    logging.getLogger("sdk").info(text)
    output = lines(stream)[0]["message"]
    for secret in ("abc123def456", "eyJhbGciOiJSUzI1NiJ9", "pat-na1-11111111-2222", "c2lnbmF0dXJlCg=="):
        assert secret not in output
    assert REDACTED in output


def test_extras_and_exceptions_are_redacted(log_output):
    _, stream = log_output
    try:
        raise RuntimeError("refresh failed: refresh_token=zzz-secret-zzz")
    except RuntimeError:
        logging.getLogger("x").exception("oops", extra={"detail": "access_token=qqq-secret-qqq"})
    output = stream.getvalue()
    assert "zzz-secret-zzz" not in output and "qqq-secret-qqq" not in output
    assert "RuntimeError" in lines(stream)[0]["exception"]


def test_text_format_for_developers(make_settings):
    stream = io.StringIO()
    handler = configure_logging(make_settings(log_format="text"), stream=stream)
    try:
        logging.getLogger("ledgersync.test").info("hello", extra={"realm_id": "9130"})
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    assert "INFO" in line and "hello" in line and "realm_id=9130" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
