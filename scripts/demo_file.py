"""`instance/demo.json`: what a person or a script needs to use the official SDKs against `make demo`.

    {"app_url", "hubspot": {"base_url", "portal_id", "access_token"},
     "quickbooks": {"base_url", "realm_id", "access_token"}, "updated_at"}

Access tokens only (never a refresh token or a secret), mode 0600. The demo writes it once
connected; afterwards every token refresh, in whichever process does it, rewrites that side's token:
the demo registers `refreshed` as a token-refresh hook (`LEDGERSYNC_TOKEN_REFRESH_HOOKS`) for its
app, worker and clock, and `LEDGERSYNC_DEMO_FILE` names the file. The product knows nothing of it.
Writes are atomic (a temporary file renamed over the old one) and serialized with a lock file, so a
reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SIDES = ("hubspot", "quickbooks")


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, content: dict[str, Any]) -> None:
    content = {**content, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".demo-", suffix=".json")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w") as out:
            json.dump(content, out, indent=2)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write(path: Path, content: dict[str, Any]) -> None:
    """Write the whole file (the demo, once connected)."""
    with _locked(path):
        _write(path, content)


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def update_access_token(path: Path | None, provider: str, access_token: str) -> None:
    """A refreshed token replaces the old one in the file (if the demo wrote one)."""
    if path is None or provider not in SIDES:
        return
    with _locked(path):
        try:
            content = read(path)
        except (FileNotFoundError, json.JSONDecodeError):
            return  # the demo has not written it yet: it will write the current token itself
        content.setdefault(provider, {})["access_token"] = access_token
        _write(path, content)


def refreshed(provider: str, access_token: str) -> None:
    """The token-refresh hook the demo registers: the file named by LEDGERSYNC_DEMO_FILE follows."""
    named = os.environ.get("LEDGERSYNC_DEMO_FILE")
    update_access_token(Path(named).resolve() if named else None, provider, access_token)
