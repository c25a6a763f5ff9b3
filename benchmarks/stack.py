"""The stack a sync benchmark runs against, in this process: both emulators (rate limits off; the
product's own limiter still paces the run), the app on a local port, an embedded Redis, SQLite, and
the app installed and QuickBooks connected through the real OAuth redirects (scripts/demo_data.py).

    with bench_stack() as stack:
        stack.calls()  # API calls so far, per side
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import demo_data  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from emulators.hubspot import EmulatorServer  # noqa: E402
from emulators.quickbooks import QboEmulatorServer  # noqa: E402
from sync.clients.ratelimit import HUBSPOT_LIMITS, QBO_LIMITS  # noqa: E402
from sync.config import Config  # noqa: E402
from sync.job_queue import start_embedded_redis  # noqa: E402
from sync.runtime import Runtime  # noqa: E402
from sync.store import migrate  # noqa: E402


@dataclass
class BenchStack:
    runtime: Runtime
    demo: demo_data.Demo
    hubspot_url: str
    qbo_url: str

    def timed_run(self, object_type: str):
        """One run to the end: (seconds, its summary, API calls per side)."""
        from sync.runner import run_object

        before = self.calls()
        started = time.perf_counter()
        summary = run_object(self.runtime, self.demo.company_id, object_type)
        seconds = time.perf_counter() - started
        return seconds, summary, {side: n - before[side] for side, n in self.calls().items()}

    def first_and_next(self, object_type: str, records: int, unit: str = "record") -> dict:
        """A first run to the end, and the run after it that should find nothing: their seconds, counts and
        API calls, the calls per `unit`, and the rate-limit floor of the first run's calls."""
        batches_before = qbo_batches(self.qbo_url)
        first, summary, calls = self.timed_run(object_type)
        results = {
            "first_sync_seconds": round(first, 2),
            f"{unit}s_per_second": round(records / first, 1),
            "first_sync_counts": summary.counts,
            "first_sync_api_calls": calls,
            f"api_calls_per_{unit}": {side: round(n / records, 3) for side, n in calls.items()},
            "rate_limit_floor_seconds": floor_seconds(calls, qbo_batches(self.qbo_url) - batches_before),
        }
        seconds, again, calls = self.timed_run(object_type)
        return {**results, "next_run_seconds": round(seconds, 2), "next_run_counts": again.counts,
                "next_run_api_calls": calls}  # fmt: skip

    def calls(self) -> dict[str, int]:
        """Requests each emulator has answered so far."""
        return {
            side: requests.get(f"{base}/_emulator/requests?limit=0", timeout=30).json()["total"]
            for side, base in (("hubspot", self.hubspot_url), ("quickbooks", self.qbo_url))
        }


@contextmanager
def bench_stack() -> Iterator[BenchStack]:
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the emulators speak http on localhost only
    with (
        tempfile.TemporaryDirectory() as folder,
        EmulatorServer(rate_limits=False) as hubspot,
        QboEmulatorServer(rate_limits=False) as qbo,
    ):
        redis = start_embedded_redis(Path(folder))
        server = make_server("127.0.0.1", 0, None, threaded=True)
        url = f"http://localhost:{server.server_port}"
        settings = Config(
            instance_path=Path(folder) / "instance",
            database_url=f"sqlite:///{folder}/bench.db",
            redis_url=f"unix://{redis.socket_file}",
            secret_key="bench-" + Fernet.generate_key().decode(),
            token_encryption_key=Fernet.generate_key().decode(),
            app_base_url=url,
            log_level="WARNING",
            hubspot_api_base_url=hubspot.url,
            hubspot_authorize_url=f"{hubspot.url}/oauth/authorize",
            hubspot_app_id="4242001",
            hubspot_client_id="ledgersync-emulator-client-id",
            hubspot_client_secret="ledgersync-emulator-client-secret",  # noqa: S106 (the emulator's public test app)
            intuit_client_id="qbo-emulator-client-id",
            intuit_client_secret="qbo-emulator-client-secret",  # noqa: S106
            intuit_webhook_verifier_token="qbo-emulator-verifier-token",  # noqa: S106
            qbo_api_base_url=qbo.url,
            intuit_discovery_url=f"{qbo.url}/.well-known/openid_configuration/",
        )
        app = create_app(settings)
        server.app = app
        runtime = app.extensions["ledgersync"]
        migrate.upgrade(runtime.database.engine)
        requests.post(
            f"{hubspot.url}/_emulator/project",
            json={"folder": str(ROOT / "hubspot_extensions"), "proxy": {"https://ledgersync.example.com": url}},
            timeout=30,
        ).raise_for_status()
        requests.post(f"{hubspot.url}/_emulator/webhooks/config", json={"autoDeliver": False}, timeout=30)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        demo = demo_data.Demo(app_url=url, hubspot_url=hubspot.url, qbo_url=qbo.url)
        demo_data.install_and_connect(runtime, demo)
        try:
            yield BenchStack(runtime, demo, hubspot.url, qbo.url)
        finally:
            server.shutdown()
            runtime.close()
            redis.shutdown(nosave=True)


def report(name: str, outcome: dict) -> None:
    """Print the result as one JSON line and keep it in .bench/<name>.json, with the peak RSS."""
    outcome["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(outcome))
    Path(".bench").mkdir(exist_ok=True)
    Path(f".bench/{name}.json").write_text(json.dumps(outcome, indent=2) + "\n")


def floor_seconds(calls: dict[str, int], qbo_batches: int) -> float:
    """The least time the published limits allow for these calls: n requests under "L per W seconds"
    need (ceil(n / L) - 1) × W seconds (the slowest side and window decide)."""

    def least(count: int, windows) -> float:
        return max((math.ceil(count / limit) - 1) * seconds for limit, seconds in windows) if count else 0.0

    hubspot = least(calls["hubspot"], HUBSPOT_LIMITS["api"])
    qbo = max(least(calls["quickbooks"] - qbo_batches, QBO_LIMITS["api"]), least(qbo_batches, QBO_LIMITS["batch"]))
    return round(max(hubspot, qbo), 1)


def qbo_batches(base: str) -> int:
    log = requests.get(f"{base}/_emulator/requests?limit=0", timeout=30).json()
    return sum(count for endpoint, count in log.get("byEndpoint", {}).items() if endpoint.endswith("/batch"))
