"""App Home's numbers: one shop's exchanges by state, per day, and how fast they ship."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from statistics import median

from sqlalchemy import func
from sqlmodel import Session, select

from models.exchange import Exchange
from models.types import utcnow

ATTENTION_LIMIT = 20
CHART_DAYS = 14
SHIPPING_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Overview:
    counts: dict[str, int]  # every state asked for, zeros included, in the order asked
    attention: list[Exchange]  # needs_attention, newest first, at most ATTENTION_LIMIT
    per_day: list[tuple[date, int]]  # the last CHART_DAYS UTC dates, oldest first
    median_hours: float | None  # release → shipment over the SHIPPING_WINDOW; None: no shipment

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def overview(domain: str, states: Sequence[str], *, session: Session,
             now: datetime | None = None) -> Overview:
    """Everything the home page's overview shows for one shop."""
    now = now or utcnow()
    return Overview(state_counts(domain, states, session=session),
                    needs_attention(domain, session=session),
                    per_day(domain, session=session, now=now),
                    median_hours_to_ship(domain, session=session, now=now))


def state_counts(domain: str, states: Sequence[str], *, session: Session) -> dict[str, int]:
    """How many of the shop's exchanges are in each of `states` (0 where there are none)."""
    query = select(Exchange.state, func.count()).where(Exchange.shop_domain == domain) \
        .group_by(Exchange.state)
    found = dict(session.exec(query).all())
    return {state: found.get(state, 0) for state in states}


def needs_attention(domain: str, *, session: Session,
                    limit: int = ATTENTION_LIMIT) -> list[Exchange]:
    """The shop's exchanges waiting for the merchant, newest first."""
    query = select(Exchange).where(Exchange.shop_domain == domain,
                                   Exchange.state == "needs_attention") \
        .order_by(Exchange.created_at.desc(), Exchange.id.desc()).limit(limit)
    return list(session.exec(query))


def per_day(domain: str, *, session: Session, now: datetime | None = None,
            days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """Exchanges created on each of the last `days` UTC dates (today last), zero days included."""
    first = (now or utcnow()).astimezone(UTC).date() - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    # Grouped here rather than in SQL: date truncation differs between SQLite and PostgreSQL,
    # and two weeks of one shop's rows are few.
    query = select(Exchange.created_at).where(Exchange.shop_domain == domain,
                                              Exchange.created_at >= since)
    tally = Counter(moment.astimezone(UTC).date() for moment in session.exec(query))
    dates = [first + timedelta(days=n) for n in range(days)]
    return [(day, tally[day]) for day in dates]


def median_hours_to_ship(domain: str, *, session: Session,
                         now: datetime | None = None) -> float | None:
    """Median hours from release (the return closed) to shipment, over 30 days' shipments."""
    now = now or utcnow()
    query = select(Exchange.released_at, Exchange.shipped_at) \
        .where(Exchange.shop_domain == domain, Exchange.released_at.is_not(None),
               Exchange.shipped_at >= now - SHIPPING_WINDOW, Exchange.shipped_at <= now)
    hours = [(shipped - released).total_seconds() / 3600
             for released, shipped in session.exec(query)]
    return median(hours) if hours else None
