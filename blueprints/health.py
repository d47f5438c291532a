"""GET /healthz (database, Redis, worker heartbeat) and GET /metrics (Prometheus text format)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, jsonify
from rq import Worker
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from jobs import metrics
from jobs.queue import jobs
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange
from models.exchange_signal import ExchangeSignal

bp = Blueprint("health", __name__)
HEARTBEAT_MAX_AGE = timedelta(seconds=120)  # workers beat at least every worker_ttl (75 s)


@bp.get("/healthz")
def healthz():
    """200 when the database and Redis answer (`degraded` without a live worker); else 503.

    A web node is healthy without workers (they may be deployed, or restarting, elsewhere), so a
    missing heartbeat is reported but never takes the node out of the load balancer.
    """
    checks = {"database": _check(_database), "redis": _check(lambda: jobs().connection.ping())}
    ok = all(v == "ok" for v in checks.values())
    worker = _worker() if checks["redis"] == "ok" else "unknown"
    status = "unavailable" if not ok else "ok" if worker == "ok" else "degraded"
    return jsonify(status=status, worker=worker, **checks), 200 if ok else 503


# No auth for now: in production the proxy must keep /metrics off the public internet.
@bp.get("/metrics")
def metrics_view():
    """Counters and latency histograms from Redis, plus exchanges by state and queue length."""
    with db.session() as s:
        rows = s.execute(select(Exchange.state, func.count()).group_by(Exchange.state)).all()
        unprocessed = s.execute(select(func.count()).select_from(WebhookDelivery)
                                .where(WebhookDelivery.processed_at.is_(None))).scalar_one()
        unqueued = s.execute(select(func.count()).select_from(WebhookDelivery)
                             .where(WebhookDelivery.queued_at.is_(None))).scalar_one()
        pending = s.execute(select(func.count()).select_from(ExchangeSignal)
                            .where(ExchangeSignal.done_at.is_(None))).scalar_one()
    gauges = [
        ("swapline_exchanges", "Exchanges by state.",
         {metrics.labels(state=state): n for state, n in rows}),
        ("swapline_queue_length", "Jobs waiting in the queue.", {"": jobs().queue.count}),
        ("swapline_deliveries_unprocessed", "Webhooks answered 200 and not processed yet.",
         {"": unprocessed}),
        ("swapline_deliveries_unqueued", "Webhooks recorded whose job the relay has not queued "
                                         "yet.", {"": unqueued}),
        ("swapline_exchange_events_pending", "Exchange events recorded and not applied yet.",
         {"": pending}),
    ]
    return Response(metrics.render(gauges), mimetype="text/plain",
                    content_type="text/plain; version=0.0.4; charset=utf-8")


def _database() -> None:
    """SELECT 1 on a pooled connection. A connection the database dropped while idle (an outage
    now over) fails once and SQLAlchemy discards the pool's others with it: asked again at once,
    so the check says how the database is now, not how it was."""
    for attempt in (1, 2):
        try:
            with db.engine().connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise


def _worker() -> str:
    """"ok" when some RQ worker beat within HEARTBEAT_MAX_AGE, "stale" when none did, "none"."""
    try:
        beats = [w.last_heartbeat for w in Worker.all(connection=jobs().connection)]
    except Exception as exc:  # a health check reports every failure instead of raising it
        return f"error: {type(exc).__name__}"
    if not beats:
        return "none"
    now = datetime.now(UTC)
    fresh = any(b is not None and now - b.replace(tzinfo=b.tzinfo or UTC) < HEARTBEAT_MAX_AGE
                for b in beats)
    return "ok" if fresh else "stale"


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # a health check reports every failure instead of raising it
        return f"error: {type(exc).__name__}"
    return "ok"
