"""App Home's numbers: one shop's exchanges by state, per day, and how fast they are sent."""
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
SENT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Overview:
    counts: dict[str, int]  # every state asked for, zeros included, in the order asked
    attention: list[Exchange]  # needs_attention, newest first, at most ATTENTION_LIMIT
    per_day: list[tuple[date, int]]  # the last CHART_DAYS UTC dates, oldest first
    median_hours: float | None  # release → sent over the SENT_WINDOW; None: none sent

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def overview(domain: str, states: Sequence[str], attention: str, *, session: Session,
             now: datetime | None = None) -> Overview:
    """Everything the home page's overview shows for one shop; `attention` is the state of the
    exchanges waiting for the merchant (the state names are jobs/exchange_rules.py's)."""
    now = now or utcnow()
    return Overview(state_counts(domain, states, session=session),
                    newest_in_state(domain, attention, session=session),
                    per_day(domain, session=session, now=now),
                    median_hours_to_sent(domain, session=session, now=now))


def state_counts(domain: str, states: Sequence[str], *, session: Session) -> dict[str, int]:
    """How many of the shop's exchanges are in each of `states` (0 where there are none)."""
    query = select(Exchange.state, func.count()).where(Exchange.shop_domain == domain) \
        .group_by(Exchange.state)
    found = dict(session.exec(query).all())
    return {state: found.get(state, 0) for state in states}


def newest_in_state(domain: str, state: str, *, session: Session,
                    limit: int = ATTENTION_LIMIT) -> list[Exchange]:
    """The shop's exchanges in `state` (e.g. waiting for the merchant), newest first."""
    query = select(Exchange).where(Exchange.shop_domain == domain, Exchange.state == state) \
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


def median_hours_to_sent(domain: str, *, session: Session,
                         now: datetime | None = None) -> float | None:
    """Median hours from release (the return closed) to sent, over 30 days of sent parcels."""
    now = now or utcnow()
    query = select(Exchange.released_at, Exchange.sent_at) \
        .where(Exchange.shop_domain == domain, Exchange.released_at.is_not(None),
               Exchange.sent_at >= now - SENT_WINDOW, Exchange.sent_at <= now)
    hours = [(sent - released).total_seconds() / 3600
             for released, sent in session.exec(query)]
    return median(hours) if hours else None
