"""Structured logging: JSON lines in production, readable text for a developer.

Every process (web, worker, clock, CLI) calls `configure_logging(settings)` once.
A filter on the root handler redacts secrets before anything is written: the
configured secret values themselves, and token-shaped fields and headers in
whatever text a library decides to log (SDKs log request bodies at DEBUG).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from sync.config import Config

REDACTED = "[redacted]"

# key=value, "key": "value" and `Authorization: Bearer …` forms of things that are secrets.
_SECRET_FIELD = re.compile(
    r"""(?ix)
    (?P<key>["']?(?:access_token|refresh_token|id_token|client_secret|code_verifier|password|
                   secret|token|authorization|x-hubspot-signature(?:-v3)?|intuit-signature)["']?
      \s*[:=]\s*["']?)
    (?P<value>(?:bearer\s+|basic\s+)?[^"'\s,&}]+)
    """
)

# Attributes every LogRecord has; anything else was passed through `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SecretRedactor(logging.Filter):
    """Rewrites a record's message and extras so that no secret is written."""

    def __init__(self, secret_values: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secret_values = tuple(sorted(set(secret_values), key=len, reverse=True))

    def redact(self, text: str) -> str:
        for value in self.secret_values:
            text = text.replace(value, REDACTED)
        return _SECRET_FIELD.sub(lambda m: m.group("key") + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_text or record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The usual one-line format, with `extra=` fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(settings: Config, stream=None) -> logging.Handler:
    """Replace the root logger's handlers with one redacting handler; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(SecretRedactor(settings.secret_values))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # urllib3 logs every request line with its query string (OAuth codes included) at DEBUG.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    # Alembic narrates every migration context at INFO (the health check opens one).
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    return handler
