"""Sending alert messages: one job per message row (mail or webhook), digests, retries, and the
Settings page's test alert.

The AlertMessage row is written before any job; a job only sends it and marks it sent. A mail
server or webhook that is down puts the next try on the row (BACKOFF) and schedules it; the
periodic tick (jobs/alerts.py) queues again any row whose job Redis lost. Each send or failure is
a line on the exchange's timeline. More than DIGEST_AFTER mails to a shop within an hour are held
and go out together, as one digest mail, DIGEST_WAIT later.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func
from sqlmodel import select

from clients.alert_webhook import WebhookError, post_alert
from clients.mailer import Mailer, MailError
from jobs.alert_text import (
    digest_mail,
    exchange_link,
    single_mail,
    trial_mail,
    trial_payload,
    webhook_payload,
)
from jobs.queue import enqueue, forget_ended_job, job_id, jobs
from models import db
from models.alert import MAIL, Alert, AlertMessage
from models.alert_form import url_problem
from models.exchange import Exchange, record
from models.settings import settings_of
from models.types import utcnow

log = logging.getLogger(__name__)
BACKOFF = (30, 120, 600, 1800, 3600)  # seconds before try 2, 3, ...; then hourly until 2xx
DIGEST_AFTER, DIGEST_WINDOW, DIGEST_WAIT = 3, timedelta(hours=1), 600
NO_SMTP = "SWAPLINE_SMTP_URL is not set: Swapline sends no mail"


def mailer() -> Mailer | None:
    """The app's mailer, or None without SWAPLINE_SMTP_URL."""
    settings = current_app.config["SETTINGS"]
    return Mailer(settings.smtp_url, settings.mail_from) if settings.smtp_url else None


def backoff(attempts: int) -> int:
    return BACKOFF[min(attempts, len(BACKOFF)) - 1] if attempts else 0



def queue(message_id: int, attempts: int = 0, *, shop: str = "", delay: int = 0) -> bool:
    """Queue the job of a recorded message; False when Redis is away (the tick queues it)."""
    try:
        enqueue(send_message, message_id, job_id=job_id("alert-message", message_id, attempts),
                shop=shop, delay=delay)
    except RedisError as exc:
        log.warning("queue unreachable, alert message left for the tick: %s",
                    type(exc).__name__, extra={"shop": shop})
        return False
    return True


def _load(message_id: int):
    with db.session() as s:
        found = s.exec(select(AlertMessage, Alert, Exchange)
                       .join(Alert, Alert.id == AlertMessage.alert_id)
                       .join(Exchange, Exchange.id == Alert.exchange_id)
                       .where(AlertMessage.id == message_id)).first()
    return found


def send_message(message_id: int) -> str:
    """Send one alert message on its channel (a mail may be held for the shop's digest)."""
    found = _load(message_id)
    if found is None:
        return "message gone"
    message, alert, exchange = found
    if message.sent_at is not None or message.digest:
        return "already sent or held for the digest"
    if message.channel == MAIL:
        return _mail_one(message, alert, exchange)
    return _webhook(message, alert, exchange)


def _mail_one(message: AlertMessage, alert: Alert, exchange: Exchange) -> str:
    settings = settings_of(exchange.shop_domain)
    lock = jobs().lock(f"swapline:alert-mail:{exchange.shop_domain}", timeout=120,
                       blocking_timeout=120)
    if not lock.acquire():
        raise TimeoutError("the shop's alert mail lock stayed taken; RQ retries")
    try:
        if _mails_sent_lately(exchange.shop_domain) >= DIGEST_AFTER:
            return _hold(message, exchange)
        sender = mailer()
        if not settings.alert_emails:
            return _skipped([message], "no alert address is set any more")
        if sender is None:
            return _failed([message], NO_SMTP)
        subject, text, html = single_mail(message.event, alert, exchange)
        try:
            sender.send(settings.alert_emails, subject, text, html)
        except MailError as exc:
            return _failed([message], str(exc))
        _sent([message], f"mailed to {', '.join(settings.alert_emails)}")
        return "mailed"
    finally:
        lock.release()


