"""The app factory, its pages and its CLI."""

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from app import create_app
from sync.store import migrate

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_app_does_no_io():
    # A fresh interpreter with no services configured: importing must not connect or write.
    code = "import app, blueprints.health, blueprints.home, sync.tasks.maintenance; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "INSTANCE_PATH": "/nonexistent/instance"},
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_create_app_does_not_connect(make_settings):
    # Unreachable database and Redis: building the app must still succeed.
    app = create_app(
        make_settings(database_url="postgresql://nobody@127.0.0.1:1/none", redis_url="redis://127.0.0.1:1/0")
    )
    runtime = app.extensions["ledgersync"]
    assert runtime.database.engine.pool.checkedout() == 0
    assert "connection" not in vars(runtime.jobs)


def test_home_page_shows_service_status(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "All services are running." in page
    assert '<html lang="en">' in page


def test_security_headers(client):
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_requests_are_logged_without_query_strings(client, caplog):
    with caplog.at_level(logging.INFO, logger="ledgersync.web"):
        client.get("/healthz?code=secret-oauth-code")
    (record,) = [r for r in caplog.records if r.getMessage() == "request"]
    assert record.path == "/healthz" and record.status == 200
    assert "secret-oauth-code" not in str(vars(record))


def test_unknown_page_is_404(client):
    assert client.get("/no-such-page").status_code == 404


def test_cli_db_upgrade_and_current(make_settings, tmp_path):
    app = create_app(make_settings(database_url=f"sqlite:///{tmp_path / 'cli.db'}"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "current"])
    assert "database: None" in result.output
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"database at revision {migrate.head_revision()}" in result.output
    assert migrate.is_up_to_date(app.extensions["ledgersync"].database.engine)
    result = runner.invoke(args=["db", "downgrade", "base"])
    assert "database at revision None" in result.output


def test_cli_jobs_ping_waits_for_a_real_worker(app, runtime):
    outcome = {}
    cli = threading.Thread(target=lambda: outcome.update(result=app.test_cli_runner().invoke(args=["jobs", "ping"])))
    cli.start()
    _wait_for_queued(runtime, "high")
    # A real worker process, in burst mode: it drains the queues and exits.
    worker = subprocess.run(
        [
            str(Path(sys.executable).parent / "rq"),
            "worker",
            "--burst",
            "--url",
            runtime.config.redis_url,
            "high",
            "default",
            "low",
        ],
        cwd=ROOT,
        env=_env_for(runtime),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    cli.join(timeout=40)
    result = outcome["result"]
    assert result.exit_code == 0, result.output + worker.stdout + worker.stderr
    assert "pong:" in result.output and "from flask jobs ping" in result.output
    assert f"'pid': {os.getpid()}" not in result.output  # another process ran it


def test_cli_jobs_ping_fails_clearly_without_a_worker(app):
    result = app.test_cli_runner().invoke(args=["jobs", "ping", "--timeout", "0.5"])
    assert result.exit_code != 0
    assert "is a worker running?" in result.output


def _env_for(runtime) -> dict:
    settings = runtime.config
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "INSTANCE_PATH": str(settings.instance_path),
        "SECRET_KEY": settings.secret_key,
        "TOKEN_ENCRYPTION_KEY": settings.token_encryption_key,
    }


def _wait_for_queued(runtime, queue_name: str) -> None:
    deadline = time.monotonic() + 10
    while len(runtime.jobs.queue(queue_name)) == 0:
        assert time.monotonic() < deadline, "the CLI never enqueued its job"
        time.sleep(0.05)
