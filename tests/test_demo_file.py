"""instance/demo.json: written whole by the demo, its access tokens rewritten by every refresh (through
the token-refresh hook the demo registers; the product has no demo branch)."""

from __future__ import annotations

import json
import stat
import threading

from sqlalchemy import select

from scripts import demo_file
from sync.runtime import Runtime
from sync.store.models import Installation, QboCompany
from sync.tokens import TokenManager


def test_the_file_is_private_and_written_whole(tmp_path):
    path = tmp_path / "demo.json"
    demo_file.write(path, {"app_url": "http://localhost:8000", "hubspot": {"access_token": "a"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_file.read(path)["hubspot"] == {"access_token": "a"} and "updated_at" in demo_file.read(path)
    demo_file.update_access_token(tmp_path / "absent.json", "hubspot", "b")  # not written yet: left alone
    assert not (tmp_path / "absent.json").exists()
    demo_file.update_access_token(None, "hubspot", "b")  # not the demo: nothing happens


def test_concurrent_rewrites_never_leave_half_a_file_or_lose_a_side(tmp_path):
    path = tmp_path / "demo.json"
    demo_file.write(path, {"hubspot": {"access_token": "h0"}, "quickbooks": {"access_token": "q0"}})

    def refresh(side: str) -> None:
        for n in range(50):
            demo_file.update_access_token(path, side, f"{side[0]}{n + 1}")

    threads = [threading.Thread(target=refresh, args=(side,)) for side in ("hubspot", "quickbooks")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    content = json.loads(path.read_text())
    assert content["hubspot"]["access_token"] == "h50" and content["quickbooks"]["access_token"] == "q50"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_token_refresh_rewrites_that_sides_token_in_the_file(stack, installed, tmp_path, monkeypatch):
    path = tmp_path / "demo.json"
    monkeypatch.setenv("LEDGERSYNC_DEMO_FILE", str(path))
    # the runtime a demo process builds: the hook is named in its configuration, loaded at start
    hooked = Runtime(stack.runtime.config.with_overrides(token_refresh_hooks=("scripts.demo_file:refreshed",)))
    stack.runtime.token_listeners = hooked.token_listeners
    hooked.close()
    with stack.db() as session:
        installation_id = session.scalar(select(Installation)).id
        company_id = session.scalar(select(QboCompany)).id
    tokens = TokenManager(stack.runtime)
    old_hubspot, old_qbo = tokens.hubspot_access_token(installation_id), tokens.quickbooks_tokens(company_id)[0]
    demo_file.write(path, {"hubspot": {"access_token": old_hubspot}, "quickbooks": {"access_token": old_qbo}})
    fresh = tokens._access_token("hubspot", installation_id, force=True)
    content = demo_file.read(path)
    assert fresh != old_hubspot and content["hubspot"]["access_token"] == fresh
    assert content["quickbooks"]["access_token"] == old_qbo
    fresh_qbo = tokens._access_token("quickbooks", company_id, force=True)
    assert demo_file.read(path)["quickbooks"]["access_token"] == fresh_qbo != old_qbo
    assert "refresh" not in path.read_text().lower()


def test_a_misnamed_refresh_hook_fails_at_start_not_at_the_first_refresh(stack):
    import pytest

    with pytest.raises(ValueError, match="module:function"):
        Runtime(stack.runtime.config.with_overrides(token_refresh_hooks=("scripts.demo_file",)))
    with pytest.raises(AttributeError):
        Runtime(stack.runtime.config.with_overrides(token_refresh_hooks=("scripts.demo_file:nothing",)))
