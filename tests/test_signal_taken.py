"""A signal applied in the job that records it (a delivery's, or a step's follow-up) is
recorded with its first attempt counted: no UPDATE to take it. One the job cannot apply now
(the exchange's lock busy) is recorded untouched, for its own job, which counts its attempt."""
from __future__ import annotations

from sqlmodel import select

from models import db
from models.exchange_signal import ExchangeSignal


def signals() -> list[tuple[str, bool, int]]:
    with db.session() as s:
        rows = s.exec(select(ExchangeSignal).order_by(ExchangeSignal.id)).all()
    return [(row.event, row.done_at is not None, row.attempts) for row in rows]


def test_signals_applied_at_once_count_one_attempt_each(world):
    world.setup().approve()
    world.run_jobs()
    world.close()
    world.run_jobs()
    world.warehouse_moves(450, waybill="PN1")
    world.run_jobs()
    assert world.exchange().state == "completed"
    assert signals() and all(done and attempts == 1 for _, done, attempts in signals())


def test_a_busy_lock_leaves_the_signal_untouched_for_its_own_job(world, monkeypatch):
    world.setup()
    world.approve_while_locked(monkeypatch)  # the lock busy: create waits for its job
    assert signals() == [("create", False, 0)]
    world.run_jobs()
    assert world.exchange().state == "parked"
    assert [attempts for *_, attempts in signals()][0] == 1
    assert all(done for _, done, _ in signals())
