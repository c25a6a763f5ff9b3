"""Benchmark: a first contacts ⇄ customers sync, and the run after it that finds nothing to do.

Both emulators and the app run in this process (threads), the app is installed and connected
through the real OAuth redirects (scripts/demo_data.py), then HubSpot gets CONTACTS contacts
and QuickBooks CUSTOMERS customers, a third of them sharing an email with a contact (those
link instead of being created). The sync runs to the end in this process, as `flask sync run`
does, with the emulators' rate limits off (the product's own limiter still paces it), on
SQLite. Measured: seconds, records a second, API calls per side, peak RSS (the emulators'
memory included). Prints one JSON line and writes .bench/contacts_sync.json. `make bench`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import threading
import time
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
from sync.config import Config  # noqa: E402
from sync.job_queue import start_embedded_redis  # noqa: E402
from sync.runner import run_object  # noqa: E402
from sync.setup import set_up  # noqa: E402
from sync.store import migrate  # noqa: E402

CONTACTS = int(os.environ.get("BENCH_CONTACTS", "3000"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1500"))


def _calls(base: str) -> int:
    return requests.get(f"{base}/_emulator/requests?limit=0", timeout=30).json()["total"]


def main() -> dict:
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the emulators speak http on localhost only
    results: dict[str, object] = {"contacts": CONTACTS, "customers": CUSTOMERS}
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
        shared = CUSTOMERS // 3
        contacts = [
            {"properties": {"email": f"p{n}@example.com", "firstname": f"First{n}", "lastname": f"Last{n}"}}
            for n in range(CONTACTS)
        ]
        requests.post(
            f"{hubspot.url}/_emulator/accounts/{demo.portal_id}/seed",
            json={"objectType": "contacts", "records": contacts},
            timeout=300,
        ).raise_for_status()
        customers = [
            {
                "DisplayName": f"Customer {n}",
                "PrimaryEmailAddr": {"Address": f"p{n}@example.com" if n < shared else f"q{n}@example.com"},
            }
            for n in range(CUSTOMERS)
        ]
        requests.post(
            f"{qbo.url}/_emulator/companies/{demo.realm_id}/seed",
            json={"entity": "Customer", "records": customers},
            timeout=300,
        ).raise_for_status()
        set_up(runtime, demo.company_id, "contacts", "two_way", "hubspot", filters={"hubspot": None})
        before = {"hubspot": _calls(hubspot.url), "quickbooks": _calls(qbo.url)}
        started = time.perf_counter()
        summary = run_object(runtime, demo.company_id, "contacts")
        first = time.perf_counter() - started
        results["first_sync_seconds"] = round(first, 2)
        results["records_per_second"] = round((CONTACTS + CUSTOMERS) / first, 1)
        results["first_sync_counts"] = summary.counts
        results["first_sync_api_calls"] = {
            "hubspot": _calls(hubspot.url) - before["hubspot"],
            "quickbooks": _calls(qbo.url) - before["quickbooks"],
        }
        before = {"hubspot": _calls(hubspot.url), "quickbooks": _calls(qbo.url)}
        started = time.perf_counter()
        again = run_object(runtime, demo.company_id, "contacts")
        results["next_run_seconds"] = round(time.perf_counter() - started, 2)
        results["next_run_counts"] = again.counts
        results["next_run_api_calls"] = {
            "hubspot": _calls(hubspot.url) - before["hubspot"],
            "quickbooks": _calls(qbo.url) - before["quickbooks"],
        }
        server.shutdown()
        runtime.close()
        redis.shutdown(nosave=True)
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


if __name__ == "__main__":
    outcome = main()
    print(json.dumps(outcome))
    Path(".bench").mkdir(exist_ok=True)
    Path(".bench/contacts_sync.json").write_text(json.dumps(outcome, indent=2) + "\n")
