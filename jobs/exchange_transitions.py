"""The writes that end an event's application: the step's transition (with its waiting
timeline lines, its follow-up signal and the applied signal marked done, in one transaction),
needs attention, leaving needs attention, and the runner's own timeline lines (ignored, will
retry). jobs/lifecycle.py decides which; this module writes them."""
from __future__ import annotations

import logging

from jobs import alerts, exchange_rules
from jobs.exchange_rules import COMPLETED, NEEDS_ATTENTION
from models import db
from models.delivery import processed_with_signal
from models.exchange import Exchange, record
from models.exchange_signal import mark_done, record_signal
from models.exchange_writes import line, pending, write, write_now
from models.types import utcnow

log = logging.getLogger(__name__)


def move(exchange_id: int, before: str, after: str, outcome: str, source: str, *,
         follow_up: tuple[str, str] | None = None, signal_id: int | None = None,
         delivery_id: int | None = None) -> tuple[int | None, dict | None]:
    """The step's end, in one transaction: its waiting lines and fields, the new state with its
    transition line, the follow-up signal (its id; None when the same one already waits) and
    the applied signal marked done. A crash before the commit leaves all of it to a re-run.
    The follow-up is recorded taken (its first attempt counted): the runner, holding the
    exchange's lock, applies it next; a crash before it is done leaves it to the sweeper.
    `delivery_id`: the webhook delivery that carried the applied signal, marked processed
    here too (in the done mark's statement on PostgreSQL): its job writes no mark of its own.
    With a follow-up, the exchange's row as saved comes back too (by column name), for the
    runner to apply the follow-up without reading it again."""
    at = utcnow()
    lines, fields = pending(exchange_id)
    lines.append({**line(exchange_id, "transition", f"{before} → {after}", outcome,
                         source=source), "at": at})
    with db.transaction() as connection:
        saved = write(exchange_id, lines,
                      {**fields, "state": after,
                       **({"completed_at": at} if after == COMPLETED else {})},
                      connection=connection, at=at, row=follow_up is not None)
        recorded = record_signal(exchange_id, *follow_up, connection=connection, taken=True) \
            if follow_up else None
        if signal_id is not None:
            mark_done(signal_id, connection=connection, delivery_id=delivery_id)
    if signal_id is not None and delivery_id is not None:
        processed_with_signal(delivery_id)
    return recorded, saved


def note_event(exchange_id: int, kind: str, name: str, outcome: str, source: str = "") -> None:
    """A line of the runner's own (ignored, will retry), with the step's waiting ones."""
    lines, fields = pending(exchange_id)
    write_now(exchange_id, [*lines, line(exchange_id, kind, name, outcome, source=source)],
              fields)


def attention(exchange: Exchange, step: str, event: str, reason: str, *,
               transient: bool = False) -> str:
    """Park the exchange in needs_attention with a readable reason; Retry re-sends `event`.

    `transient`: an outage outlasted the retries; reconciliation retries it by itself later."""
    lines, fields = pending(exchange.id)  # what the step did before it failed
    with db.session() as s:
        if lines or fields:
            write(exchange.id, lines, fields, connection=s.connection())
        row = s.get(Exchange, exchange.id)
        record(row.id, "transition", f"{row.state} → {NEEDS_ATTENTION}", reason, session=s,
               step=step)
        if row.state != NEEDS_ATTENTION:  # a failed cancel keeps the first failure's Retry
            row.attention_step = exchange_rules.attention_step(row.state, event)
        row.attention_reason, row.state, row.updated_at = reason, NEEDS_ATTENTION, utcnow()
        row.attention_transient = transient
    log.warning("exchange needs attention at %s: %s", step, reason)
    alerts.queue_check(exchange.id, exchange.shop_domain)  # the merchant hears of it at once
    return f"needs attention: {reason}"


def resume(exchange: Exchange, why: str) -> None:
    """Leave needs_attention for the state the exchange was in."""
    state = exchange_rules.left_state(exchange.state, exchange.attention_step)
    with db.session() as s:
        row = s.get(Exchange, exchange.id)
        row.state, row.attention_reason, row.attention_step = state, None, None
        row.attention_transient = False
        record(row.id, "transition", f"{NEEDS_ATTENTION} → {state}", why, session=s)
    exchange.state, exchange.attention_step = state, None


def keep_release(exchange_id: int, source: str) -> None:
    with db.session() as s:
        row = s.get(Exchange, exchange_id)
        row.release_reason = row.release_reason or source or "release"
        record(exchange_id, "ignored", "release", "kept until the Ongoing order exists",
               session=s, source=source)
