"""An exchange (one per shop and Shopify return) and its append-only timeline."""
from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    ARRAY,
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    literal,
    or_,
)
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, select

from models.plain_sql import execute, first_mapping
from models.rows import unattached
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


_READ = select(Exchange.__table__).where(Exchange.__table__.c.id == bindparam("b_id"))


def read_exchange(exchange_id: int, *, connection: Connection) -> Exchange | None:
    """One exchange, read with Core (a statement built once, no ORM session): a plain copy that
    no session tracks, for a step to read and change in memory (built as the ORM loads, not
    by the costly constructor: models/rows.py)."""
    row = first_mapping(execute(connection, _READ, {"b_id": exchange_id}))
    return unattached(Exchange, row) if row is not None else None


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


def exchange_order_ids(domain: str, order_ids: list[int], *,
                       connection: Connection) -> set[int]:
    """Which of these Ongoing order ids are exchange orders of the shop: one query for all of
    them (the connector check asks about every open order Ongoing returns), prepared on
    PostgreSQL (models/plain_sql.py)."""
    if not order_ids:
        return set()
    query = _ORDER_IDS_ANY if connection.dialect.name == "postgresql" else _ORDER_IDS_IN
    return {row[0] for row in execute(connection, query, {"domain": domain, "ids": order_ids})
            .all()}


# Built once, run with Core: one column, no ORM result to build.
# PostgreSQL takes the ids as one array parameter: the same short statement text whatever
# their count (an expanding IN renders one parameter per id, a new text per count, which
# psycopg parses again when it is long: the open orders can be hundreds).
_ORDER_ID = Exchange.__table__.c.ongoing_order_id
_ORDER_IDS_IN = select(_ORDER_ID).where(Exchange.__table__.c.shop_domain == bindparam("domain"),
                                        _ORDER_ID.in_(bindparam("ids", expanding=True)))
_ORDER_IDS_ANY = select(_ORDER_ID).where(Exchange.__table__.c.shop_domain == bindparam("domain"),
                                         _ORDER_ID == any_(bindparam("ids",
                                                                     type_=ARRAY(Integer))))


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
