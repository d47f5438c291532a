"""What every webhook endpoint shares: one refusal path, and record once. The recorded row is
the outbox: the relay in the workers (jobs/relay.py) queues its job, so a request waits on nothing
but its one INSERT, and is answered 200 while Redis is down."""
from __future__ import annotations

import json
import logging

from flask import Response

import logs
from jobs import metrics
from models import db
from models.delivery import is_recorded, record_delivery
from models.settings import by_webhook_key

log = logging.getLogger(__name__)


def refuse(status: int, message: str) -> Response:
    """The one place a webhook is turned away; nothing has been stored."""
    log.warning("webhook refused (%d): %s", status, message)
    metrics.count("swapline_webhooks_rejected_total", status=status)
    return Response(message, status=status, mimetype="text/plain")


def keyed_shop(webhook_key: str):
    """(settings, shop) behind a per-shop webhook key, or the 404 to send (nothing stored)."""
    with db.autocommit_session() as s:  # one round trip: the key is on every request
        found = by_webhook_key(webhook_key, session=s)
    if found is None:
        return refuse(404, "unknown webhook key")
    logs.bind(shop=found[1].domain)
    return found


def ignore(*, source: str) -> Response:
    """200 for a verified delivery about nothing Swapline runs: nothing stored, nothing queued,
    only counted (its sender must not re-send it)."""
    metrics.count("swapline_webhooks_received_total", source=source, outcome="ignored")
    return answer("ignored")


def answer(outcome: str) -> Response:
    """The 200 of a webhook: `{"status": outcome}`, its bytes made once."""
    return Response(ANSWERS[outcome], mimetype="application/json")


ANSWERS = {outcome: json.dumps({"status": outcome}).encode() + b"\n"
           for outcome in ("queued", "duplicate", "duplicate_event", "ignored")}


def accept(*, source: str, delivery_id: str, shop: str, topic: str, payload: str,
           event_id: str | None = None) -> Response:
    """Record a verified delivery once (its job is queued by the relay); a duplicate is a 200
    no-op, and so is a second delivery of one event to one topic (a second subscription's copy).
    """
    if "\x00" in delivery_id + topic + shop + (event_id or ""):  # PostgreSQL text: NUL is a 500
        return refuse(400, "delivery id, event id, topic and shop must not contain NUL")
    row_id = record_delivery(source=source, delivery_id=delivery_id[:255],
                             event_id=event_id[:255] if event_id else None,
                             shop_domain=shop, topic=topic[:128], payload=payload)
    same = row_id is None and is_recorded(source=source, shop_domain=shop,
                                          delivery_id=delivery_id[:255])
    if row_id is None:
        outcome = "duplicate" if same else "duplicate_event"
        if not same:
            log.info("skipped a second delivery of event %s (%s)", event_id, topic,
                     extra={"shop": shop, "delivery_id": delivery_id})
    else:
        outcome = "queued"  # in the outbox: its job runs once the relay has moved it
    metrics.count("swapline_webhooks_received_total", source=source, outcome=outcome)
    return answer(outcome)
