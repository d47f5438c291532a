"""POST /webhooks/ongoing/<webhook_key>: Ongoing's "Order status is changed", fixed X-Auth-Token."""
from __future__ import annotations

import hmac
import json

from flask import Blueprint, Response, request

from blueprints.intake import accept, keyed_shop, refuse

bp = Blueprint("webhooks_ongoing", __name__)


@bp.post("/webhooks/ongoing/<webhook_key>")
def receive(webhook_key: str):
    """Check the shop's token in constant time, record the event once, enqueue, answer 200."""
    found = keyed_shop(webhook_key)
    if isinstance(found, Response):
        return found
    settings, shop = found
    expected = settings.webhook_token()
    given = request.headers.get("X-Auth-Token", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return refuse(401, "missing or wrong X-Auth-Token")
    try:
        body = request.get_data(cache=False).decode("utf-8")
        event = json.loads(body)
    except ValueError:
        return refuse(400, "body is not JSON")
    event_id = event.get("webhookEventId") if isinstance(event, dict) else None
    if isinstance(event_id, bool) or not isinstance(event_id, int | str) or event_id == "":
        return refuse(400, "webhookEventId is required")
    topic = "ongoing/order" if "orderId" in event else "ongoing/other"
    return accept(source="ongoing", delivery_id=str(event_id), shop=shop.domain, topic=topic,
                  payload=body)
