"""The exchange lifecycle: the one table of states and events, and the job that applies them.

    detected -create-> parked -release-> released -shipped-> fulfilled -collect-> completed
    detected/parked/released --cancel--> cancelled
    detected/parked/released --return_updated (amend)--> the same state
    detected/parked/released --exchange_removed (withdraw)--> cancelled
    any open state --(a step fails for good)--> needs_attention --retry--> the state it left

Every event goes through `advance`, under a per-exchange lock: it re-reads the exchange, looks the
(state, event) pair up in TRANSITIONS, and either runs the step or records the event as ignored
(a late duplicate, an out-of-order status). Steps are safe to run twice.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import LockError, RedisError
from rq import Retry, get_current_job
from rq.timeouts import JobTimeoutException

import logs
from clients.shopify_errors import ShopifyRefusal
from jobs import metrics
from jobs.queue import DEFAULT_TIMEOUT, enqueue, job_id, jobs
from models import db
from models.exchange import Exchange, record
from models.exchange_signal import MAX_ATTEMPTS, ExchangeSignal, waiting_signal
from models.settings import settings_of
from models.types import utcnow

log = logging.getLogger(__name__)
OPEN_STATES = ("detected", "parked", "released", "fulfilled")
# (state, event) -> (step name, state after the step succeeds)
TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("detected", "create"): ("create", "parked"),
    ("parked", "release"): ("release", "released"),
    ("parked", "shipped"): ("ship", "fulfilled"),  # Sent before release: the parcel left
    ("released", "shipped"): ("ship", "fulfilled"),
    ("fulfilled", "collect"): ("collect", "completed"),
    ("detected", "cancel"): ("cancel", "cancelled"),
    ("parked", "cancel"): ("cancel", "cancelled"),
    ("released", "cancel"): ("cancel", "cancelled"),
    ("needs_attention", "cancel"): ("cancel", "cancelled"),  # e.g. out of stock: give up
    # The merchant edited the return (returns/update): the Ongoing order follows it in place...
    ("detected", "return_updated"): ("amend", "detected"),
    ("parked", "return_updated"): ("amend", "parked"),
    ("released", "return_updated"): ("amend", "released"),
    ("needs_attention", "return_updated"): ("amend", "needs_attention"),
    # ... and when amend finds no exchange item left, the exchange is withdrawn.
    ("detected", "exchange_removed"): ("withdraw", "cancelled"),
    ("parked", "exchange_removed"): ("withdraw", "cancelled"),
    ("released", "exchange_removed"): ("withdraw", "cancelled"),
    ("needs_attention", "exchange_removed"): ("withdraw", "cancelled"),
}
# What runs next by itself once a step has moved the exchange.
FOLLOW_UP = {"parked": "release_if_requested", "fulfilled": "collect"}
# A job's lease is its timeout + 60 s: a worker killed mid-step leaves the lock to expire with it.
LOCK_SECONDS = DEFAULT_TIMEOUT + 60
STEP_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])


class NeedsAttention(Exception):
    """A step cannot go on without a person: the message is shown on the exchange."""


def steps() -> dict[str, Callable[[Exchange], str]]:
    """Step name -> function(exchange) -> outcome text (imported late: steps import clients)."""
    from jobs import exchange_steps

    return exchange_steps.STEPS


def signal(exchange_id: int, event: str, *, shop: str = "", source: str = "") -> bool:
    """Queue `event` for an exchange (from a webhook, the poll, a button or a follow-up).

    The event is written to the database first, so a job Redis loses is queued again by the
    sweeper; with Redis down the signal waits there. False when it could not be queued yet.
    The same event still waiting, untouched, for this exchange stands for this one too (a
    warehouse repeating its Sent notice queues one job, not ten)."""
    with db.session() as s:
        if waiting_signal(exchange_id, event, session=s) is not None:
            return True
        row = ExchangeSignal(exchange_id=exchange_id, event=event, source=source[:255])
        s.add(row)
        s.flush()
        signal_id = row.id
    try:
        enqueue_signal(signal_id, exchange_id, event, source, shop=shop)
    except RedisError as exc:
        log.warning("queue unreachable, signal left for the sweeper: %s", type(exc).__name__,
                    extra={"exchange_id": exchange_id})
        return False
    return True


def signal_job_id(signal_id: int, exchange_id: int, event: str) -> str:
    return job_id("exchange", exchange_id, event, signal_id)


def enqueue_signal(signal_id: int, exchange_id: int, event: str, source: str, *, shop: str = ""):
    """Queue the job of a recorded signal (None when its job is already there)."""
    return enqueue(advance, exchange_id, event, source, signal_id, shop=shop, retry=STEP_RETRY,
                   job_id=signal_job_id(signal_id, exchange_id, event))


@metrics.counts_job
def advance(exchange_id: int, event: str, source: str = "", signal_id: int | None = None) -> str:
    """Apply one event to one exchange: run its step and move its state, or record it ignored.

    With `signal_id`, the recorded signal is applied once: marked done when the event has been
    applied, ignored or has put the exchange in needs_attention; a retriable failure leaves it
    pending for RQ's retry (or the sweeper, should Redis lose that retry)."""
    lock = jobs().connection.lock(f"swapline:exchange:{exchange_id}", timeout=LOCK_SECONDS,
                                  blocking_timeout=LOCK_SECONDS)
    if not lock.acquire():
        raise TimeoutError(f"exchange {exchange_id} stayed locked; RQ retries this event")
    try:
        attempts = _take_signal(signal_id) if signal_id is not None else 1
        if attempts is None:
            return "signal already applied"
        with db.session() as s:
            exchange = s.get(Exchange, exchange_id)
            if exchange is None:
                return "exchange gone"
        with logs.context(shop=exchange.shop_domain, exchange_id=exchange_id):
            if attempts > MAX_ATTEMPTS:  # every run died before it could finish: a person looks
                outcome = _give_up(exchange, event, source)
            else:
                outcome = _apply(exchange, event, source)
        if signal_id is not None:
            _signal_done(signal_id)
        return outcome
    finally:
        try:
            lock.release()
        except LockError:  # expired during a very slow step; the step's own checks still hold
            log.warning("exchange lock expired before release", extra={"exchange_id": exchange_id})


