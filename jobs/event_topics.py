"""Handlers of Ongoing webhooks and return events; the lifecycle plugs in behind them."""
from __future__ import annotations

import json

from sqlmodel import select

from jobs import exchange_triggers
from jobs.lifecycle import OPEN_STATES, signal
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange, find_by_return, note
from models.settings import settings_for
from models.shop import get_shop
from models.types import utcnow

RETURN_EVENTS = ("return.closed", "shipment.event.in_transit")


def ongoing_order(delivery: WebhookDelivery) -> str:
    """An Ongoing order webhook: tick the checklist, then our exchange order shipped, or an
    original order came back at the merchant's Returned code (when it has one)."""
    payload = json.loads(delivery.payload)
    with db.session() as s:
        shop = get_shop(delivery.shop_domain, session=s)
        if shop is None:
            return "shop gone"
        settings = settings_for(shop, session=s)
        if settings.first_ongoing_webhook_at is None:
            settings.first_ongoing_webhook_at = utcnow()
    status = (payload.get("orderStatus") or {}).get("number")
    order_id = payload.get("orderId")
    if not isinstance(status, int) or not isinstance(order_id, int):
        return "no order id or status number"
    source = f"Ongoing webhook {payload.get('webhookEventId')}"
    outcome = exchange_triggers.ongoing_status(delivery.shop_domain, order_id, status, source)
    returned = settings.order_status_returned  # None: the warehouse has no Returned status
    if outcome == "not an exchange order" and returned is not None and status == returned:
        count = exchange_triggers.release_for_original(
            delivery.shop_domain, str(payload.get("orderNumber") or ""), source)
        return f"original order returned: {count} exchange(s) to release"
    return outcome


def ongoing_other(delivery: WebhookDelivery) -> str:
    """A webhook type Swapline does not use (the 3PL picked another trigger)."""
    return "ignored: not an order webhook"


def return_event(delivery: WebhookDelivery) -> str:
    """A return event: closed releases; in transit releases only with Instant Exchange on."""
    if delivery.topic not in RETURN_EVENTS:
        return f"ignored: unknown event {delivery.topic!r}"
    payload = json.loads(delivery.payload)
    exchange = _exchange_for_event(delivery.shop_domain, payload)
    if exchange is None:
        return "no exchange for this return"
    note(exchange.id, f"return event {delivery.topic}", payload["id"], kind="webhook")
    event = "in_transit" if delivery.topic == "shipment.event.in_transit" else "release"
    signal(exchange.id, event, shop=delivery.shop_domain, source=delivery.topic)
    return f"{event} queued for exchange {exchange.id}"


def _exchange_for_event(domain: str, payload: dict) -> Exchange | None:
    with db.session() as s:
        if payload.get("return_id"):
            return find_by_return(domain, payload["return_id"], session=s)
        query = select(Exchange).where(Exchange.shop_domain == domain,
                                       Exchange.order_name == payload.get("order_name"),
                                       Exchange.state.in_(OPEN_STATES))
        return s.exec(query).first()


HANDLERS = {
    ("ongoing", "ongoing/order"): ongoing_order,
    ("ongoing", "ongoing/other"): ongoing_other,
    **{("return_events", event): return_event for event in RETURN_EVENTS},
}
