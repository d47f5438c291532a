"""Handlers of Ongoing webhooks and return events: each asks jobs/ongoing_events.py (Ongoing
statuses) or reads the event (return events), then signals the lifecycle."""
from __future__ import annotations

import json

from sqlalchemy import Integer, and_, bindparam
from sqlmodel import select

from jobs import exchange_rules
from jobs.exchange_rules import IN_TRANSIT, OPEN_STATES, RELEASE
from jobs.lifecycle import signal
from jobs.ongoing_events import EXCHANGE_ORDER, ORIGINAL_ORDER, event_for
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange, find_by_ongoing_order
from models.exchange_writes import line, note
from models.plain_sql import execute
from models.rows import unattached
from models.settings import (
    ShopSettings,
    keep_for_job,
    settings_for,
    tick_first_ongoing_webhook,
)
from models.shop import Shop, get_shop

RETURN_EVENTS = ("return.closed", "shipment.event.in_transit")


def ongoing_order(delivery: WebhookDelivery) -> str:
    """An Ongoing order webhook: tick the checklist, then our exchange order moved (Sent), or
    an original order came back at the merchant's Returned code (when it has one)."""
    payload = json.loads(delivery.payload)
    status = (payload.get("orderStatus") or {}).get("number")
    order_id = payload.get("orderId")
    numbered = isinstance(status, int) and isinstance(order_id, int)
    found = _settings_and_exchange(delivery.shop_domain, order_id if numbered else None)
    if found is None:
        return "shop gone"
    settings, exchange = found
    if settings.first_ongoing_webhook_at is None:
        with db.autocommit() as connection:
            tick_first_ongoing_webhook(settings.id, connection=connection)
    if not numbered:
        return "no order id or status number"
    source = f"Ongoing webhook {payload.get('webhookEventId')}"
    if exchange is not None:
        return _exchange_order(exchange, settings, status, source, delivery.id)
    if event_for(settings, ORIGINAL_ORDER, status) == RELEASE:
        count = _release_for_original(
            delivery.shop_domain, str(payload.get("orderNumber") or ""), source)
        return f"original order returned: {count} exchange(s) to release"
    return "not an exchange order"


_SETTINGS, _EXCHANGE, _SHOP = ShopSettings.__table__, Exchange.__table__, Shop.__table__
# Built once: the shop's settings and, outer-joined, its exchange whose Ongoing order has the
# id (a NULL id matches none); the exchange's columns labelled apart from the settings'.
_NOTICE = (select(*_SETTINGS.c, *(c.label(f"exchange_{c.key}") for c in _EXCHANGE.c))
           .select_from(_SETTINGS.join(_SHOP, _SHOP.c.id == _SETTINGS.c.shop_id)
                        .outerjoin(_EXCHANGE, and_(_EXCHANGE.c.shop_domain == _SHOP.c.domain,
                                                   _EXCHANGE.c.ongoing_order_id ==
                                                   bindparam("order_id", type_=Integer))))
           .where(_SHOP.c.domain == bindparam("domain")))


def _settings_and_exchange(domain: str, order_id: int | None
                           ) -> tuple[ShopSettings, Exchange | None] | None:
    """The shop's settings and its exchange whose Ongoing order has `order_id`, in one read
    (None: the shop is gone); a shop without a settings row yet gets one. Both detached, as a
    closed session leaves what it loaded (models/rows.py builds them)."""
    with db.autocommit() as connection:  # one statement: no BEGIN and COMMIT around it
        row = execute(connection, _NOTICE, {"domain": domain, "order_id": order_id}).first()
    if row is not None:
        count = len(_SETTINGS.c)
        settings = unattached(ShopSettings, dict(zip(_SETTINGS.c.keys(), row[:count],
                                                     strict=True)), persistent=True)
        exchange = dict(zip(_EXCHANGE.c.keys(), row[count:], strict=True))
        keep_for_job(domain, settings)  # the step this job applies reads no second copy
        return settings, (unattached(Exchange, exchange, persistent=True)
                          if exchange["id"] is not None else None)
    with db.session() as s:
        shop = get_shop(domain, session=s)
        if shop is None:
            return None
        exchange = find_by_ongoing_order(domain, order_id, session=s) \
            if order_id is not None else None
        return settings_for(shop, session=s), exchange


