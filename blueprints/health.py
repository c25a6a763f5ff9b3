"""`GET /healthz`: are the database and Redis usable? 200 if so, 503 if not."""

from flask import Blueprint, jsonify

from blueprints import current_runtime
from sync.health import overall_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report = overall_health(current_runtime())
    return jsonify(report), 200 if report["status"] == "ok" else 503
