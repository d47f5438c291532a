"""Recorded webhook deliveries: one job per delivery, queued by jobs/relay.py (strays are found
by jobs/sweeper.py)."""
from __future__ import annotations

import logging

import logs
from jobs import metrics
from jobs.queue import enqueue, job_id
from models import db
from models.delivery import WebhookDelivery
from models.types import utcnow

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
    """Run the handler of one recorded delivery, once; failures are recorded and re-raised."""
    with db.session() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.processed_at is not None:
            return "already processed"
        delivery.attempts += 1
        source, topic, shop = delivery.source, delivery.topic, delivery.shop_domain
    handler = handlers().get((source, topic))
    with logs.context(shop=shop, delivery_id=delivery_id, topic=topic):
        try:
            outcome = handler(delivery) if handler else f"ignored: no handler for {topic!r}"
        except Exception as exc:
            _record_error(delivery_id, exc)
            raise
        _mark_processed(delivery_id)
        log.info("delivery processed: %s", outcome)
    return outcome


def _mark_processed(delivery_id: int) -> None:
    with db.session() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is not None:  # shop/redact deletes its own delivery row too
            delivery.processed_at = utcnow()
            delivery.last_error = None


def _record_error(delivery_id: int, exc: Exception) -> None:
    with db.session() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is not None:
            delivery.last_error = logs.scrub(f"{type(exc).__name__}: {exc}")[:2000]


def enqueue_delivery(delivery_id: int, shop: str, *, at_front: bool = False) -> bool:
    """Queue a delivery's job; False when the job is already there. Redis errors propagate:
    the delivery stays in the outbox for the relay (jobs/relay.py) to try again."""
    job = enqueue(process_delivery, delivery_id, job_id=delivery_job_id(delivery_id), shop=shop,
                  at_front=at_front)
    return job is not None
