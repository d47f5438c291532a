"""What every webhook endpoint shares: one refusal path, and record-once-then-enqueue."""
from __future__ import annotations

import logging

from flask import Response, jsonify

import logs
from jobs import metrics
from jobs.deliveries import enqueue_delivery
from models import db
from models.delivery import record_delivery
from models.settings import by_webhook_key

log = logging.getLogger(__name__)


def refuse(status: int, message: str) -> Response:
    """The one place a webhook is turned away; nothing has been stored."""
    log.warning("webhook refused (%d): %s", status, message)
    metrics.count("swapline_webhooks_rejected_total", status=status)
    return Response(message, status=status, mimetype="text/plain")


def keyed_shop(webhook_key: str):
    """(settings, shop) behind a per-shop webhook key, or the 404 to send (nothing stored)."""
    with db.session() as s:
        found = by_webhook_key(webhook_key, session=s)
    if found is None:
        return refuse(404, "unknown webhook key")
    logs.bind(shop=found[1].domain)
    return found


def accept(*, source: str, delivery_id: str, shop: str, topic: str, payload: str) -> Response:
    """Record a verified delivery once and queue its job; a duplicate is a 200 no-op."""
    if "\x00" in delivery_id + topic + shop:  # PostgreSQL text cannot hold NUL: a 500 otherwise
        return refuse(400, "delivery id, topic and shop must not contain NUL")
    with db.autocommit() as connection:
        row_id = record_delivery(connection, source=source, delivery_id=delivery_id[:255],
                                 shop_domain=shop, topic=topic[:128], payload=payload)
    if row_id is None:
        outcome = "duplicate"
    else:
        outcome = "queued" if enqueue_delivery(row_id, shop) else "recorded"
    metrics.count("swapline_webhooks_received_total", source=source, outcome=outcome)
    return jsonify(status=outcome)
