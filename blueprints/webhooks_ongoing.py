"""POST /webhooks/ongoing/<webhook_key>: Ongoing's "Order status is changed", fixed X-Auth-Token.

The 3PL's webhook reports every order of the goods owner; only a notice about an order Swapline
runs (an exchange order, or the original order of an open exchange) is recorded and queued. Any
other is answered 200 and forgotten: nothing of an order we do not run is stored."""
from __future__ import annotations

import hmac

from flask import Blueprint, request

import jsoncodec
import logs
from blueprints.intake import accept, ignore, refuse
from jobs.exchange_rules import OPEN_STATES
from models import db
from models.settings import by_ongoing_webhook_key, tick_first_ongoing_webhook

bp = Blueprint("webhooks_ongoing", __name__)


@bp.post("/webhooks/ongoing/<webhook_key>")
def receive(webhook_key: str):
    """Check the shop's token in constant time; record an event about one of our orders once
    (its job queued by the relay) and answer 200; answer 200 to any other without keeping it.
    Shop, token and "is it ours" come in one database read: an ignored notice costs only that."""
    body, event = _parse(request.get_data(cache=False))
    order_id, number = _order(event)  # read before the token is checked: used in SQL only
    hook = by_ongoing_webhook_key(webhook_key, order_id, number, open_states=OPEN_STATES)
    if hook is None:
        return refuse(404, "unknown webhook key")
    logs.bind(shop=hook.shop_domain)
    expected = hook.webhook_token()
    given = request.headers.get("X-Auth-Token", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return refuse(401, "missing or wrong X-Auth-Token")
    if event is NOT_JSON:
        return refuse(400, "body is not JSON")
    event_id = event.get("webhookEventId") if isinstance(event, dict) else None
    if isinstance(event_id, bool) or not isinstance(event_id, int | str) or event_id == "":
        return refuse(400, "webhookEventId is required")
    if hook.first_ongoing_webhook_at is None:  # any authentic notice proves the webhook works
        with db.autocommit() as connection:
            tick_first_ongoing_webhook(hook.settings_id, connection=connection)
    if not hook.ours:
        return ignore(source="ongoing")
    return accept(source="ongoing", delivery_id=str(event_id), shop=hook.shop_domain,
                  topic="ongoing/order", payload=body)


NOT_JSON = object()
INT32 = range(-2**31, 2**31)  # exchange.ongoing_order_id's range: any other id is nobody's


def _parse(raw: bytes) -> tuple[str, object]:
    """(body, its JSON), or (_, NOT_JSON) when it is not UTF-8 JSON (refused once the token
    is checked)."""
    try:
        body = raw.decode("utf-8")
        return body, jsoncodec.loads(body)
    except ValueError:
        return "", NOT_JSON


def _order(event: object) -> tuple[int | None, str | None]:
    """The notice's Ongoing order id and number, None where missing or malformed: a notice
    without an order id (another webhook type the 3PL chose) concerns nothing we run."""
    if not isinstance(event, dict):
        return None, None
    order_id, number = event.get("orderId"), event.get("orderNumber")
    if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id not in INT32:
        order_id = None
    if isinstance(number, bool) or not isinstance(number, int | str) or "\x00" in str(number):
        number = None  # the handler would match nothing by it either
    return order_id, None if number is None else str(number)
