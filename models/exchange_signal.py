"""Events queued for an exchange, kept in the database until applied: Redis only wakes the job.

A signal row is written before it is applied (in the job that recorded it) or its job is
enqueued, and marked done when the event has been applied (or ignored). If Redis loses the job
(restart, eviction, a worker killed past its retries), the sweeper finds the row still pending
and queues it again; steps are safe to re-run.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, Session, SQLModel, select

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


def waiting_signal(exchange_id: int, event: str, *, session: Session) -> int | None:
    """The id of the same event queued for this exchange and not yet taken by a worker."""
    query = (select(ExchangeSignal.id)
             .where(ExchangeSignal.exchange_id == exchange_id, ExchangeSignal.event == event)
             .where(ExchangeSignal.done_at.is_(None), ExchangeSignal.attempts == 0)
             .limit(1))
    return session.exec(query).first()
