"""The exchange lifecycle's runner: `signal` records an event and applies it in the delivery's
job (one hop) or queues it, `advance` is the job that applies a queued one.

Every event is applied under a per-exchange lock: the runner re-reads the exchange, asks
jobs/exchange_rules.py what the event means and which step it runs, and either runs the step and
moves the state or records the event as ignored (a late duplicate, an out-of-order status).
Steps are safe to run twice. A step's follow-up is recorded as a signal before the event that
caused it is marked done, then applied in the same job under the same lock. The rules
themselves (states, table, needs attention) live in jobs/exchange_rules.py; this module only
carries them out.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from redis.exceptions import LockError, RedisError
from rq import Retry, get_current_job
from rq.timeouts import JobTimeoutException

import logs
from clients.shopify_errors import ShopifyRefusal
from jobs import exchange_collect, exchange_fulfil, exchange_rules, exchange_steps, metrics
from jobs.exchange_guard import applying
from jobs.exchange_rules import NeedsAttention, Then
from jobs.exchange_transitions import (
    attention,
    keep_release,
    move,
    note_event,
    resume,
)
from jobs.queue import DEFAULT_TIMEOUT, enqueue, job_id, jobs
from models import db
from models.exchange import Exchange, read_exchange
from models.exchange_signal import MAX_ATTEMPTS, mark_done, take_signal
from models.exchange_writes import one_statement, step_writes, write_with_signal
from models.rows import unattached
from models.settings import settings_of

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


def signal(exchange_id: int, event: str, *, shop: str = "", source: str = "",
           now: bool = False, lines: list[dict] = (), moment: str | None = None,
           delivery_id: int | None = None) -> bool:
    """Queue `event` for an exchange (from a webhook, the poll, a button or a follow-up).

    The event is written to the database first, so a job Redis loses is queued again by the
    sweeper; with Redis down the signal waits there. False when it could not be queued yet.
    The same event still waiting, untouched, for this exchange stands for this one too (a
    warehouse repeating its Sent notice queues one job, not ten).

    `now` (a delivery's job): apply it in this job, with its follow-ups, when the exchange's
    lock is free (taken before the row is written, which then counts this job's attempt); a
    busy lock or a retriable failure leaves it to its own job, as without.

    `lines` (timeline lines, models.exchange.line) and `moment` (a moment column set once,
    mark_once) are written with the signal row, in its transaction: what the webhook said is
    on the timeline exactly when its event is recorded.

    `delivery_id`: the webhook delivery whose one event this is (its handler signals nothing
    else after): when this job applies it and its step succeeds, the delivery is marked
    processed in the step's last transaction (jobs/exchange_transitions.py `move`) and its
    job writes no mark of its own. A worker killed before that leaves the delivery
    unprocessed: its job, run again, applies the event again (steps are safe to re-run)."""
    lock = _lock_now(exchange_id) if now else None
    held = lock is not None
    try:
        lines = list(lines)
        alone = one_statement(exchange_id, lines, db.engine().dialect.name, taken=held)
        with db.autocommit() if alone else db.transaction() as connection:
            signal_id = write_with_signal(exchange_id, lines, event, source, taken=held,
                                          connection=connection, moment=moment)
        if signal_id is None:
            return True
        if held:  # applied in this job; a retriable failure leaves it to its own job
            _follow(exchange_id, FollowUp(signal_id, event, source[:255]), shop=shop,
                    delivery_id=delivery_id)
            return True
    finally:
        if held:
            _unlock(lock, exchange_id)
    try:
        enqueue_signal(signal_id, exchange_id, event, source, shop=shop)
    except RedisError as exc:
        log.warning("queue unreachable, signal left for the sweeper: %s", type(exc).__name__,
                    extra={"exchange_id": exchange_id})
        return False
    return True


def signal_job_id(signal_id: int, exchange_id: int, event: str) -> str:
    return job_id("exchange", exchange_id, event, signal_id)


def enqueue_signal(signal_id: int, exchange_id: int, event: str, source: str, *, shop: str = "",
                   delay: int = 0, at_front: bool = False):
    """Queue the job of a recorded signal (None when its job is already there)."""
    return enqueue(advance, exchange_id, event, source, signal_id, shop=shop, retry=STEP_RETRY,
                   job_id=signal_job_id(signal_id, exchange_id, event), delay=delay,
                   at_front=at_front)


def _lock(exchange_id: int):
    """The exchange's lock, on a short lease renewed while held (jobs/leases.py)."""
    return jobs().lock(f"swapline:exchange:{exchange_id}", timeout=LOCK_SECONDS,
                       blocking_timeout=LOCK_SECONDS)


def _lock_now(exchange_id: int):
    """The exchange's lock if it is free now, held; None when busy (its own job waits)."""
    lock = _lock(exchange_id)
    return lock if lock.acquire(blocking=False) else None


def _unlock(lock, exchange_id: int) -> None:
    try:
        lock.release()
    except LockError:  # lost (Redis restarted empty, a stalled process); steps re-check
        log.warning("exchange lock expired before release", extra={"exchange_id": exchange_id})


@metrics.counts_job
def advance(exchange_id: int, event: str, source: str = "", signal_id: int | None = None) -> str:
    """Apply one event to one exchange: run its step and move its state, or record it ignored;
    then the follow-ups that step recorded, in this job.

    With `signal_id`, the recorded signal is applied once: marked done when the event has been
    applied, ignored or has put the exchange in needs_attention; a retriable failure leaves it
    pending for RQ's retry (or the sweeper, should Redis lose that retry)."""
    lock = _lock(exchange_id)
    if not lock.acquire():
        raise TimeoutError(f"exchange {exchange_id} stayed locked; RQ retries this event")
    try:
        taken = _take(exchange_id, signal_id, event, source)
        applied = taken if isinstance(taken, Applied) else \
            _run(taken, signal_id, may_raise=_retries_left())
        _follow(exchange_id, applied.follow_up)
        return applied.outcome
    finally:
        _unlock(lock, exchange_id)


def _follow(exchange_id: int, follow_up: FollowUp | None, *, shop: str = "",
            delivery_id: int | None = None) -> None:
    """Apply signals this job recorded taken one after another, under the lock the caller
    holds since: each one's follow-up is written (as a signal row) before the one that caused
    it is marked done, so a crash between them leaves it to the sweeper. A retriable failure
    is left to the signal's own job, scheduled like RQ's first retry; the row stays pending,
    so nothing is lost if that job is lost too. `delivery_id`: the delivery that carried the
    first one, marked processed with that one's step (see `signal`)."""
    while follow_up is not None:
        signal_id, event, source, saved = follow_up
        taken = _take(exchange_id, signal_id, event, source, taken=True, saved=saved)
        if isinstance(taken, Applied):  # the exchange was deleted
            return
        try:
            follow_up = _run(taken, signal_id, may_raise=True,
                             delivery_id=delivery_id).follow_up
            delivery_id = None
        except Exception as exc:
            if not getattr(exc, "retriable", False):
                raise  # e.g. the job's own timeout: RQ's registry shows it; the row stays
            enqueue_signal(signal_id, exchange_id, event, source, shop=shop,
                           delay=STEP_RETRY.intervals[0])
            return


class FollowUp(NamedTuple):
    """A signal this job recorded taken (its first attempt counted) and applies next; `saved`:
    its exchange's row as the step before saved it (under the lock this job still holds)."""

    signal_id: int
    event: str
    source: str
    saved: dict | None = None


class Applied(NamedTuple):
    """What applying one event did, and the follow-up signal it recorded, if any; `done`: the
    signal was marked done with the step's own writes."""

    outcome: str
    follow_up: FollowUp | None = None
    done: bool = False


class Taken(NamedTuple):
    """A signal taken for one attempt (its event and source), and the exchange, read once."""

    exchange: Exchange
    event: str
    source: str
    attempts: int


def _take(exchange_id: int, signal_id: int | None, event: str = "", source: str = "", *,
          taken: bool = False, saved: dict | None = None) -> Taken | Applied:
    """Count an attempt at the signal (committed before the step runs; `taken`: counted when
    it was recorded), then read the exchange: each statement its own transaction (one round
    trip each); an Applied when there is nothing to apply. `saved`: the exchange's row as this
    job, holding its lock, last saved it: nothing to read."""
    if taken and saved is not None:
        return Taken(unattached(Exchange, saved), event, source, 1)
    with db.autocommit() as connection:
        attempts = 1
        if signal_id is not None and not taken:
            counted = take_signal(signal_id, connection=connection)
            if counted is None:
                return Applied("signal already applied")
            attempts, event, source = counted
        exchange = read_exchange(exchange_id, connection=connection)
    if exchange is None:
        return Applied("exchange gone")
    return Taken(exchange, event, source, attempts)


def _run(taken: Taken, signal_id: int | None, *, may_raise: bool,
         delivery_id: int | None = None) -> Applied:
    """Apply a taken signal; mark it done unless the step's own writes did."""
    exchange, event, source = taken.exchange, taken.event, taken.source
    with logs.context(shop=exchange.shop_domain, exchange_id=exchange.id):
        if taken.attempts > MAX_ATTEMPTS:  # every run died before it could finish: a person looks
            applied = Applied(_give_up(exchange, event, source))
        else:
            with applying(event, source):  # the signal as recorded, for the release's guard
                applied = _apply(exchange, event, source, may_raise=may_raise,
                                 signal_id=signal_id, delivery_id=delivery_id)
    if signal_id is not None and not applied.done:
        _signal_done(signal_id)
    return applied


def _apply(exchange: Exchange, event: str, source: str, *, may_raise: bool,
           signal_id: int | None = None, delivery_id: int | None = None) -> Applied:
    """`may_raise`: a retriable failure is raised for a later attempt (RQ's retry, or the
    signal's own job). Without it (the last attempt, or a Retry applying the failed event) the
    exchange is parked as transient instead, which reconciliation retries later."""
    if event == exchange_rules.RETRY:
        return _retry(exchange, source, signal_id)
    # The shop's settings are read only for the one event they decide.
    instant = event == exchange_rules.IN_TRANSIT and \
        settings_of(exchange.shop_domain).instant_exchange
    meant = exchange_rules.meaning(exchange.state, exchange.attention_step, event, source,
                                   instant_exchange=instant,
                                   release_reason=exchange.release_reason)
    if meant.kept:  # e.g. close before create finished
        keep_release(exchange.id, source)
        return Applied("release kept until the Ongoing order exists")
    if meant.ignored:
        if meant.noted:
            note_event(exchange.id, "ignored", event, meant.ignored, source)
        return Applied(f"ignored: {meant.ignored}")
    event, source = meant.event, meant.source
    if exchange_rules.resumes_on(exchange.state, event):
        resume(exchange, f"{event}: the parcel left")  # a missed Sent must not strand it
    found = exchange_rules.transition(exchange.state, event)
    if found is None:
        note_event(exchange.id, "ignored", event, f"not applicable in state {exchange.state}",
                   source)
        return Applied(f"ignored in {exchange.state}")
    with step_writes(exchange.id):  # the step's lines wait for its saves and its end
        return _run_step(exchange, event, source, *found, may_raise=may_raise,
                         signal_id=signal_id, delivery_id=delivery_id)


def _run_step(exchange: Exchange, event: str, source: str, step: str, after: str, *,
              may_raise: bool, signal_id: int | None, delivery_id: int | None) -> Applied:
    """Run the step; on success move the state, record its follow-up and mark the signal done,
    with the step's waiting lines, in one transaction."""
    try:
        outcome = STEPS[step](exchange)
    except (NeedsAttention, ShopifyRefusal) as exc:  # a Shopify refusal is written for a person
        return Applied(attention(exchange, step, event, str(exc)))
    except Exception as exc:
        transient = getattr(exc, "retriable", False) or isinstance(exc, JobTimeoutException)
        if transient and may_raise:
            note_event(exchange.id, "error", step, logs.scrub(f"will retry: {exc}"), source)
            raise
        return Applied(attention(exchange, step, event, logs.scrub(str(exc)),
                                  transient=transient))
    outcome, then = (outcome.outcome, outcome.event) if isinstance(outcome, Then) \
        else (outcome, None)
    follow_up = then or (exchange_rules.FOLLOW_UP.get(after) if after != exchange.state else None)
    then = follow_up and (follow_up, f"after {step}")
    recorded, saved = move(exchange.id, exchange.state, after, f"{step}: {outcome}", source,
                           follow_up=then, signal_id=signal_id, delivery_id=delivery_id)
    return Applied(outcome, recorded and FollowUp(recorded, *then, saved),
                   done=signal_id is not None)


def _give_up(exchange: Exchange, event: str, source: str) -> str:
    reason = f"Swapline could not apply {event!r} after {MAX_ATTEMPTS} attempts; see the timeline"
    if exchange.state in exchange_rules.FINAL_STATES:
        note_event(exchange.id, "ignored", event, reason, source)
        return f"ignored: {reason}"
    return attention(exchange, event, event, reason)


def _signal_done(signal_id: int) -> None:
    with db.autocommit() as connection:  # one statement: its own transaction
        mark_done(signal_id, connection=connection)




def _retries_left() -> bool:
    job = get_current_job()
    return bool(job and job.retries_left)





def _retry(exchange: Exchange, source: str, signal_id: int | None) -> Applied:
    """Back to the state it left, and the event that failed goes again."""
    if not exchange_rules.retriable(exchange.state, exchange.attention_step):
        note_event(exchange.id, "ignored", "retry",
                   f"not applicable in state {exchange.state}", source)
        return Applied("nothing to retry")
    _, event = exchange_rules.failed(exchange.attention_step)
    resume(exchange, f"retry ({source or 'retry'})")
    return _apply(exchange, event, source or "retry", may_raise=False, signal_id=signal_id)