def _apply(exchange: Exchange, event: str, source: str, *, may_raise: bool = True) -> str:
    """`may_raise=False` (a Retry applying the failed event): a retriable failure parks the
    exchange as transient instead of leaving it to an RQ retry of the "retry" job, which would
    find the exchange already resumed and drop the event."""
    if event == "retry":
        return _retry(exchange, source)
    if event == "in_transit":  # the return parcel is on its way: a release with Instant Exchange
        if not settings_of(exchange.shop_domain).instant_exchange:
            _note(exchange.id, "ignored", "in transit", "Instant Exchange is off", source)
            return "ignored: Instant Exchange is off"
        event = "release"
    if event == "release" and _before_parked(exchange):  # e.g. close before create finished
        _keep_release(exchange.id, source)
        return "release kept until the Ongoing order exists"
    if event == "release_if_requested":
        if not exchange.release_reason:
            return "no release requested yet"
        event, source = "release", exchange.release_reason
    if exchange.state == "needs_attention" and not _allowed_in_attention(exchange, event):
        _note(exchange.id, "ignored", event, "not applicable after this failure", source)
        return "ignored in needs_attention"
    if exchange.state == "needs_attention" and event == "shipped":
        _resume(exchange, "shipped: the parcel left")  # a missed Sent must not strand it
    found = TRANSITIONS.get((exchange.state, event))
    if found is None:
        _note(exchange.id, "ignored", event, f"not applicable in state {exchange.state}", source)
        return f"ignored in {exchange.state}"
    step, after = found
    try:
        outcome = steps()[step](exchange)
    except (NeedsAttention, ShopifyRefusal) as exc:  # a Shopify refusal is written for a person
        return _attention(exchange, step, event, str(exc))
    except Exception as exc:
        transient = getattr(exc, "retriable", False) or isinstance(exc, JobTimeoutException)
        if transient and may_raise and _retries_left():
            _note(exchange.id, "error", step, logs.scrub(f"will retry: {exc}"), source)
            raise
        return _attention(exchange, step, event, logs.scrub(str(exc)), transient=transient)
    _move(exchange.id, exchange.state, after, f"{step}: {outcome}", source)
    follow_up = FOLLOW_UP.get(after) if after != exchange.state else None
    if follow_up:
        signal(exchange.id, follow_up, shop=exchange.shop_domain, source=f"after {step}")
    return outcome


