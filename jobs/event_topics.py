"""Handlers of Ongoing webhooks and return events; the lifecycle plugs in behind them."""
from __future__ import annotations

import json

from models import db
from models.delivery import WebhookDelivery
from models.settings import settings_for
from models.shop import get_shop
from models.types import utcnow

RETURN_EVENTS = ("return.closed", "shipment.event.in_transit")


def ongoing_order(delivery: WebhookDelivery) -> str:
    """An Ongoing order webhook: tick 'first webhook received' on the setup checklist."""
    payload = json.loads(delivery.payload)
    with db.session() as s:
        shop = get_shop(delivery.shop_domain, session=s)
        if shop is None:
            return "shop gone"
        settings = settings_for(shop, session=s)
        if settings.first_ongoing_webhook_at is None:
            settings.first_ongoing_webhook_at = utcnow()
    status = (payload.get("orderStatus") or {}).get("number")
    return f"order {payload.get('orderId')} at status {status} recorded"


def ongoing_other(delivery: WebhookDelivery) -> str:
    """A webhook type Swapline does not use (the 3PL picked another trigger)."""
    return "ignored: not an order webhook"


def return_event(delivery: WebhookDelivery) -> str:
    """A return event from a returns portal or carrier tracking."""
    if delivery.topic not in RETURN_EVENTS:
        return f"ignored: unknown event {delivery.topic!r}"
    return f"{delivery.topic} recorded"


HANDLERS = {
    ("ongoing", "ongoing/order"): ongoing_order,
    ("ongoing", "ongoing/other"): ongoing_other,
    **{("return_events", event): return_event for event in RETURN_EVENTS},
}
