"""Reconciliation: read Ongoing for every open exchange and act on changes no webhook reported."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlmodel import select

import logs
from clients.ongoing_accounts import client_for_shop
from jobs.exchange_steps import shipped_status
from jobs.lifecycle import signal
from jobs.queue import enqueue, job_id
from models import db
from models.exchange import Exchange
from models.settings import settings_of
from models.types import utcnow

PERIOD_SECONDS = 300
STUCK_CREATE = timedelta(minutes=2)
log = logging.getLogger(__name__)


def reconcile_all() -> int:
    """Queue one reconciliation per shop with open exchanges (once per period)."""
    with db.session() as s:
        shops = s.exec(select(Exchange.shop_domain).where(
            Exchange.state.in_(("detected", "parked", "released"))).distinct()).all()
    bucket = int(time.time()) // PERIOD_SECONDS
    for domain in shops:
        enqueue(reconcile_shop, domain, job_id=job_id("reconcile", domain, bucket), shop=domain)
    return len(shops)


def reconcile_shop(domain: str) -> str:
    """For each open exchange of a shop, the Ongoing state decides: shipped, returned, stuck."""
    with logs.context(shop=domain):
        settings = settings_of(domain)
        client = client_for_shop(settings)  # its calls run one at a time for the goods owner
        with db.session() as s:
            open_ = s.exec(select(Exchange).where(Exchange.shop_domain == domain, Exchange.state
                                                  .in_(("detected", "parked", "released")))).all()
        acted = sum(_reconcile(exchange, settings, client) for exchange in open_)
    return f"{len(open_)} open exchanges read, {acted} acted on"


def _reconcile(exchange: Exchange, settings, client) -> bool:
    source = "reconciliation"
    if exchange.state == "detected" or exchange.ongoing_order_id is None:
        if exchange.state == "detected" and exchange.updated_at < utcnow() - STUCK_CREATE:
            signal(exchange.id, "create", shop=exchange.shop_domain, source=source)
            return True
        return False
    status = client.get_order(exchange.ongoing_order_id)["orderInfo"]["orderStatus"]["number"]
    if shipped_status(settings, status):
        signal(exchange.id, "shipped", shop=exchange.shop_domain, source=source)
        return True
    if exchange.state == "parked" and exchange.ongoing_return_order_id:
        info = client.get_return_order(exchange.ongoing_return_order_id)["returnOrderInfo"]
        if info["returnOrderStatus"]["number"] == settings.return_status_returned:
            signal(exchange.id, "release", shop=exchange.shop_domain, source=source)
            return True
    return False