def _give_up(exchange: Exchange, event: str, source: str) -> str:
    reason = f"Swapline could not apply {event!r} after {MAX_ATTEMPTS} attempts; see the timeline"
    if exchange.state in ("completed", "cancelled"):
        _note(exchange.id, "ignored", event, reason, source)
        return f"ignored: {reason}"
    return _attention(exchange, event, event, reason)


def _take_signal(signal_id: int) -> int | None:
    """Count an attempt at a recorded signal: the attempts so far, or None when it was applied
    already (or is gone)."""
    with db.session() as s:
        row = s.get(ExchangeSignal, signal_id)
        if row is None or row.done_at is not None:
            return None
        row.attempts += 1
        return row.attempts


def _signal_done(signal_id: int) -> None:
    with db.session() as s:
        row = s.get(ExchangeSignal, signal_id)
        if row is not None:
            row.done_at = utcnow()


def _failed(exchange: Exchange) -> tuple[str, str]:
    """(state it left, event that failed) of an exchange in needs_attention."""
    state, _, event = (exchange.attention_step or ":").partition(":")
    return state, event


def _before_parked(exchange: Exchange) -> bool:
    return exchange.state == "detected" or \
        (exchange.state == "needs_attention" and _failed(exchange)[0] == "detected")


def _allowed_in_attention(exchange: Exchange, event: str) -> bool:
    """Cancel or edit only before the parcel left; Sent only where it can still be fulfilled."""
    state, failed = _failed(exchange)
    if event in ("cancel", "return_updated", "exchange_removed"):
        return state in ("detected", "parked", "released") and failed not in ("shipped", "collect")
    return event == "shipped" and state in ("parked", "released")


def _resume(exchange: Exchange, why: str) -> None:
    """Leave needs_attention for the state the exchange was in."""
    state, _ = _failed(exchange)
    with db.session() as s:
        row = s.get(Exchange, exchange.id)
        row.state, row.attention_reason, row.attention_step = state, None, None
        row.attention_transient = False
        record(row.id, "transition", f"needs_attention → {state}", why, session=s)
    exchange.state, exchange.attention_step = state, None


def _keep_release(exchange_id: int, source: str) -> None:
    with db.session() as s:
        row = s.get(Exchange, exchange_id)
        row.release_reason = row.release_reason or source or "release"
        record(exchange_id, "ignored", "release", "kept until the Ongoing order exists",
               session=s, source=source)


def _retries_left() -> bool:
    job = get_current_job()
    return bool(job and job.retries_left)


def _move(exchange_id: int, before: str, after: str, outcome: str, source: str) -> None:
    with db.session() as s:
        exchange = s.get(Exchange, exchange_id)
        exchange.state, exchange.updated_at = after, utcnow()
        if after == "completed":
            exchange.completed_at = utcnow()
        record(exchange_id, "transition", f"{before} → {after}", outcome, session=s,
               source=source)


def _note(exchange_id: int, kind: str, name: str, outcome: str, source: str = "") -> None:
    with db.session() as s:
        record(exchange_id, kind, name, outcome, session=s, source=source)


def _attention(exchange: Exchange, step: str, event: str, reason: str, *,
               transient: bool = False) -> str:
    """Park the exchange in needs_attention with a readable reason; Retry re-sends `event`.

    `transient`: an outage outlasted the retries; reconciliation retries it by itself later."""
    with db.session() as s:
        row = s.get(Exchange, exchange.id)
        record(row.id, "transition", f"{row.state} → needs_attention", reason, session=s,
               step=step)
        if row.state != "needs_attention":  # a failed cancel keeps the first failure's Retry
            row.attention_step = f"{row.state}:{event}"
        row.attention_reason, row.state, row.updated_at = reason, "needs_attention", utcnow()
        row.attention_transient = transient
    log.warning("exchange needs attention at %s: %s", step, reason)
    return f"needs attention: {reason}"


def _retry(exchange: Exchange, source: str) -> str:
    """Back to the state it left, and the event that failed goes again."""
    if exchange.state != "needs_attention" or not exchange.attention_step:
        _note(exchange.id, "ignored", "retry", f"not applicable in state {exchange.state}", source)
        return "nothing to retry"
    _, event = _failed(exchange)
    _resume(exchange, f"retry ({source or 'retry'})")
    return _apply(exchange, event, source or "retry", may_raise=False)
