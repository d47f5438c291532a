"""An exchange (one per shop and Shopify return) and its append-only timeline."""
from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    literal,
    or_,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, select

from models.types import UTCDateTime, utcnow


class Exchange(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("shop_domain", "return_gid", name="uq_exchange_return"),
        # The Ongoing webhook asks, per notice, whether the order is one Swapline runs
        # (concerns_ongoing_order): one index per way an order is recognised, each by shop.
        Index("ix_exchange_shop_ongoing_order_id", "shop_domain", "ongoing_order_id"),
        Index("ix_exchange_shop_order_name", "shop_domain", "order_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_domain: str = Field(sa_column=Column(String(255), index=True, nullable=False))
    return_gid: str = Field(max_length=100)
    return_name: str | None = Field(default=None, max_length=100)
    order_gid: str = Field(max_length=100)
    order_name: str = Field(max_length=100)
    state: str = Field(max_length=32, index=True)  # jobs/exchange_rules.py names the states
    attention_reason: str | None = Field(default=None, sa_column=Column(Text))
    attention_step: str | None = Field(default=None, max_length=32)  # what Retry runs again
    attention_transient: bool = False  # an outage outlasted the retries: retried by itself
    items: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    returned_items: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    workflow: str | None = Field(default=None, max_length=16)  # legacy | processing
    ongoing_order_id: int | None = None
    ongoing_order_number: str | None = Field(default=None, max_length=100)
    ongoing_return_order_id: int | None = None
    ongoing_status: int | None = None  # last Ongoing order status seen
    line_item_gids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    fulfillment_order_gid: str | None = Field(default=None, max_length=100)
    hold_gid: str | None = Field(default=None, max_length=100)
    fulfillment_gid: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=255)
    tracking_url: str | None = Field(default=None, sa_column=Column(Text))
    tracking_company: str | None = Field(default=None, max_length=255)
    balance: str | None = Field(default=None, max_length=32)  # decimal string, presentment money
    currency: str | None = Field(default=None, max_length=3)
    collection: str | None = Field(default=None, max_length=32)  # captured|mandate|invoice|none
    collected_amount: str | None = Field(default=None, max_length=32)
    payment_reference: str | None = Field(default=None, max_length=255)
    release_reason: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fulfilled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # For the "not booked in" alert: Shopify closed the return; Ongoing showed it came back
    # (the original order at the Returned order status, or the return order at Returned).
    return_closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    returned_in_ongoing_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def balance_decimal(self) -> Decimal:
        return Decimal(self.balance or "0")

    @property
    def skus(self) -> list[str]:
        return [item["sku"] for item in self.items]


class ExchangeEvent(SQLModel, table=True):
    __tablename__ = "exchange_event"

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: int = Field(sa_column=Column(Integer, ForeignKey("exchange.id",
                                                                   ondelete="CASCADE"),
                                              index=True, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    kind: str = Field(max_length=16)  # transition | call | webhook | warning | ignored | error
    name: str = Field(max_length=100)
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    detail: str | None = Field(default=None, sa_column=Column(Text))


def record(exchange_id: int, kind: str, name: str, outcome: str = "", *, session: Session,
           **detail) -> None:
    """Append one line to an exchange's timeline (never updated, never deleted alone)."""
    session.add(ExchangeEvent(exchange_id=exchange_id, kind=kind, name=name, outcome=outcome,
                              detail=json.dumps(detail, default=str) if detail else None))


def timeline(exchange_id: int, *, session: Session) -> list[ExchangeEvent]:
    """The exchange's timeline, oldest first."""
    query = select(ExchangeEvent).where(ExchangeEvent.exchange_id == exchange_id) \
        .order_by(ExchangeEvent.id)
    return list(session.exec(query))


def find_by_return(domain: str, return_gid: str, *, session: Session) -> Exchange | None:
    """The shop's exchange for a Shopify return."""
    query = select(Exchange).where(Exchange.shop_domain == domain,
                                   Exchange.return_gid == return_gid)
    return session.exec(query).first()


def find_by_ongoing_order(domain: str, order_id: int, *, session: Session) -> Exchange | None:
    """The shop's exchange whose Ongoing exchange order has this id."""
    query = select(Exchange).where(Exchange.shop_domain == domain,
                                   Exchange.ongoing_order_id == order_id)
    return session.exec(query).first()


def exchange_order_ids(domain: str, order_ids: list[int], *, session: Session) -> set[int]:
    """Which of these Ongoing order ids are exchange orders of the shop: one query for all of
    them (the connector check asks about every open order Ongoing returns)."""
    if not order_ids:
        return set()
    query = select(Exchange.ongoing_order_id).where(Exchange.shop_domain == domain,
                                                    Exchange.ongoing_order_id.in_(order_ids))
    return set(session.exec(query))


def concerns_ongoing_order(domain: str, order_id: int, order_number: str | None, *,
                           open_states: tuple[str, ...], session: Session) -> bool:
    """Whether an Ongoing order is one Swapline runs for the shop (`runs_ongoing_order`)."""
    query = select(runs_ongoing_order(domain, order_id, order_names(order_number),
                                      open_states=open_states))
    return bool(session.exec(query).one())


def order_names(order_number: str | None) -> list[str]:
    """The order names an Ongoing order number may stand for, as create finds the original
    order and the webhook handler matches it: with or without its '#' (none for no number)."""
    number = (order_number or "").strip()
    return [number, f"#{number.lstrip('#')}"] if number else []


def runs_ongoing_order(domain, order_id, names, *, open_states: tuple[str, ...]):
    """SQL truth of "Swapline runs this Ongoing order for the shop `domain`": an exchange order
    (by its id, whatever the exchange's state), or the original order of an open exchange
    (`open_states`) named one of `names`. Values or SQL alike (a column of an outer query, bind
    parameters: one statement for every notice). Each branch an index on (shop, column)."""
    ours = Exchange.shop_domain == domain
    branches = [select(Exchange.id).where(ours, Exchange.ongoing_order_id == order_id)]
    if len(names):
        # the states as plain parameters: an expanding IN is re-rendered on every execution
        states = Exchange.state.in_([literal(state) for state in open_states])
        branches.append(select(Exchange.id).where(ours, or_(*(Exchange.order_name == n
                                                               for n in names)), states))
    # EXISTS per branch, not one OR: SQLite would then search by shop alone.
    return or_(*(branch.exists() for branch in branches))


# --- writes: a step's timeline lines and fields, few transactions per step ----------------
#
# Each write is one transaction: one UPDATE of the exchange (its fields, and updated_at: the
# list sorts by latest activity) and one multi-row INSERT of its timeline lines, each line with
# the moment it was noted. Outside a step (a webhook's line) a note is written at once. During a
# step (`step_writes`, the lifecycle's runner), a plain line waits for the step's next write or
# its end (the transition, needs attention or the error that retries it), in order.
#
# What waits, and so what a crash mid-step (the process killed) may lose: lines about a read, a
# check or a decision (stock ok, the connector check, a warning) and `stage`d fields read from
# outside (a status seen, the line items): the step's re-run reads and writes them again. What
# never waits: a saved field with its line (`saving`, `update`: ids of what Swapline made in
# Ongoing or Shopify, so a re-run finds them), and a line about an outside write the re-run
# will not repeat (`now=True`: returnProcess, a hold released), so the timeline never misses a
# call that changed Shopify or Ongoing. Lines about a write the re-run repeats (tagsAdd) wait.


@dataclass
class _Step:
    exchange_id: int
    lines: list[dict] = dataclass_field(default_factory=list)
    fields: dict = dataclass_field(default_factory=dict)
    held: bool = False  # inside together(): written at the block's end


_STEP: ContextVar[_Step | None] = ContextVar("swapline_exchange_step", default=None)


@contextmanager
def step_writes(exchange_id: int) -> Iterator[None]:
    """Lines noted for this exchange inside the block wait for its next write (see above)."""
    token = _STEP.set(_Step(exchange_id))
    try:
        yield
    finally:
        _STEP.reset(token)


def _step(exchange_id: int) -> _Step | None:
    step = _STEP.get()
    return step if step is not None and step.exchange_id == exchange_id else None


def line(exchange_id: int, kind: str, name: str, outcome: str = "", **detail) -> dict:
    """A timeline line's values, stamped now."""
    return {"exchange_id": exchange_id, "at": utcnow(), "kind": kind, "name": name,
            "outcome": outcome, "detail": json.dumps(detail, default=str) if detail else None}


# Built once: the columns to set come from each call's parameters (SQLAlchemy caches one
# compiled form per set of columns). A multi-VALUES insert() would be compiled on every call;
# an executemany with RETURNING is sent as one multi-row INSERT ("insertmanyvalues").
_SAVE = sql_update(Exchange.__table__).where(Exchange.__table__.c.id == bindparam("b_id"))
_APPEND = insert(ExchangeEvent.__table__).returning(ExchangeEvent.__table__.c.id)


def write(exchange_id: int, lines: list[dict], fields: dict, *, connection: Connection,
          at: datetime | None = None) -> None:
    """Save fields and append lines in the caller's transaction: two statements. LookupError
    when fields were to be saved and the exchange is gone."""
    done = connection.execute(_SAVE, {**fields, "updated_at": at or utcnow(), "b_id": exchange_id})
    if fields and done.rowcount != 1:
        raise LookupError(f"exchange {exchange_id} is gone")
    if lines:
        connection.execute(_APPEND, lines)


def pending(exchange_id: int) -> tuple[list[dict], dict]:
    """Take the lines and fields waiting in this exchange's step (the caller writes them)."""
    step = _step(exchange_id)
    if step is None:
        return [], {}
    taken = step.lines, step.fields
    step.lines, step.fields = [], {}
    return taken


def _save(exchange_id: int, lines: list[dict], fields: dict, *, now: bool) -> None:
    step = _step(exchange_id)
    if step is not None:
        step.lines.extend(lines)
        step.fields.update(fields)
        if not now or step.held:
            return
        lines, fields = pending(exchange_id)
    if not (lines or fields):
        return
    from models import db

    with db.transaction() as connection:
        write(exchange_id, lines, fields, connection=connection)


def note(exchange_id: int, what: str, outcome: str = "ok", kind: str = "call", *,
         saving: dict | None = None, now: bool = False, **ids) -> None:
    """A timeline line (an outside call, a warning, a webhook). `saving`: fields of the exchange
    saved with it, at once; `now`: written at once even during a step (see above)."""
    _save(exchange_id, [line(exchange_id, kind, what, outcome, **ids)], saving or {},
          now=now or saving is not None)


def update(exchange_id: int, **fields) -> None:
    """Save fields of an exchange at once, with any lines waiting (steps save each id as soon
    as they have it): the row is not read first. LookupError when the exchange is gone."""
    _save(exchange_id, [], fields, now=True)


def stage(exchange_id: int, **fields) -> None:
    """Fields read from outside, saved with the step's next write (at once outside a step)."""
    _save(exchange_id, [], fields, now=False)


@contextmanager
def together(exchange_id: int) -> Iterator[None]:
    """The lines and saves of the block in one transaction, at its end (a call's line and the
    lines about how it was made, never one without the other)."""
    with contextlib.ExitStack() as stack:
        if _step(exchange_id) is None:
            stack.enter_context(step_writes(exchange_id))
        step = _step(exchange_id)
        step.held = True
        try:
            yield
        finally:  # after an error the lines wait for the step's error or needs attention
            step.held = False
        _save(exchange_id, [], {}, now=True)


def mark_once(exchange_id: int, column: str, *, connection: Connection | None = None) -> None:
    """Set a moment column (return_closed_at, returned_in_ongoing_at) now, unless already set;
    in the caller's transaction when given one."""
    from models import db

    if connection is None:
        with db.transaction() as c:
            return mark_once(exchange_id, column, connection=c)
    connection.execute(_mark_statement(column), {"b_id": exchange_id, column: utcnow()})


@functools.cache
def _mark_statement(column: str):
    table = Exchange.__table__
    return sql_update(table).where(table.c.id == bindparam("b_id"), table.c[column].is_(None))
