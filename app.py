"""Ledgersync's web app: `create_app()` builds it; gunicorn runs `app:create_app()`.

Nothing here does I/O at import time. `create_app` reads the configuration (or takes
it from a test), builds the `Runtime` (database, job queue, token cipher) and
registers the blueprints and CLI commands; connections open on first use.
"""

from __future__ import annotations

import logging
import time

import secure
from flask import Flask, g, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from blueprints import csrf, register_blueprints
from cli import register_commands
from sync.config import Config
from sync.log import configure_logging
from sync.runtime import Runtime
from sync.sessions import IDLE_SECONDS

log = logging.getLogger("ledgersync.web")


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    configure_logging(config)

    app = Flask(__name__, instance_path=str(config.instance_path))
    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.app_base_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        PERMANENT_SESSION_LIFETIME=IDLE_SECONDS,  # the cookie; the session itself is server-side
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,
    )
    if config.is_production:
        # Behind one proxy (Heroku's router, a load balancer) that sets X-Forwarded-*.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    runtime = Runtime(config)
    app.extensions["ledgersync"] = runtime
    csrf.init_app(app)
    register_blueprints(app)
    register_commands(app)
    _add_request_hooks(app)
    log.info(
        "app created",
        extra={
            "app_env": config.app_env,
            "database": runtime.database.engine.dialect.name,
            "job_mode": runtime.jobs.mode,
        },
    )
    return app


def security_headers(settings: Config) -> secure.Secure:
    """Every response's security headers (the `secure` package): a Content-Security-Policy that allows
    only our own scripts, styles and forms (the pages have no inline script or style), no framing,
    no sniffing, and HSTS in production, where the app is served over https only."""
    policy = (
        secure.ContentSecurityPolicy()
        .default_src("'self'")
        .script_src("'self'")
        .style_src("'self'")
        .img_src("'self'", "data:")
        .form_action("'self'")
        .frame_ancestors("'none'")
        .base_uri("'self'")
        .object_src("'none'")
    )
    hsts = secure.StrictTransportSecurity().max_age(31_536_000).include_subdomains()
    return secure.Secure(
        csp=policy,
        hsts=hsts if settings.is_production else None,
        xfo=secure.XFrameOptions().deny(),
        xcto=secure.XContentTypeOptions().nosniff(),
        referrer=secure.ReferrerPolicy().same_origin(),
    )


def _add_request_hooks(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    headers = security_headers(app.extensions["ledgersync"].config)

    @app.after_request
    def finish(response):
        headers.set_headers(response)
        if "sid" in session:  # a signed-in page: never kept by a browser or a proxy
            response.headers["Cache-Control"] = "no-store"
        started = g.get("request_started")
        # The path only: query strings carry OAuth codes and states.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
            },
        )
        return response

    @app.teardown_appcontext
    def close_session(_error) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()
