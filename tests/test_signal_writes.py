"""A webhook's timeline line and the signal it records (models/exchange_writes.py
`write_with_signal`): one statement on PostgreSQL for a taken signal, the same outcome as the
two statements a waiting one takes (the UPDATE first, so a concurrent writer sees it)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from models import db
from models.exchange import ExchangeEvent
from models.exchange_signal import ExchangeSignal
from models.exchange_writes import line, write_with_signal


def _record(exchange_id: int, outcome: str, event: str = "release") -> int | None:
    with db.transaction() as connection:
        return write_with_signal(exchange_id, [line(exchange_id, "webhook", "test", outcome)],
                                 event, "test", taken=False, connection=connection)


def _state(exchange_id: int) -> tuple[list[str], list[tuple]]:
    with db.session() as s:
        outcomes = [e.outcome for e in s.exec(select(ExchangeEvent).where(
            ExchangeEvent.exchange_id == exchange_id, ExchangeEvent.name == "test")
            .order_by(ExchangeEvent.id))]
        signals = [(row.event, row.attempts) for row in s.exec(select(ExchangeSignal).where(
            ExchangeSignal.exchange_id == exchange_id, ExchangeSignal.source == "test"))]
    return outcomes, signals


def test_the_line_and_the_signal_are_written_and_a_waiting_one_stands(world):
    exchange = world.parked()
    first = _record(exchange.id, "first")
    assert first is not None
    assert _record(exchange.id, "again") is None  # the same event waits, untouched
    assert _state(exchange.id) == (["first", "again"], [("release", 0)])  # both lines


def test_a_gone_exchange_gets_neither(world):
    exchange = world.parked()
    with db.session() as s:
        from models.exchange import Exchange

        s.delete(s.get(Exchange, exchange.id))
    with pytest.raises((LookupError, IntegrityError)):  # SQLite: its foreign key refuses
        _record(exchange.id, "late")
    with db.session() as s:
        assert s.exec(select(ExchangeSignal).where(
            ExchangeSignal.exchange_id == exchange.id)).all() == []


def test_a_moment_is_set_once_with_the_line_and_the_signal(world):
    from models.exchange import Exchange

    exchange = world.parked()

    def record(outcome: str) -> None:
        with db.transaction() as connection:
            write_with_signal(exchange.id, [line(exchange.id, "webhook", "test", outcome)],
                              "release", "test", taken=False, connection=connection,
                              moment="return_closed_at")

    record("closed")
    with db.session() as s:
        first = s.get(Exchange, exchange.id).return_closed_at
    assert first is not None
    record("closed again")
    with db.session() as s:
        assert s.get(Exchange, exchange.id).return_closed_at == first  # kept, not moved
    assert _state(exchange.id) == (["closed", "closed again"], [("release", 0)])


def _blocked_on_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).first())


@pytest.mark.parametrize("with_lines", [True, False], ids=["webhook", "button"])
def test_two_workers_recording_the_same_event_at_once_leave_one_waiting(world, with_lines):
    """A warehouse repeating its notice (or a button pressed twice, reconciliation beside a
    webhook: no lines), two workers, the exchange's lock busy: the second's write waits on the
    exchange row and then sees the first's signal (PostgreSQL: one statement's snapshot would
    not, and both would insert)."""
    engine = db.engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writers take the whole database in turn")
    exchange = world.parked()
    second: list[int | None] = []

    def record(outcome: str, connection) -> int | None:
        lines = [line(exchange.id, "webhook", "test", outcome)] if with_lines else []
        return write_with_signal(exchange.id, lines, "release", "test", taken=False,
                                 connection=connection)

    def other_worker() -> None:
        with engine.begin() as connection:
            second.append(record("second", connection))

    with engine.begin() as connection:
        first = record("first", connection)
        worker = threading.Thread(target=other_worker)
        worker.start()
        deadline = time.monotonic() + 5
        while not _blocked_on_a_lock(engine):  # the other worker waits on the exchange row
            assert time.monotonic() < deadline, "the second write never waited"
            time.sleep(0.02)
    worker.join(timeout=10)
    assert first is not None and second == [None]
    lines = ["first", "second"] if with_lines else []
    assert _state(exchange.id) == (lines, [("release", 0)])
