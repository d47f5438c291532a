"""Recorded webhook deliveries: one job per delivery, queued by jobs/relay.py (strays are found
by jobs/sweeper.py)."""
from __future__ import annotations

import logging

from sqlalchemy import bindparam, update

import logs
from jobs import metrics
from jobs.queue import enqueue, enqueue_many, job_id
from models import db
from models.delivery import (
    WebhookDelivery,
    mark_processed,
    marked_with_signal,
    processed_with_signal,
    record_error,
)
from models.plain_sql import execute, first_mapping
from models.rows import unattached

log = logging.getLogger(__name__)


def handlers() -> dict:
    """(source, topic) → handler(delivery); sources plug their tables in here."""
    from jobs import event_topics, shopify_topics

    table = {("shopify", topic): handler for topic, handler in shopify_topics.HANDLERS.items()}
    return {**table, **event_topics.HANDLERS}


def delivery_job_id(delivery_id: int) -> str:
    return job_id("delivery", delivery_id)


@metrics.counts_job
def process_delivery(delivery_id: int) -> str:
    """Run the handler of one recorded delivery, once; failures are re-raised, and recorded
    on the delivery unless its step already marked it processed."""
    delivery = _take(delivery_id)
    if delivery is None:
        return "already processed"
    processed_with_signal(None)  # a handler that signals one event marks it with the signal
    source, topic, shop = delivery.source, delivery.topic, delivery.shop_domain
    handler = handlers().get((source, topic))
    with logs.context(shop=shop, delivery_id=delivery_id, topic=topic):
        try:
            outcome = handler(delivery) if handler else f"ignored: no handler for {topic!r}"
        except Exception as exc:
            # A follow-up failing after the first step marked the delivery processed with
            # its signal: the delivery is done, the failure is the follow-up signal's own.
            if not marked_with_signal(delivery_id):
                _record_error(delivery_id, exc)
            raise
        if not marked_with_signal(delivery_id):
            _mark_processed(delivery_id)
        log.info("delivery processed: %s", outcome)
    return outcome


# Each write below is one statement on an autocommit connection (one round trip, no BEGIN or
# COMMIT around it, no ORM session built for it), built once and run with parameters,
# prepared on psycopg (models/plain_sql.py).
_TABLE = WebhookDelivery.__table__
_TAKEN = ("id", "source", "topic", "shop_domain", "payload")
_TAKE = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.processed_at.is_(None)) \
    .values(attempts=_TABLE.c.attempts + 1).returning(*(_TABLE.c[name] for name in _TAKEN))


def _take(delivery_id: int) -> WebhookDelivery | None:
    """Count an attempt at an unprocessed delivery and read what its handler needs (one UPDATE
    … RETURNING); None when it was processed already (or is gone). The object holds the row's
    values as loaded (models/rows.py), without the constructor's validation (~28 µs a job):
    handlers only read its columns of _TAKEN; the others are unloaded (None)."""
    with db.autocommit() as connection:
        row = first_mapping(execute(connection, _TAKE, {"b_id": delivery_id}))
    return unattached(WebhookDelivery, row) if row is not None else None


def _mark_processed(delivery_id: int) -> None:
    with db.autocommit() as connection:  # shop/redact deletes its own row: then no row matches
        mark_processed(delivery_id, connection=connection)


def _record_error(delivery_id: int, exc: Exception) -> None:
    with db.autocommit() as connection:
        record_error(delivery_id, logs.scrub(f"{type(exc).__name__}: {exc}"),
                     connection=connection)


def enqueue_delivery(delivery_id: int, shop: str, *, at_front: bool = False) -> bool:
    """Queue a delivery's job; False when the job is already there. Redis errors propagate:
    the delivery stays in the outbox for the relay (jobs/relay.py) to try again."""
    job = enqueue(process_delivery, delivery_id, job_id=delivery_job_id(delivery_id), shop=shop,
                  at_front=at_front)
    return job is not None


def enqueue_deliveries(rows: list[tuple[int, str]]) -> int:
    """Queue the jobs of (delivery id, shop) rows in one round trip (the relay's batch); how
    many were new. Redis errors propagate, as enqueue_delivery's."""
    return enqueue_many(process_delivery, [((delivery_id,), delivery_job_id(delivery_id), shop)
                                           for delivery_id, shop in rows])
