"""The exchange lifecycle's runner: `signal` records and queues an event, `advance` applies it.

Every event goes through `advance`, under a per-exchange lock: it re-reads the exchange, asks
jobs/exchange_rules.py what the event means and which step it runs, and either runs the step and
moves the state or records the event as ignored (a late duplicate, an out-of-order status).
Steps are safe to run twice. The rules themselves (states, table, needs attention) live in
jobs/exchange_rules.py; this module only carries them out.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import LockError, RedisError
from rq import Retry, get_current_job
from rq.timeouts import JobTimeoutException

import logs
from clients.shopify_errors import ShopifyRefusal
from jobs import exchange_collect, exchange_fulfil, exchange_rules, exchange_steps, metrics
from jobs.exchange_rules import COMPLETED, NEEDS_ATTENTION, NeedsAttention, Then
from jobs.queue import DEFAULT_TIMEOUT, enqueue, job_id, jobs
from models import db
from models.exchange import Exchange, record
from models.exchange_signal import MAX_ATTEMPTS, ExchangeSignal, waiting_signal
from models.settings import settings_of
from models.types import utcnow

log = logging.getLogger(__name__)
# step name (exchange_rules.TRANSITIONS) -> function(exchange) -> outcome text, or Then
STEPS: dict[str, Callable[[Exchange], str | Then]] = {
    "create": exchange_steps.create, "release": exchange_steps.release,
    "fulfil": exchange_fulfil.fulfil, "collect": exchange_collect.collect,
    "cancel": exchange_steps.cancel, "amend": exchange_steps.amend,
    "withdraw": exchange_steps.withdraw}
# The exchange lock is renewed while its job runs (jobs/leases.py): a worker killed mid-step
# leaves it free within seconds. A live job may hold it to its timeout, and never past this.
LOCK_SECONDS = DEFAULT_TIMEOUT + 60
STEP_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])


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
    lock = jobs().lock(f"swapline:exchange:{exchange_id}", timeout=LOCK_SECONDS,
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
        except LockError:  # lost (Redis restarted empty, a stalled process); steps re-check
            log.warning("exchange lock expired before release", extra={"exchange_id": exchange_id})


def _apply(exchange: Exchange, event: str, source: str, *, may_raise: bool = True) -> str:
    """`may_raise=False` (a Retry applying the failed event): a retriable failure parks the
    exchange as transient instead of leaving it to an RQ retry of the "retry" job, which would
    find the exchange already resumed and drop the event."""
    if event == exchange_rules.RETRY:
        return _retry(exchange, source)
    # The shop's settings are read only for the one event they decide.
    instant = event == exchange_rules.IN_TRANSIT and \
        settings_of(exchange.shop_domain).instant_exchange
    meant = exchange_rules.meaning(exchange.state, exchange.attention_step, event, source,
                                   instant_exchange=instant,
                                   release_reason=exchange.release_reason)
    if meant.kept:  # e.g. close before create finished
        _keep_release(exchange.id, source)
        return "release kept until the Ongoing order exists"
    if meant.ignored:
        if meant.noted:
            _note(exchange.id, "ignored", event, meant.ignored, source)
        return f"ignored: {meant.ignored}"
    event, source = meant.event, meant.source
    if exchange_rules.resumes_on(exchange.state, event):
        _resume(exchange, f"{event}: the parcel left")  # a missed Sent must not strand it
    found = exchange_rules.transition(exchange.state, event)
    if found is None:
        _note(exchange.id, "ignored", event, f"not applicable in state {exchange.state}", source)
        return f"ignored in {exchange.state}"
    step, after = found
    try:
        outcome = STEPS[step](exchange)
    except (NeedsAttention, ShopifyRefusal) as exc:  # a Shopify refusal is written for a person
        return _attention(exchange, step, event, str(exc))
    except Exception as exc:
        transient = getattr(exc, "retriable", False) or isinstance(exc, JobTimeoutException)
        if transient and may_raise and _retries_left():
            _note(exchange.id, "error", step, logs.scrub(f"will retry: {exc}"), source)
            raise
        return _attention(exchange, step, event, logs.scrub(str(exc)), transient=transient)
    outcome, then = (outcome.outcome, outcome.event) if isinstance(outcome, Then) \
        else (outcome, None)
    _move(exchange.id, exchange.state, after, f"{step}: {outcome}", source)
    follow_up = then or (exchange_rules.FOLLOW_UP.get(after) if after != exchange.state else None)
    if follow_up:
        signal(exchange.id, follow_up, shop=exchange.shop_domain, source=f"after {step}")
    return outcome


def _give_up(exchange: Exchange, event: str, source: str) -> str:
    reason = f"Swapline could not apply {event!r} after {MAX_ATTEMPTS} attempts; see the timeline"
    if exchange.state in exchange_rules.FINAL_STATES:
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


def _resume(exchange: Exchange, why: str) -> None:
    """Leave needs_attention for the state the exchange was in."""
    state = exchange_rules.left_state(exchange.state, exchange.attention_step)
    with db.session() as s:
        row = s.get(Exchange, exchange.id)
        row.state, row.attention_reason, row.attention_step = state, None, None
        row.attention_transient = False
        record(row.id, "transition", f"{NEEDS_ATTENTION} → {state}", why, session=s)
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
        if after == COMPLETED:
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
        record(row.id, "transition", f"{row.state} → {NEEDS_ATTENTION}", reason, session=s,
               step=step)
        if row.state != NEEDS_ATTENTION:  # a failed cancel keeps the first failure's Retry
            row.attention_step = exchange_rules.attention_step(row.state, event)
        row.attention_reason, row.state, row.updated_at = reason, NEEDS_ATTENTION, utcnow()
        row.attention_transient = transient
    log.warning("exchange needs attention at %s: %s", step, reason)
    return f"needs attention: {reason}"


def _retry(exchange: Exchange, source: str) -> str:
    """Back to the state it left, and the event that failed goes again."""
    if not exchange_rules.retriable(exchange.state, exchange.attention_step):
        _note(exchange.id, "ignored", "retry", f"not applicable in state {exchange.state}", source)
        return "nothing to retry"
    _, event = exchange_rules.failed(exchange.attention_step)
    _resume(exchange, f"retry ({source or 'retry'})")
    return _apply(exchange, event, source or "retry", may_raise=False)
