"""The processes as deployed: the Procfile's commands, and `make demo`'s launcher."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (a test's own URL)
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def process_env(tmp_path, redis_url):
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'procfile.db'}",
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SECRET_KEY": "procfile-test-secret",
    }


def test_procfile_declares_the_four_processes():
    entries = procfile()
    assert set(entries) == {"release", "web", "worker", "clock"}
    assert "db upgrade" in entries["release"]
    assert entries["web"].startswith("gunicorn") and "app:create_app()" in entries["web"]
    assert entries["worker"].startswith("rq worker --with-scheduler")


def test_procfile_release_web_worker_and_clock_run(process_env):
    entries = procfile()
    port = free_port()
    env = {**process_env, "PORT": str(port)}

    release = subprocess.run(
        ["bash", "-c", entries["release"]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert release.returncode == 0, release.stderr
    assert "database at revision" in release.stdout

    started = {
        name: subprocess.Popen(
            ["bash", "-c", "exec " + entries[name]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for name in ("web", "worker", "clock")
    }
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        status, body = wait_for(lambda: get_json(url), 60, "gunicorn to answer")
        assert status == 200, body
        # The worker registers itself in Redis; the health report counts it.
        wait_for(lambda: get_json(url)[1]["redis"]["workers"] >= 1, 30, "the worker to register")
        for name, process in started.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}"
    finally:
        for process in started.values():
            stop(process)


def test_demo_starts_everything_and_stops_on_ctrl_c(tmp_path, monkeypatch):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    hubspot_port, qbo_port = free_port(), free_port()
    env.update(
        APP_PORT=str(port),
        INSTANCE_PATH=str(tmp_path / "instance"),
        PYTHONUNBUFFERED="1",
        HUBSPOT_EMULATOR_PORT=str(hubspot_port),
        QBO_EMULATOR_PORT=str(qbo_port),
    )
    env.pop("HUBSPOT_API_BASE_URL", None)
    env.pop("QBO_API_BASE_URL", None)
    demo = subprocess.Popen(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("Ledgersync is running at" in line for line in output):
            assert time.monotonic() < deadline and demo.poll() is None, "".join(output)
            output.append(demo.stdout.readline())
        assert any(f"http://localhost:{port}/" in line for line in output)
        assert any("ran a job" in line for line in output), "".join(output)
        status, body = get_json(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and body["database"]["dialect"] == "sqlite"
        assert body["redis"]["workers"] >= 1
        assert (tmp_path / "instance" / "demo.db").exists()  # its own database, fresh like the emulators
        while not any("press Ctrl-C to stop everything" in line for line in output):  # the story, told
            assert time.monotonic() < deadline + 120 and demo.poll() is None, "".join(output)
            output.append(demo.stdout.readline())
        told = "".join(output)
        assert "initial sync done: excluded 1, failed 4, syncing 5" in told, told
        before, _, from_hubspot = told.partition("invoices set up two-way")
        assert before.count("[duplicate display name]") == 2 and before.count("[ambiguous billing contact]") == 2
        assert from_hubspot.count("[ambiguous billing contact]") == 1  # Fay and Gus's invoice: no guessing
        # products: matched by SKU, created both ways; a category and an item without SKU left out; a name clash
        assert "initial products sync done: excluded 2, failed 1, syncing 3" in told, told
        assert told.count("[duplicate item name]") == 1 and "it has no SKU" in told, told
        # invoices from QuickBooks: two mirrors, what was paid on each (in part, in full)
        assert "initial invoices sync done: syncing 2" in told, told
        assert "open, paid 200, balance due 250 (1 HubSpot payment, HubSpot's balance due 250.00)" in told, told
        assert "paid, paid 300, balance due 0 (1 HubSpot payment, HubSpot's balance due 0.00)" in told, told
        # invoices from HubSpot: Ana's, a line on a product QBO knows and one it does not, paid in HubSpot
        assert "arrived in QuickBooks as invoice" in told and "Consulting 240.00, Custom line item 25.00" in told, told
        assert "total 265.00, 1 QBO payment (HubSpot payment" in told and "balance 0.00" in told, told
        assert "HubSpot → QBO: a change arrived in" in told and "QBO → HubSpot: a change arrived in" in told, told
        # From here on the demo's output is read as it comes: a pipe nobody reads fills up and blocks
        # every process that logs to it (the worker included), which would stall the sync under test.
        told_lines = len(output)
        reader = threading.Thread(target=lambda: output.extend(iter(demo.stdout.readline, "")), daemon=True)
        reader.start()
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulators speak plain http on localhost
        try:
            _use_the_running_demo_with_the_official_sdks(tmp_path / "instance" / "demo.json")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- what the demo said since ---\n{''.join(output[told_lines:])}") from None
        assert any(f"HubSpot emulator is running at http://localhost:{hubspot_port}/" in line for line in output)
        account = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(  # noqa: S310 (a test's own URL)
                    f"http://localhost:{hubspot_port}/_emulator/accounts",
                    data=b"{}",
                    method="POST",
                    headers={"Content-Type": "application/json"},
                ),
                timeout=5,
            ).read()
        )
        assert account["accessToken"]
        project = json.loads(
            urllib.request.urlopen(f"http://localhost:{hubspot_port}/_emulator/project", timeout=5).read()
        )  # noqa: S310
        assert project["webhookTarget"] == f"http://localhost:{port}/webhooks/hubspot"
        assert any(f"QuickBooks Online emulator is running at http://localhost:{qbo_port}/" in line for line in output)
        company = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(  # noqa: S310 (a test's own URL)
                    f"http://localhost:{qbo_port}/_emulator/companies",
                    data=b'{"country": "US"}',
                    method="POST",
                    headers={"Content-Type": "application/json"},
                ),
                timeout=5,
            ).read()
        )
        assert company["realmId"] and company["accessToken"]

        stopping = len(output)
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        demo.wait(timeout=60)
        reader.join(timeout=10)
        rest = "".join(output[stopping:])
        assert demo.returncode == 0, rest
        assert "[demo] stopped" in rest
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        children = dict(re.findall(r"started ([\w-]+) \(pid (\d+)\)", "".join(output)))
        assert set(children) == {"hubspot-emulator", "qbo-emulator", "web", "worker", "clock"}
        for pid in children.values():
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)  # gone, not merely orphaned
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            # its children run in sessions of their own: a demo killed mid-way cannot stop them
            for pid in re.findall(r"started [\w-]+ \(pid (\d+)\)", "".join(output)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), signal.SIGKILL)
            for socket_path in re.findall(r"embedded Redis at (\S+)", "".join(output)):
                _kill_embedded_redis(socket_path)
        # Nothing the demo started may outlive it: its web server's port is free again.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _kill_embedded_redis(socket_path: str) -> None:
    """The embedded Redis the demo started, ended by the process id it reports (never by name)."""
    import redis

    with contextlib.suppress(redis.RedisError, OSError):
        pid = redis.Redis(unix_socket_path=socket_path, socket_timeout=2).info("server")["process_id"]
        os.kill(int(pid), signal.SIGKILL)


def _use_the_running_demo_with_the_official_sdks(demo_file) -> None:
    """What instance/demo.json is for: a script edits a contact with HubSpot's SDK and watches the
    change arrive in QuickBooks through python-quickbooks, with nothing but the file's contents."""
    from hubspot import HubSpot
    from hubspot.crm.contacts import SimplePublicObjectInput
    from intuitlib.client import AuthClient
    from quickbooks import QuickBooks
    from quickbooks.exceptions import QuickbooksException
    from quickbooks.objects.customer import Customer

    assert stat.S_IMODE(demo_file.stat().st_mode) == 0o600
    demo = json.loads(demo_file.read_text())
    assert "refresh" not in demo_file.read_text().lower()  # access tokens only
    hubspot = HubSpot(access_token=demo["hubspot"]["access_token"], host=demo["hubspot"]["base_url"])
    cara = hubspot.crm.contacts.basic_api.get_by_id("cara@northwind.example", id_property="email")
    hubspot.crm.contacts.basic_api.update(cara.id, SimplePublicObjectInput(properties={"phone": "+1 415 555 0142"}))
    qbo = demo["quickbooks"]
    discovery = f"{qbo['base_url']}/.well-known/openid_configuration/"
    auth = AuthClient(
        "unused",
        "unused",
        "http://localhost/unused",
        discovery,
        access_token=qbo["access_token"],
        realm_id=qbo["realm_id"],
    )
    client = QuickBooks(auth_client=auth, company_id=qbo["realm_id"], minorversion=75)
    client.api_url_v3 = f"{qbo['base_url']}/v3"
    deadline = time.monotonic() + 60  # "within a minute"
    while True:
        try:
            (customer,) = Customer.filter(DisplayName="Northwind Traders", qb=client)
        except QuickbooksException as error:  # this script shares the realm's budget with the worker
            assert "ThrottleExceeded" in str(error), error
            customer = None
        if customer and customer.PrimaryPhone and customer.PrimaryPhone.FreeFormNumber == "+1 415 555 0142":
            break
        assert time.monotonic() < deadline, "the HubSpot edit did not reach QuickBooks within a minute"
        time.sleep(1)
