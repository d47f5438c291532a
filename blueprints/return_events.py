"""POST /webhooks/return-events/<webhook_key>: return events signed with the events secret."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from flask import Blueprint, Response, request

import jsoncodec
from blueprints.intake import accept, keyed_shop, refuse

bp = Blueprint("return_events", __name__)
SIGNATURE_HEADER = "X-Swapline-Signature"


def signature(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body with the shop's events secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@bp.post("/webhooks/return-events/<webhook_key>")
def receive(webhook_key: str):
    """Verify the signature on the raw body, check the fields, record once, enqueue, 200."""
    found = keyed_shop(webhook_key)
    if isinstance(found, Response):
        return found
    settings, shop = found
    raw = request.get_data(cache=False)
    secret = settings.events_secret()
    given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not secret or not hmac.compare_digest(given.encode(), signature(raw, secret).encode()):
        return refuse(401, f"missing or wrong {SIGNATURE_HEADER}")
    try:
        body = raw.decode("utf-8")
        event = jsoncodec.loads(body)
    except ValueError:
        return refuse(400, "body is not JSON")
    problem = _problem(event)
    if problem:
        return refuse(400, problem)
    return accept(source="return_events", delivery_id=event["id"], shop=shop.domain,
                  topic=event["event"], payload=body)


def _problem(event) -> str | None:
    """What is wrong with an event body, or None."""
    if not isinstance(event, dict):
        return "body must be a JSON object"
    if not isinstance(event.get("id"), str) or not 0 < len(event["id"]) <= 255:
        return "id must be a non-empty string"
    if not isinstance(event.get("event"), str) or not event["event"]:
        return "event is required"
    return_id, order_name = event.get("return_id"), event.get("order_name")
    if not (isinstance(return_id, str) and return_id.startswith("gid://shopify/Return/")) and \
            not (isinstance(order_name, str) and order_name):
        return "return_id (gid://shopify/Return/<n>) or order_name is required"
    try:
        datetime.fromisoformat(str(event.get("occurred_at")).replace("Z", "+00:00"))
    except ValueError:
        return "occurred_at must be an ISO 8601 time"
    return None