def _mails_sent_lately(domain: str) -> int:
    """Mails the shop got within the hour (a digest counts once)."""
    since = utcnow() - DIGEST_WINDOW
    with db.session() as s:
        single = s.exec(select(func.count()).select_from(AlertMessage).where(
            AlertMessage.shop_domain == domain, AlertMessage.channel == MAIL,
            AlertMessage.sent_at >= since, AlertMessage.digest.is_(False))).one()
        digests = s.exec(select(func.count(func.distinct(AlertMessage.sent_at))).where(
            AlertMessage.shop_domain == domain, AlertMessage.channel == MAIL,
            AlertMessage.sent_at >= since, AlertMessage.digest.is_(True))).one()
    return single + digests


def _hold(message: AlertMessage, exchange: Exchange) -> str:
    """Keep the mail for the shop's next digest, and make sure that digest is scheduled."""
    due = utcnow() + timedelta(seconds=DIGEST_WAIT)
    with db.session() as s:
        row = s.get(AlertMessage, message.id)
        row.digest, row.next_attempt_at = True, row.next_attempt_at or due
        record(exchange.id, "alert", "alert mail", "held for the digest mail", session=s)
    queue_digest(exchange.shop_domain, delay=DIGEST_WAIT)
    return "held for the digest"


def queue_digest(domain: str, *, delay: int = 0) -> bool:
    bucket = (int(utcnow().timestamp()) + delay) // DIGEST_WAIT
    try:
        enqueue(send_digest, domain, job_id=job_id("alert-digest", domain, bucket), shop=domain,
                delay=delay)
    except RedisError:
        return False
    return True


def send_digest(domain: str) -> str:
    """One mail with every alert held for the shop's digest."""
    with db.session() as s:
        rows = s.exec(select(AlertMessage, Alert, Exchange)
                      .join(Alert, Alert.id == AlertMessage.alert_id)
                      .join(Exchange, Exchange.id == Alert.exchange_id)
                      .where(AlertMessage.shop_domain == domain, AlertMessage.channel == MAIL,
                             AlertMessage.digest.is_(True), AlertMessage.sent_at.is_(None))
                      .order_by(AlertMessage.id)).all()
    if not rows:
        return "nothing held"
    messages = [m for m, _, _ in rows]
    settings, sender = settings_of(domain), mailer()
    if not settings.alert_emails:
        return _skipped(messages, "no alert address is set any more")
    if sender is None:
        return _failed(messages, NO_SMTP, digest=domain)
    subject, text, html = digest_mail(domain, [(m.event, a, e) for m, a, e in rows])
    try:
        sender.send(settings.alert_emails, subject, text, html)
    except MailError as exc:
        return _failed(messages, str(exc), digest=domain)
    _sent(messages, f"mailed in a digest of {len(rows)} to {', '.join(settings.alert_emails)}")
    return f"digest of {len(rows)} mailed"


def _webhook(message: AlertMessage, alert: Alert, exchange: Exchange) -> str:
    settings = settings_of(exchange.shop_domain)
    url, secret = settings.alert_webhook_url, settings.events_secret()
    if not url:
        return _skipped([message], "no alert webhook URL is set any more")
    # Asked again now: the name may resolve elsewhere than when it was saved.
    problem = url_problem(url, allow_local=current_app.config["SETTINGS"].allow_local_urls)
    if problem or not secret:
        return _failed([message], problem or "set the events secret (Settings) to sign alerts")
    try:
        status = post_alert(url, webhook_payload(message.event, alert, exchange), secret)
    except WebhookError as exc:
        return _failed([message], f"alert webhook {exc}")
    _sent([message], f"webhook answered HTTP {status}")
    return "posted"


