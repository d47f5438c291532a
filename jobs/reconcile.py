"""Reconciliation: read Ongoing for every open exchange and act on changes no webhook reported;
retry exchanges an outage stopped once it has had time to clear."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import select

import logs
from clients.ongoing import OngoingNotFound
from clients.ongoing_accounts import client_for_shop
from jobs.exchange_rules import BEFORE_SENT, CREATE, DETECTED, NEEDS_ATTENTION, PARKED, RETRY
from jobs.lifecycle import signal
from jobs.ongoing_events import EXCHANGE_ORDER, RETURN_ORDER, event_for
from jobs.queue import enqueue, job_id
from models import db
from models.exchange import Exchange, ExchangeEvent
from models.exchange_writes import mark_once, note
from models.settings import settings_of
from models.types import utcnow

PERIOD_SECONDS = 300
STUCK_CREATE = timedelta(minutes=2)
OUTAGE_RETRY = timedelta(minutes=10)  # since the last failure
BATCH = 100  # order numbers per Ongoing call
log = logging.getLogger(__name__)


def _watched():
    """Open exchanges the warehouse may move, and those stopped by an outage."""
    return or_(Exchange.state.in_(BEFORE_SENT),
               and_(Exchange.state == NEEDS_ATTENTION, Exchange.attention_transient))


def reconcile_all() -> int:
    """Queue one reconciliation per shop with open exchanges (once per period)."""
    with db.session() as s:
        shops = s.exec(select(Exchange.shop_domain).where(_watched()).distinct()).all()
    bucket = int(time.time()) // PERIOD_SECONDS
    for domain in shops:
        enqueue(reconcile_shop, domain, job_id=job_id("reconcile", domain, bucket), shop=domain)
    return len(shops)


def reconcile_shop(domain: str) -> str:
    """For the open exchanges of a shop, the Ongoing state decides: sent, returned, stuck.

    Ongoing is read in batches (one call per BATCH order numbers, one per BATCH return order
    numbers): its rate limits count calls, and a shop may have thousands of parked exchanges."""
    with logs.context(shop=domain):
        settings = settings_of(domain)
        client = client_for_shop(settings)  # its calls run one at a time for the goods owner
        with db.session() as s:
            open_ = s.exec(select(Exchange).where(Exchange.shop_domain == domain,
                                                  _watched())).all()
        in_ongoing = [e for e in open_ if e.state != NEEDS_ATTENTION and e.ongoing_order_id]
        orders = _order_statuses(client, in_ongoing)
        parked = [e for e in in_ongoing if e.state == PARKED and e.ongoing_return_order_id
                  and not event_for(settings, EXCHANGE_ORDER, orders.get(e.ongoing_order_id))]
        returns = _return_statuses(client, parked)
        acted = sum(_reconcile(e, settings, orders, returns) for e in open_)
    return f"{len(open_)} open exchanges read, {acted} acted on"


def _order_statuses(client, exchanges: list[Exchange]) -> dict[int, int]:
    """orderId → status number for the exchanges' Ongoing orders; one read each for any the
    batch answer left out (a filter the server ignored must not hide a sent order)."""
    found: dict[int, int] = {}
    for batch in _batches(exchanges):
        wanted = {e.ongoing_order_id for e in batch}
        for order in client.find_orders([e.ongoing_order_number for e in batch]):
            info = order["orderInfo"]
            if info["orderId"] in wanted:
                found[info["orderId"]] = info["orderStatus"]["number"]
    for exchange in exchanges:
        if exchange.ongoing_order_id not in found:
            try:
                order = client.get_order(exchange.ongoing_order_id)
            except OngoingNotFound:  # deleted in Ongoing: one exchange must not stop the rest
                _warn_once(exchange.id, "the Ongoing order no longer exists")
                continue
            found[exchange.ongoing_order_id] = order["orderInfo"]["orderStatus"]["number"]
    return found


def _return_statuses(client, exchanges: list[Exchange]) -> dict[int, int]:
    """returnOrderId → status number for the parked exchanges' return orders."""
    found: dict[int, int] = {}
    for batch in _batches(exchanges):
        numbers = [f"{e.ongoing_order_number}-R" for e in batch]
        for ret in client.find_return_orders(return_order_numbers=numbers):
            info = ret["returnOrderInfo"]
            found[info["returnOrderId"]] = info["returnOrderStatus"]["number"]
    return found


def _warn_once(exchange_id: int, warning: str) -> None:
    """A timeline warning the merchant sees once, not every 5 minutes."""
    with db.session() as s:
        seen = s.exec(select(ExchangeEvent.id).where(
            ExchangeEvent.exchange_id == exchange_id, ExchangeEvent.kind == "warning",
            ExchangeEvent.name == "reconciliation", ExchangeEvent.outcome == warning)).first()
    if seen is None:
        note(exchange_id, "reconciliation", warning, kind="warning")


def _batches(items: list) -> list[list]:
    return [items[i:i + BATCH] for i in range(0, len(items), BATCH)]


def _reconcile(exchange: Exchange, settings, orders: dict[int, int],
               returns: dict[int, int]) -> bool:
    source = "reconciliation"
    if exchange.state == NEEDS_ATTENTION:  # an outage outlasted RQ's retries: try again now
        if exchange.updated_at < utcnow() - OUTAGE_RETRY:
            signal(exchange.id, RETRY, shop=exchange.shop_domain,
                   source="reconciliation: retry after an outage")
            return True
        return False
    if exchange.state == DETECTED or exchange.ongoing_order_id is None:
        if exchange.state == DETECTED and exchange.updated_at < utcnow() - STUCK_CREATE:
            signal(exchange.id, CREATE, shop=exchange.shop_domain, source=source)
            return True
        return False
    if exchange.ongoing_order_id not in orders:
        return False
    event = event_for(settings, EXCHANGE_ORDER, orders[exchange.ongoing_order_id])
    if event is None and exchange.state == PARKED:  # not sent yet: did the parcel come back?
        returned = returns.get(exchange.ongoing_return_order_id or 0)
        event = event_for(settings, RETURN_ORDER, returned)
        if event is not None:
            mark_once(exchange.id, "returned_in_ongoing_at")
    if event is None:
        return False
    signal(exchange.id, event, shop=exchange.shop_domain, source=source)
    return True
