"""Every webhook we answered 200 to: the basis of idempotency, and the outbox the relay
(jobs/relay.py) queues jobs from (`queued_at` still NULL: its job was never queued)."""
from __future__ import annotations

import functools
from contextvars import ContextVar
from datetime import datetime, timedelta

from sqlalchemy import (
    ARRAY,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, select

from models import intake_db
from models.plain_sql import execute
from models.types import UTCDateTime, utcnow

MAX_ATTEMPTS = 10


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("source", "shop_domain", "delivery_id", name="uq_delivery_source_shop_id"),
        # Shopify sends one event once per subscription to its topic, each with its own webhook
        # id; the event id is shared. Rows without one (other sources, older rows) never clash:
        # NULLs are distinct in a unique index on PostgreSQL and SQLite alike.
        Index("uq_delivery_event", "source", "shop_domain", "topic", "event_id", unique=True),
        # The relay's query: only rows whose job was never queued (a handful at any time).
        Index("ix_delivery_unqueued", "id", postgresql_where=text("queued_at IS NULL"),
              sqlite_where=text("queued_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)  # shopify | ongoing | return_events
    delivery_id: str = Field(max_length=255)
    event_id: str | None = Field(default=None, max_length=255)  # X-Shopify-Event-Id
    shop_domain: str = Field(sa_column=Column(String(255), index=True, nullable=False))
    topic: str = Field(max_length=128)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # set by the relay
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(Text))


def record_delivery(connection: Connection | None = None, /, **values) -> int | None:
    """Insert a delivery in one statement, committed when this returns (on `connection`, else
    on webhook intake's own, models/intake_db.py); its id, or None when (source, shop, id) is
    known or, for a delivery with an event id, (source, shop, topic, event id) is."""
    values = {"received_at": utcnow(), "attempts": 0, "event_id": None, **values}
    if connection is not None:
        return connection.execute(_insert(connection.dialect.name), values).scalar()
    row = intake_db.first(_insert(intake_db.dialect_name()), values)
    return None if row is None else row[0]


@functools.cache
def _insert(dialect: str):
    """record_delivery's statement, built once per dialect: only its parameters change. No
    conflict target: either unique key makes the insert a no-op."""
    table = WebhookDelivery.__table__
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    columns = ("source", "delivery_id", "event_id", "shop_domain", "topic", "payload",
               "received_at", "attempts")
    return (insert(table).values({name: bindparam(name, type_=table.c[name].type)
                                  for name in columns})
            .on_conflict_do_nothing().returning(table.c.id))


def is_recorded(*, source: str, shop_domain: str, delivery_id: str) -> bool:
    """Whether this very delivery (not merely its event) is already recorded."""
    return intake_db.first(_recorded(), {"source": source, "shop_domain": shop_domain,
                                         "delivery_id": delivery_id}) is not None


@functools.cache
def _recorded():
    """is_recorded's statement, built once."""
    table = WebhookDelivery.__table__
    return select(table.c.id).where(*(table.c[name] == bindparam(name, type_=String)
                                      for name in ("source", "shop_domain", "delivery_id")))


def unqueued(connection: Connection, *, limit: int) -> list[tuple[int, str]]:
    """(id, shop) of the first `limit` deliveries whose job was never queued, oldest first."""
    return [tuple(row) for row in connection.execute(unqueued_query(limit))]


def unqueued_query(limit: int):
    """The statement of `unqueued` (the relay loop runs it compiled, on a plain cursor)."""
    table = WebhookDelivery.__table__
    return (select(table.c.id, table.c.shop_domain).where(table.c.queued_at.is_(None))
            .order_by(table.c.id).limit(limit))


def mark_queued(connection: Connection, ids: list[int]) -> None:
    """Note that the jobs of these deliveries are queued (the relay's or the sweeper's doing)."""
    if ids:
        query = _QUEUED_ANY if connection.dialect.name == "postgresql" else _QUEUED_IN
        execute(connection, query, {"ids": ids, "at": utcnow()})


# Built once, prepared on PostgreSQL (models/plain_sql.py): the ids as one array parameter there,
# whatever their count (an expanding IN is a new statement text per count).
_ID = WebhookDelivery.__table__.c.id
_QUEUED = update(WebhookDelivery.__table__).values(queued_at=bindparam("at"))
_QUEUED_ANY = _QUEUED.where(_ID == any_(bindparam("ids", type_=ARRAY(Integer))))
_QUEUED_IN = _QUEUED.where(_ID.in_(bindparam("ids", expanding=True)))


def unprocessed(*, session: Session, older_than: timedelta, limit: int = 500, after_id: int = 0):
    """Deliveries queued but never processed, received at least `older_than` ago, with attempts
    left; the first `limit` with an id above `after_id`. (Those never queued are the relay's.)"""
    cutoff = utcnow() - older_than
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.processed_at.is_(None))
        .where(WebhookDelivery.queued_at.is_not(None))
        .where(WebhookDelivery.received_at <= cutoff)
        .where(WebhookDelivery.attempts < MAX_ATTEMPTS)
        .where(WebhookDelivery.id > after_id)
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.exec(query))


# Built once: a delivery's handler is done (its columns, processed_at and last_error, given).
_PROCESSED = update(WebhookDelivery.__table__).where(
    WebhookDelivery.__table__.c.id == bindparam("b_id"))


def mark_processed(delivery_id: int, *, connection: Connection,
                   at: datetime | None = None) -> None:
    """The delivery's handler is done, in the caller's transaction (or autocommit): one
    statement. A delivery already gone (shop/redact deletes the shop's rows) matches none."""
    execute(connection, _PROCESSED, {"b_id": delivery_id, "processed_at": at or utcnow(),
                                     "last_error": None}, columns=True)


def record_error(delivery_id: int, error: str, *, connection: Connection) -> None:
    """The delivery's handler failed: its error kept (at most 2,000 characters), still
    unprocessed. One statement."""
    execute(connection, _PROCESSED, {"b_id": delivery_id, "last_error": error[:2000]},
            columns=True)


def processed_with_signal(delivery_id: int | None) -> None:
    """The running delivery was marked processed with the done mark of the signal it carried,
    at the end of that signal's step (models/exchange_signal.py `mark_done`): its job writes
    no mark of its own."""
    _WITH_SIGNAL.set(delivery_id)


def marked_with_signal(delivery_id: int) -> bool:
    """Whether this delivery was marked processed with its signal's step, in this job."""
    return _WITH_SIGNAL.get() == delivery_id


_WITH_SIGNAL: ContextVar[int | None] = ContextVar("swapline_delivery_with_signal", default=None)