def _skipped(messages: list[AlertMessage], why: str) -> str:
    """The channel was removed since the alert opened: the message is closed unsent."""
    _sent(messages, f"not sent: {why}", error=why)
    return f"not sent: {why}"


def _sent(messages: list[AlertMessage], outcome: str, *, error: str | None = None) -> None:
    """Close the messages (sent, or `error`: given up) with a timeline line each."""
    at = utcnow()
    with db.session() as s:
        for message in messages:
            row = s.get(AlertMessage, message.id)
            row.sent_at, row.attempts, row.last_error = at, row.attempts + 1, error
        alerts = {a.id: a for a in s.exec(select(Alert).where(
            Alert.id.in_({m.alert_id for m in messages})))}
        for message in messages:
            exchange_id = alerts[message.alert_id].exchange_id
            record(exchange_id, "alert", f"alert {message.channel}", outcome, session=s,
                   event=message.event)
    log.info("alert %s", outcome, extra={"shop": messages[0].shop_domain})


def _failed(messages: list[AlertMessage], error: str, *, digest: str | None = None) -> str:
    """Note the failure on each row and timeline; the next try is scheduled by backoff."""
    attempts = 0
    with db.session() as s:
        for message in messages:
            row = s.get(AlertMessage, message.id)
            row.attempts += 1
            attempts = max(attempts, row.attempts)
            row.last_error = error[:1000]
            row.next_attempt_at = utcnow() + timedelta(seconds=backoff(row.attempts))
            exchange_id = s.get(Alert, row.alert_id).exchange_id
            record(exchange_id, "alert", f"alert {message.channel}",
                   f"failed: {error}; next try in {backoff(row.attempts)} s", session=s)
    log.warning("alert %s failed: %s", messages[0].channel, error,
                extra={"shop": messages[0].shop_domain})
    if digest:
        queue_digest(digest, delay=backoff(attempts))
    else:
        queue(messages[0].id, attempts, shop=messages[0].shop_domain, delay=backoff(attempts))
    return f"failed: {error}"


def requeue_due(limit: int = 500) -> int:
    """Queue again the unsent messages that are due (their job may have been lost)."""
    now = utcnow()
    with db.session() as s:
        rows = s.exec(select(AlertMessage).where(
            AlertMessage.sent_at.is_(None),
            func.coalesce(AlertMessage.next_attempt_at, AlertMessage.created_at)
            <= now - timedelta(seconds=30)).order_by(AlertMessage.id).limit(limit)).all()
    digests = {m.shop_domain for m in rows if m.digest}
    count = sum(queue_digest(domain) for domain in digests)
    for message in rows:
        if not message.digest:
            forget_ended_job(job_id("alert-message", message.id, message.attempts))
            count += queue(message.id, message.attempts, shop=message.shop_domain)
    return count


def send_test_alert(domain: str) -> dict[str, str]:
    """Send a test alert on each channel now: per channel "ok", or the exact failure."""
    settings, result = settings_of(domain), {}
    sender = mailer()
    if sender is None:
        result["mail"] = NO_SMTP
    elif not settings.alert_emails:
        result["mail"] = "no alert address is set"
    else:
        subject, text, html = trial_mail(domain)
        try:
            sender.send(settings.alert_emails, subject, text, html)
            result["mail"] = "ok"
        except MailError as exc:
            result["mail"] = str(exc)
    result["webhook"] = _test_webhook(domain, settings)
    return result


def _test_webhook(domain: str, settings) -> str:
    url, secret = settings.alert_webhook_url, settings.events_secret()
    if not url:
        return "no alert webhook URL is set"
    problem = url_problem(url, allow_local=current_app.config["SETTINGS"].allow_local_urls)
    if problem or not secret:
        return problem or "set the events secret (Settings) to sign alerts"
    try:
        post_alert(url, trial_payload(domain), secret)
    except WebhookError as exc:
        return f"alert webhook {exc}"
    return "ok"


__all__ = ["exchange_link", "queue", "requeue_due", "send_digest", "send_message",
           "send_test_alert"]