def _exchange_order(exchange: Exchange, settings: ShopSettings, status: int, source: str,
                    delivery_id: int) -> str:
    """Our exchange order reached `status`: signal what it means, if the exchange awaits it
    (the webhook's line then goes with the signal, in one transaction, and the delivery is
    marked processed with them)."""
    name, event = f"Ongoing order status {status}", event_for(settings, EXCHANGE_ORDER, status)
    if event is None or not exchange_rules.awaited(exchange.state, event):
        note(exchange.id, name, source, kind="webhook")
        return "status noted"
    signal(exchange.id, event, shop=exchange.shop_domain, source=source, now=True,
           lines=[line(exchange.id, "webhook", name, source)], delivery_id=delivery_id)
    return f"{event} queued for exchange {exchange.id}"


def _release_for_original(domain: str, order_number: str, source: str) -> int:
    """The original order came back to the warehouse: release its open exchanges."""
    names = [order_number, f"#{order_number.lstrip('#')}"]
    with db.autocommit() as connection:  # one statement: no BEGIN and COMMIT around it
        found = list(connection.execute(_OPEN_BY_NAME, {"domain": domain, "names": names})
                     .scalars())
    for exchange_id in found:
        signal(exchange_id, RELEASE, shop=domain, source=source, now=True,
               lines=[line(exchange_id, "webhook", "Ongoing original order returned", source)],
               moment="returned_in_ongoing_at")
    return len(found)


# Built once: the ids of the shop's open exchanges of an original order, by its names.
_OPEN_BY_NAME = select(_EXCHANGE.c.id).where(
    _EXCHANGE.c.shop_domain == bindparam("domain"),
    _EXCHANGE.c.order_name.in_(bindparam("names", expanding=True)),
    _EXCHANGE.c.state.in_(OPEN_STATES)).order_by(_EXCHANGE.c.id)


def ongoing_other(delivery: WebhookDelivery) -> str:
    """A webhook type Swapline does not use (the 3PL picked another trigger)."""
    return "ignored: not an order webhook"


def return_event(delivery: WebhookDelivery) -> str:
    """A return event: closed releases; in transit releases only with Instant Exchange on."""
    if delivery.topic not in RETURN_EVENTS:
        return f"ignored: unknown event {delivery.topic!r}"
    payload = json.loads(delivery.payload)
    exchange_id = _exchange_for_event(delivery.shop_domain, payload)
    if exchange_id is None:
        return "no exchange for this return"
    event = IN_TRANSIT if delivery.topic == "shipment.event.in_transit" else RELEASE
    signal(exchange_id, event, shop=delivery.shop_domain, source=delivery.topic, now=True,
           lines=[line(exchange_id, "webhook", f"return event {delivery.topic}", payload["id"])],
           moment="return_closed_at" if delivery.topic == "return.closed" else None,
           delivery_id=delivery.id)
    return f"{event} queued for exchange {exchange_id}"


def _exchange_for_event(domain: str, payload: dict) -> int | None:
    """The id of the shop's exchange a return event is about: by its return, else an open one
    of the order it names (one statement, no ORM)."""
    if payload.get("return_id"):
        query, values = _BY_RETURN, {"domain": domain, "gid": payload["return_id"]}
    else:
        query, values = _OPEN_BY_NAME, {"domain": domain, "names": [payload.get("order_name")]}
    with db.autocommit() as connection:
        return connection.execute(query, values).scalars().first()


_BY_RETURN = select(_EXCHANGE.c.id).where(_EXCHANGE.c.shop_domain == bindparam("domain"),
                                          _EXCHANGE.c.return_gid == bindparam("gid"))


HANDLERS = {
    ("ongoing", "ongoing/order"): ongoing_order,
    ("ongoing", "ongoing/other"): ongoing_other,
    **{("return_events", event): return_event for event in RETURN_EVENTS},
}
