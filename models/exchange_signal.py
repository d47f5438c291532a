"""Events queued for an exchange, kept in the database until applied: Redis only wakes the job.

A signal row is written before it is applied (in the job that recorded it) or its job is
enqueued, and marked done when the event has been applied (or ignored). If Redis loses the job
(restart, eviction, a worker killed past its retries), the sweeper finds the row still pending
and queues it again; steps are safe to re-run.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, ForeignKey, Integer, String, bindparam, insert, null, update
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, select

from models.delivery import WebhookDelivery, mark_processed
from models.plain_sql import execute
from models.types import UTCDateTime, utcnow

MAX_ATTEMPTS = 10


class ExchangeSignal(SQLModel, table=True):
    __tablename__ = "exchange_signal"

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: int = Field(sa_column=Column(Integer, ForeignKey("exchange.id",
                                                                   ondelete="CASCADE"),
                                              index=True, nullable=False))
    event: str = Field(max_length=32)
    source: str = Field(default="", max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    attempts: int = Field(default=0)


def pending(*, session: Session, older_than: timedelta, limit: int = 500,
            after_id: int = 0) -> list[ExchangeSignal]:
    """Signals not yet applied, created at least `older_than` ago; the first `limit` with an id
    above `after_id`. One past MAX_ATTEMPTS is queued once more: its job then gives up, visibly
    (the exchange goes to needs attention)."""
    query = (select(ExchangeSignal)
             .where(ExchangeSignal.done_at.is_(None))
             .where(ExchangeSignal.created_at <= utcnow() - older_than)
             .where(ExchangeSignal.attempts <= MAX_ATTEMPTS)
             .where(ExchangeSignal.id > after_id)
             .order_by(ExchangeSignal.id).limit(limit))
    return list(session.exec(query))


def record_statement(*conditions):
    """INSERT … SELECT … WHERE NOT EXISTS: the signal row, unless the same event already waits
    for this exchange, not yet taken by a worker (and only where `conditions` hold). Built
    once; only its parameters change."""
    exchange_id, event = bindparam("s_exchange_id", type_=Integer), bindparam("s_event", String)
    waiting = select(ExchangeSignal.id).where(
        ExchangeSignal.exchange_id == exchange_id, ExchangeSignal.event == event,
        ExchangeSignal.done_at.is_(None), ExchangeSignal.attempts == 0)
    values = select(exchange_id, event, bindparam("s_source", type_=String),
                    bindparam("s_created_at", type_=UTCDateTime),
                    bindparam("s_attempts", type_=Integer)).where(~waiting.exists(), *conditions)
    columns = ["exchange_id", "event", "source", "created_at", "attempts"]
    return insert(ExchangeSignal).from_select(columns, values).returning(ExchangeSignal.id)


_RECORD = record_statement()


def record_signal(exchange_id: int, event: str, source: str, *, connection: Connection,
                  taken: bool = False) -> int | None:
    """Write a signal row unless the same event already waits for this exchange, untouched
    (which then stands for this one too): the new id, or None. One statement. `taken`: the
    caller holds the exchange's lock and applies it next, so its first attempt is counted
    here (as take_signal would), in the same statement."""
    return execute(connection, _RECORD, signal_values(exchange_id, event, source,
                                                     taken=taken)).scalar()


def signal_values(exchange_id: int, event: str, source: str, *, taken: bool) -> dict:
    """The parameters of `record_statement`."""
    return {"s_exchange_id": exchange_id, "s_event": event, "s_source": source[:255],
            "s_created_at": utcnow(), "s_attempts": 1 if taken else 0}


# Built once, run with parameters: no statement to build and no cache key to compute per call.
_TABLE = ExchangeSignal.__table__
_TAKE = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.done_at.is_(None)) \
    .values(attempts=_TABLE.c.attempts + 1) \
    .returning(_TABLE.c.attempts, _TABLE.c.event, _TABLE.c.source)
_DONE = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
# The same, with the webhook delivery that carried the signal marked processed: PostgreSQL
# runs a data-modifying CTE whatever the outer statement reads of it.
_DELIVERIES = WebhookDelivery.__table__
_DONE_PROCESSED = update(_TABLE).where(_TABLE.c.id == bindparam("b_id")) \
    .values(done_at=bindparam("done_at", type_=UTCDateTime)).add_cte(
        update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("d_id", type_=Integer))
        .values(processed_at=bindparam("done_at", type_=UTCDateTime), last_error=null())
        .returning(_DELIVERIES.c.id).cte("processed"))


def take_signal(signal_id: int, *, connection: Connection) -> tuple[int, str, str] | None:
    """Count an attempt at a recorded signal: the attempts so far with the signal's event and
    source, or None when it was applied already (or is gone). One UPDATE … RETURNING, the row
    unread."""
    row = execute(connection, _TAKE, {"b_id": signal_id}).first()
    return tuple(row) if row is not None else None


def mark_done(signal_id: int, *, connection: Connection, delivery_id: int | None = None) -> None:
    """The signal has been applied (or ignored, or parked its exchange in needs attention).
    `delivery_id`: the webhook delivery that carried it, marked processed with it (one
    statement on PostgreSQL, two in the caller's transaction elsewhere)."""
    at = utcnow()
    if delivery_id is not None and connection.dialect.name == "postgresql":
        execute(connection, _DONE_PROCESSED, {"b_id": signal_id, "done_at": at,
                                              "d_id": delivery_id})
        return
    execute(connection, _DONE, {"b_id": signal_id, "done_at": at}, columns=True)
    if delivery_id is not None:
        mark_processed(delivery_id, connection=connection, at=at)
