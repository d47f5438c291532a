"""POST /webhooks/ongoing/<webhook_key>: Ongoing's "Order status is changed", fixed X-Auth-Token.

The 3PL's webhook reports every order of the goods owner; only a notice about an order Swapline
runs (an exchange order, or the original order of an open exchange) is recorded and queued. Any
other is answered 200 and forgotten: nothing of an order we do not run is stored."""
from __future__ import annotations

import hmac
import json

from flask import Blueprint, Response, request

from blueprints.intake import accept, ignore, keyed_shop, refuse
from jobs.exchange_rules import OPEN_STATES
from models import db
from models.exchange import concerns_ongoing_order
from models.settings import ShopSettings, tick_first_ongoing_webhook

bp = Blueprint("webhooks_ongoing", __name__)


@bp.post("/webhooks/ongoing/<webhook_key>")
def receive(webhook_key: str):
    """Check the shop's token in constant time; record an event about one of our orders once,
    enqueue, answer 200; answer 200 to any other without keeping it."""
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
    if not _ours(settings, shop.domain, event):
        return ignore(source="ongoing")
    return accept(source="ongoing", delivery_id=str(event_id), shop=shop.domain,
                  topic="ongoing/order", payload=body)


def _ours(settings: ShopSettings, domain: str, event: dict) -> bool:
    """Tick the checklist (any authentic notice proves the 3PL's webhook works; written once),
    then one indexed lookup: is the notice's order one Swapline runs for this shop? A notice
    without an order id (another webhook type the 3PL chose) concerns nothing we run."""
    order_id, number = event.get("orderId"), event.get("orderNumber")
    if isinstance(number, bool) or not isinstance(number, int | str) or "\x00" in str(number):
        number = None  # the handler would match nothing by it either
    with db.autocommit_session() as s:  # each statement one round trip
        tick_first_ongoing_webhook(settings, session=s)
        if isinstance(order_id, bool) or not isinstance(order_id, int):
            return False
        return concerns_ongoing_order(domain, order_id, None if number is None else str(number),
                                      open_states=OPEN_STATES, session=s)
