"""What every webhook endpoint shares: one refusal path, and record-once-then-enqueue."""
from __future__ import annotations

import logging

from flask import Response, jsonify

from jobs.deliveries import enqueue_delivery
from models import db
from models.delivery import record_delivery

log = logging.getLogger(__name__)


def refuse(status: int, message: str) -> Response:
    """The one place a webhook is turned away; nothing has been stored."""
    log.warning("webhook refused (%d): %s", status, message)
    return Response(message, status=status, mimetype="text/plain")


def accept(*, source: str, delivery_id: str, shop: str, topic: str, payload: str) -> Response:
    """Record a verified delivery once and queue its job; a duplicate is a 200 no-op."""
    with db.autocommit() as connection:
        row_id = record_delivery(connection, source=source, delivery_id=delivery_id[:255],
                                 shop_domain=shop, topic=topic[:128], payload=payload)
    if row_id is None:
        return jsonify(status="duplicate")
    queued = enqueue_delivery(row_id, shop)
    return jsonify(status="queued" if queued else "recorded")
