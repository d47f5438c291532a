"""Reconciliation: read Ongoing for every open exchange and act on changes no webhook reported;
retry exchanges an outage stopped once it has had time to clear."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import and_, or_
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
OUTAGE_RETRY = timedelta(minutes=10)  # since the last failure
log = logging.getLogger(__name__)


def _watched():
    """Open exchanges the warehouse may move, and those stopped by an outage."""
    return or_(Exchange.state.in_(("detected", "parked", "released")),
               and_(Exchange.state == "needs_attention", Exchange.attention_transient))


def reconcile_all() -> int:
    """Queue one reconciliation per shop with open exchanges (once per period)."""
    with db.session() as s:
        shops = s.exec(select(Exchange.shop_domain).where(_watched()).distinct()).all()
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
            open_ = s.exec(select(Exchange).where(Exchange.shop_domain == domain,
                                                  _watched())).all()
        acted = sum(_reconcile(exchange, settings, client) for exchange in open_)
    return f"{len(open_)} open exchanges read, {acted} acted on"


def _reconcile(exchange: Exchange, settings, client) -> bool:
    source = "reconciliation"
    if exchange.state == "needs_attention":  # an outage outlasted RQ's retries: try again now
        if exchange.updated_at < utcnow() - OUTAGE_RETRY:
            signal(exchange.id, "retry", shop=exchange.shop_domain,
                   source="reconciliation: retry after an outage")
            return True
        return False
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
