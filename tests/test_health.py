import json

from sync.store import migrate


def test_healthz_ok_when_database_and_redis_are_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == {
        **body["database"],
        "ok": True,
        "dialect": "sqlite",
        "revision": migrate.head_revision(),
    }
    assert body["redis"]["ok"] is True and body["redis"]["mode"] == "redis"


def test_healthz_503_when_redis_is_down(make_settings, tmp_path):
    from app import create_app

    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings)
    migrate.upgrade(app.extensions["ledgersync"].database.engine)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["redis"] == {**body["redis"], "ok": False, "error": "unreachable"}  # no host or port said


def test_healthz_503_when_schema_is_not_migrated(make_settings, redis_url, tmp_path):
    from app import create_app

    app = create_app(make_settings(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "flask db upgrade" in response.get_json()["database"]["error"]


def test_healthz_never_shows_credentials(make_settings, redis_url):
    from app import create_app

    app = create_app(make_settings(redis_url=redis_url, database_url="postgresql://ledger:hunter2secret@127.0.0.1:1/x"))
    body = app.test_client().get("/healthz").get_data(as_text=True)
    assert json.loads(body)["database"]["ok"] is False
    assert "hunter2secret" not in body


def test_healthz_and_the_home_page_never_tell_the_database_host_port_or_name(make_settings, redis_url):
    from app import create_app

    url = "postgresql://ledger:hunter2secret@127.0.0.1:1/secret_db_name"
    app = create_app(make_settings(redis_url=redis_url, database_url=url))
    for page in ("/healthz", "/"):
        text = app.test_client().get(page).get_data(as_text=True)
        for secret in ("hunter2secret", "secret_db_name", "127.0.0.1", "ledger@", "port 1 "):
            assert secret not in text, (page, secret)


def test_a_database_that_accepts_but_never_answers_is_reported_within_seconds(make_settings, redis_url):
    """A socket that accepts connections and never says a word: /healthz answers 503 within a few
    seconds, naming the database, instead of hanging with the request."""
    import socket
    import threading
    import time

    from app import create_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted, stop = [], threading.Event()

    def accept_and_stay_silent():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    silent = threading.Thread(target=accept_and_stay_silent, daemon=True)
    silent.start()
    try:
        port = listener.getsockname()[1]
        app = create_app(make_settings(redis_url=redis_url, database_url=f"postgresql://x@127.0.0.1:{port}/x"))
        started = time.monotonic()
        response = app.test_client().get("/healthz")
        elapsed = time.monotonic() - started
        body = response.get_json()
        assert response.status_code == 503 and body["database"]["ok"] is False
        assert "no answer" in body["database"]["error"] and body["redis"]["ok"] is True
        assert elapsed < 10, elapsed  # a bound on a hang, not a speed measurement
        assert accepted  # it did reach the silent server
    finally:
        stop.set()
        silent.join(5)
        for connection in accepted:
            connection.close()
        listener.close()
