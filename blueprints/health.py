"""GET /healthz: the database and Redis answer, or 503."""
from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from jobs.queue import jobs
from models import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the database and Redis both answer; 503 naming what does not."""
    checks = {"database": _check(_database), "redis": _check(lambda: jobs().connection.ping())}
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "unavailable", **checks), 200 if ok else 503


def _database() -> None:
    with db.engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # a health check reports every failure instead of raising it
        return f"error: {type(exc).__name__}"
    return "ok"
