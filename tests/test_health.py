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
    assert body["redis"]["ok"] is False and "Connection" in body["redis"]["error"]


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
