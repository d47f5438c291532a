"""Retention: what Swapline keeps only as long as it is useful.

A processed webhook delivery is needed for deduplication while its sender may still re-send it
(Shopify: 4 hours; Ongoing: 24 hours) and its payload holds customer data; an applied exchange
signal is needed by nobody (the exchange's timeline tells its history). Both are deleted 30 days
after they were done, by an hourly job. Unprocessed deliveries and pending signals are never
touched, and nothing of an exchange itself is.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import delete, select

from jobs import metrics
from models import db
from models.delivery import WebhookDelivery
from models.exchange_signal import ExchangeSignal
from models.types import utcnow

KEEP = timedelta(days=30)
PERIOD_SECONDS = 3600
PAGE, MAX_PAGES = 1000, 50  # up to 50,000 rows of each kind an hour
log = logging.getLogger(__name__)


@metrics.counts_job
def prune() -> dict[str, int]:
    """Delete deliveries processed and signals applied more than KEEP ago; the counts."""
    cutoff = utcnow() - KEEP
    counts = {"deliveries": _prune(WebhookDelivery, WebhookDelivery.processed_at, cutoff),
              "signals": _prune(ExchangeSignal, ExchangeSignal.done_at, cutoff)}
    if any(counts.values()):
        log.info("pruned %(deliveries)d deliveries and %(signals)d signals", counts)
    return counts


def _prune(model, done_column, cutoff) -> int:
    deleted = 0
    for _ in range(MAX_PAGES):
        with db.session() as s:
            ids = s.exec(select(model.id).where(done_column.is_not(None), done_column < cutoff)
                         .order_by(model.id).limit(PAGE)).all()
            if ids:
                s.exec(delete(model).where(model.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < PAGE:
            break
    return deleted
