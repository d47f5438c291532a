"""Alerts: one open alert per exchange and condition (the database enforces it), and the
messages (one per alert, channel and event) that tell the merchant about it.

The conditions, their labels and their webhook events are named here once; jobs/alerts.py
decides when each holds, sends the messages, and resolves alerts that no longer hold.
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, Session, SQLModel, select

from models.exchange import Exchange
from models.types import UTCDateTime, utcnow

NEEDS_ATTENTION, DOUBLE_SHIPMENT = "needs_attention", "double_shipment"
STALLED_PARKED, STALLED_RELEASED = "stalled_parked", "stalled_released"
STALLED_UNCOLLECTED, STALLED_NOT_RETURNED = "stalled_uncollected", "stalled_not_returned"
# The connector guard (jobs/exchange_steps.py) starts its needs-attention reason with this.
DOUBLE_SHIPMENT_PREFIX = "Possible double shipment:"
# condition -> the ShopSettings field with its threshold in days
STALL_THRESHOLDS = {STALLED_PARKED: "stall_parked_days", STALLED_RELEASED: "stall_released_days",
                    STALLED_UNCOLLECTED: "stall_uncollected_days",
                    STALLED_NOT_RETURNED: "stall_not_returned_days"}
STALLED = tuple(STALL_THRESHOLDS)
CONDITIONS = (NEEDS_ATTENTION, DOUBLE_SHIPMENT, *STALLED)
LABELS = {NEEDS_ATTENTION: "Needs attention", DOUBLE_SHIPMENT: "Possible double shipment",
          STALLED_PARKED: "Return not moving", STALLED_RELEASED: "Released, not sent",
          STALLED_UNCOLLECTED: "Difference not collected",
          STALLED_NOT_RETURNED: "Return not booked in"}
# The webhook's "event" (DESIGN.md): needs attention and stalled when opened, resolved after.
NEEDS_ATTENTION_EVENT, STALLED_EVENT = "exchange.needs_attention", "exchange.stalled"
RESOLVED_EVENT = "exchange.resolved"
MAIL, WEBHOOK = "mail", "webhook"
CHANNELS = (MAIL, WEBHOOK)


def opened_event(condition: str) -> str:
    """The webhook event of an alert being opened."""
    return STALLED_EVENT if condition in STALLED else NEEDS_ATTENTION_EVENT


def label(condition: str) -> str:
    return LABELS.get(condition, condition.replace("_", " ").capitalize())


class Alert(SQLModel, table=True):
    __table_args__ = (
        # One open alert per exchange and condition; a resolved one may be opened again.
        Index("uq_alert_open", "exchange_id", "condition", unique=True,
              sqlite_where=text("resolved_at IS NULL"),
              postgresql_where=text("resolved_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_domain: str = Field(sa_column=Column(String(255), index=True, nullable=False))
    exchange_id: int = Field(sa_column=Column(Integer, ForeignKey("exchange.id",
                                                                   ondelete="CASCADE"),
                                              index=True, nullable=False))
    condition: str = Field(max_length=32)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)  # when the condition began
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertMessage(SQLModel, table=True):
    """One message of an alert on one channel; the row is the truth, the job only sends it."""

    __tablename__ = "alert_message"
    __table_args__ = (UniqueConstraint("alert_id", "channel", "event", name="uq_alert_message"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(sa_column=Column(Integer, ForeignKey("alert.id", ondelete="CASCADE"),
                                           index=True, nullable=False))
    shop_domain: str = Field(sa_column=Column(String(255), index=True, nullable=False))
    channel: str = Field(max_length=16)  # mail | webhook
    event: str = Field(max_length=32)  # exchange.needs_attention | .stalled | .resolved
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    digest: bool = False  # sent inside a digest mail
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class Stalled(NamedTuple):
    """A stalled exchange as the pages list it."""

    exchange: Exchange
    condition: str
    label: str
    reason: str
    since: datetime


def stalled(domain: str, *, session: Session, condition: str | None = None) -> list[Stalled]:
    """The shop's exchanges with an open stalled alert (optionally of one condition), longest
    stalled first."""
    conditions = (condition,) if condition else STALLED
    query = select(Alert, Exchange).join(Exchange, Exchange.id == Alert.exchange_id) \
        .where(Alert.shop_domain == domain, Alert.resolved_at.is_(None),
               Alert.condition.in_(conditions)).order_by(Alert.since, Alert.id)
    return [Stalled(exchange, alert.condition, label(alert.condition), alert.reason, alert.since)
            for alert, exchange in session.exec(query)]


def open_alerts(exchange_id: int, *, session: Session) -> list[Alert]:
    """The exchange's open alerts."""
    query = select(Alert).where(Alert.exchange_id == exchange_id, Alert.resolved_at.is_(None))
    return list(session.exec(query))
