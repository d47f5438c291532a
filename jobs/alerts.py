"""When an exchange alerts: the conditions, opening and resolving alerts, and the periodic tick.

An alert opens once per exchange and condition (the database refuses a second open one) and
resolves when its condition no longer holds; a later one may open again. Needs attention is
checked at once (the lifecycle queues `check_exchange`); the stalled conditions, and what a
lost job missed, by the tick every TICK_SECONDS. Opening writes the alert, its message rows and
a timeline line in one transaction; jobs/alert_send.py sends the messages.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from clients.ongoing import OngoingError
from clients.ongoing_accounts import client_for_shop
from jobs import alert_send
from jobs.exchange_rules import (
    CANCELLED,
    FINAL_STATES,
    FULFILLED,
    NEEDS_ATTENTION,
    PARKED,
    RELEASE,
    RELEASED,
)
from jobs.ongoing_events import ORIGINAL_ORDER, RETURN_ORDER, event_for
from jobs.queue import enqueue, job_id
from models import db
from models.alert import (
    DOUBLE_SHIPMENT,
    DOUBLE_SHIPMENT_PREFIX,
    MAIL,
    RESOLVED_EVENT,
    STALL_THRESHOLDS,
    STALLED_NOT_RETURNED,
    STALLED_PARKED,
    STALLED_RELEASED,
    STALLED_UNCOLLECTED,
    WEBHOOK,
    Alert,
    AlertMessage,
    label,
    open_alerts,
    opened_event,
)
from models.alert import (
    NEEDS_ATTENTION as ATTENTION,
)
from models.exchange import Exchange, record
from models.exchange_writes import mark_once
from models.settings import ShopSettings, settings_of
from models.types import utcnow

log = logging.getLogger(__name__)
TICK_SECONDS = 300


def _days(settings: ShopSettings, condition: str) -> timedelta:
    return timedelta(days=getattr(settings, STALL_THRESHOLDS[condition]))


def conditions(exchange: Exchange, settings: ShopSettings,
               now: datetime) -> dict[str, tuple[str, datetime]]:
    """condition -> (reason, since when) for each alert condition the exchange is in now."""
    found: dict[str, tuple[str, datetime]] = {}
    reason = exchange.attention_reason or "Swapline needs a person to look at this exchange."
    if exchange.state == NEEDS_ATTENTION:
        if reason.startswith(DOUBLE_SHIPMENT_PREFIX):
            found[DOUBLE_SHIPMENT] = (reason, exchange.updated_at)
        else:  # an outage too: it has outlasted about 40 minutes of retries by then
            found[ATTENTION] = (reason, exchange.updated_at)
    stalled = {
        STALLED_PARKED: (exchange.state == PARKED, exchange.updated_at,
                         "Parked: nothing heard of the customer's return since {since}."),
        STALLED_RELEASED: (exchange.state == RELEASED, exchange.released_at,
                           "Released to the warehouse on {since} and not Sent yet."),
        STALLED_UNCOLLECTED: (exchange.state == FULFILLED, exchange.fulfilled_at,
                              "Fulfilled on {since}; the price difference of {balance} is not "
                              "collected yet."),
        STALLED_NOT_RETURNED: (exchange.state != CANCELLED
                               and exchange.returned_in_ongoing_at is None
                               and bool(exchange.ongoing_return_order_id
                                        or settings.order_status_returned),
                               exchange.return_closed_at,
                               "The return closed on {since}, but the warehouse has not booked "
                               "it in: Ongoing does not show the original order or the return "
                               "order as Returned."),
    }
    for condition, (holds, since, text) in stalled.items():
        if holds and since is not None and since < now - _days(settings, condition):
            balance = f"{exchange.balance} {exchange.currency or ''}".strip()
            found[condition] = (text.format(since=since.strftime("%Y-%m-%d"),
                                            balance=balance), since)
    return found


def check_exchange(exchange_id: int) -> str:
    """Open the alerts an exchange is in, resolve those it left (a job; also run by the tick)."""
    with db.session() as s:
        exchange = s.get(Exchange, exchange_id)
    if exchange is None:
        return "exchange gone"
    return _check(exchange, settings_of(exchange.shop_domain), utcnow())


def queue_check(exchange_id: int, shop: str = "") -> None:
    """Ask for `check_exchange` soon (the lifecycle's hook); with Redis away the tick does it."""
    try:
        enqueue(check_exchange, exchange_id, job_id=job_id("alert-check", exchange_id,
                                                           int(time.time())), shop=shop)
    except RedisError as exc:
        log.warning("queue unreachable, alert check left for the tick: %s", type(exc).__name__)


def _check(exchange: Exchange, settings: ShopSettings, now: datetime) -> str:
    wanted = conditions(exchange, settings, now)
    with db.session() as s:
        current = {a.condition: a for a in open_alerts(exchange.id, session=s)}
    opened = [c for c, (reason, since) in wanted.items()
              if c not in current and _open(exchange, settings, c, reason, since)]
    resolved = [c for c, alert in current.items()
                if c not in wanted and _resolve(alert, exchange, settings)]
    return f"opened {opened or 'none'}, resolved {resolved or 'none'}"


def _add_messages(alert: Alert, event: str, settings: ShopSettings, *, session) -> list[int]:
    """Write one message row per configured channel; their ids. Without SWAPLINE_SMTP_URL no
    mail row is written, and the timeline says so."""
    channels = [WEBHOOK] if settings.alert_webhook_url else []
    if settings.alert_emails and current_app.config["SETTINGS"].smtp_url:
        channels.append(MAIL)
    elif settings.alert_emails:
        record(alert.exchange_id, "alert", "alert mail", alert_send.NO_SMTP, session=session)
    rows = [AlertMessage(alert_id=alert.id, shop_domain=alert.shop_domain, channel=channel,
                         event=event) for channel in channels]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def _open(exchange: Exchange, settings: ShopSettings, condition: str, reason: str,
          since: datetime) -> bool:
    try:
        with db.session() as s:
            alert = Alert(shop_domain=exchange.shop_domain, exchange_id=exchange.id,
                          condition=condition, reason=reason, since=since)
            s.add(alert)
            s.flush()
            record(exchange.id, "alert", f"alert: {label(condition)}", reason, session=s)
            ids = _add_messages(alert, opened_event(condition), settings, session=s)
    except IntegrityError:  # another check opened it meanwhile
        return False
    for message_id in ids:
        alert_send.queue(message_id, shop=exchange.shop_domain)
    return True


def _resolve(alert: Alert, exchange: Exchange, settings: ShopSettings) -> bool:
    with db.session() as s:
        done = s.execute(update(Alert).where(Alert.id == alert.id, Alert.resolved_at.is_(None))
                         .values(resolved_at=utcnow()))
        if done.rowcount != 1:
            return False
        record(exchange.id, "alert", f"alert resolved: {label(alert.condition)}",
               f"now {exchange.state}", session=s)
        ids = _add_messages(alert, RESOLVED_EVENT, settings, session=s) \
            if settings.alert_resolved else []
    for message_id in ids:
        alert_send.queue(message_id, shop=exchange.shop_domain)
    return True


def _ask_ongoing_if_booked_in(exchanges: list[Exchange], settings: ShopSettings,
                              now: datetime) -> list[Exchange]:
    """Before "return not booked in" opens (or stays open), ask Ongoing: its webhooks do not
    tell about the orders of a finished exchange. One booked in since is marked and kept out of
    the alert; one Ongoing cannot answer about now is left out of this scan."""
    keep, client = [], None
    for exchange in exchanges:
        if STALLED_NOT_RETURNED not in conditions(exchange, settings, now):
            keep.append(exchange)
            continue
        try:
            client = client or client_for_shop(settings)
            booked = _returned_in_ongoing(client, exchange, settings)
        except OngoingError as exc:
            log.warning("Ongoing not asked about a return: %s", exc,
                        extra={"exchange_id": exchange.id})
            continue
        if booked:
            mark_once(exchange.id, "returned_in_ongoing_at")
            exchange.returned_in_ongoing_at = now
        keep.append(exchange)
    return keep


def _returned_in_ongoing(client, exchange: Exchange, settings: ShopSettings) -> bool:
    """Whether Ongoing shows the return order, or the original order, at Returned now."""
    if exchange.ongoing_return_order_id:
        info = client.get_return_order(exchange.ongoing_return_order_id)["returnOrderInfo"]
        if event_for(settings, RETURN_ORDER, info["returnOrderStatus"]["number"]) == RELEASE:
            return True
    if settings.order_status_returned:
        order = client.find_order_by_number(exchange.order_name.lstrip("#"))
        status = order["orderInfo"]["orderStatus"]["number"] if order else None
        return event_for(settings, ORIGINAL_ORDER, status) == RELEASE
    return False


def tick() -> str:
    """The periodic job: queue each shop's scan, and the alert messages whose job is gone."""
    with db.session() as s:
        shops = set(s.exec(select(Exchange.shop_domain).where(
            or_(Exchange.state.not_in(FINAL_STATES),
                and_(Exchange.return_closed_at.is_not(None),
                     Exchange.returned_in_ongoing_at.is_(None)))).distinct()).all())
        shops |= set(s.exec(select(Alert.shop_domain).where(Alert.resolved_at.is_(None))
                            .distinct()).all())
    bucket = int(time.time()) // TICK_SECONDS
    for domain in sorted(shops):
        enqueue(scan_shop, domain, job_id=job_id("alert-scan", domain, bucket), shop=domain)
    requeued = alert_send.requeue_due()
    return f"{len(shops)} shops to scan, {requeued} messages queued again"


def scan_shop(domain: str, now: datetime | None = None) -> str:
    """Open and resolve the alerts of a shop's exchanges (each condition read in SQL first)."""
    settings, now = settings_of(domain), now or utcnow()
    days = {condition: now - _days(settings, condition) for condition in STALL_THRESHOLDS}
    maybe = or_(
        Exchange.state == NEEDS_ATTENTION,
        and_(Exchange.state == PARKED, Exchange.updated_at < days[STALLED_PARKED]),
        and_(Exchange.state == RELEASED, Exchange.released_at < days[STALLED_RELEASED]),
        and_(Exchange.state == FULFILLED, Exchange.fulfilled_at < days[STALLED_UNCOLLECTED]),
        and_(Exchange.state != CANCELLED, Exchange.returned_in_ongoing_at.is_(None),
             Exchange.return_closed_at < days[STALLED_NOT_RETURNED]),
        Exchange.id.in_(select(Alert.exchange_id).where(Alert.shop_domain == domain,
                                                        Alert.resolved_at.is_(None))))
    with db.session() as s:
        exchanges = s.exec(select(Exchange).where(Exchange.shop_domain == domain, maybe)
                           .order_by(Exchange.id)).all()
    exchanges = _ask_ongoing_if_booked_in(exchanges, settings, now)
    results = [_check(exchange, settings, now) for exchange in exchanges]
    changed = sum(r != "opened none, resolved none" for r in results)
    return f"{len(exchanges)} exchanges checked, {changed} changed"
