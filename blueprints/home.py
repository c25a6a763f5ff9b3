"""The landing page: what Ledgersync is, and whether its services are up."""

from flask import Blueprint, render_template

from blueprints import current_runtime
from sync.health import overall_health

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    runtime = current_runtime()
    return render_template("home.html", health=overall_health(runtime), app_env=runtime.config.app_env)
