"""Micro-benchmark (not collected by default): client CPU per step write (`_save`: a field and
a timeline line, one statement on PostgreSQL) in BEGIN … COMMIT against the autocommit pool,
and `mark_once`. Run with
    .venv/bin/pytest -q -s -p no:cacheprovider tests/bench_writes.py"""
from __future__ import annotations

import resource

from models import db
from models.exchange_writes import _mark_statement, line, mark_once, write, write_now
from models.plain_sql import execute
from models.types import utcnow


def _cpu_us(*funcs, n: int = 200, rounds: int = 10) -> list[float]:
    """CPU (user + system) per call in µs of each function, the best of rounds that take
    turns (the machine is shared: a slow moment hits one round, not one function)."""
    best = [float("inf")] * len(funcs)
    for _ in range(rounds):
        for number, func in enumerate(funcs):
            func()
            start = resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(n):
                func()
            end = resource.getrusage(resource.RUSAGE_SELF)
            spent = end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime
            best[number] = min(best[number], spent / n * 1e6)
    return best


def test_step_write(app, world):
    world.setup().approve()
    world.run_jobs()
    exchange_id = world.exchange().id

    def old():
        with db.transaction() as connection:
            write(exchange_id, [line(exchange_id, "call", "bench", "old")],
                  {"payment_reference": "old"}, connection=connection)

    def new():
        write_now(exchange_id, [line(exchange_id, "call", "bench", "new")],
                  {"payment_reference": "new"})

    def old_mark():
        with db.transaction() as connection:
            execute(connection, _mark_statement("return_closed_at"),
                    {"b_id": exchange_id, "return_closed_at": utcnow()}, columns=True)

    def new_mark():
        mark_once(exchange_id, "return_closed_at")

    write_old, write_new, mark_old, mark_new = _cpu_us(old, new, old_mark, new_mark)
    print(f"\n{db.engine().dialect.name} step write: old {write_old:.0f} us, "  # noqa: T201
          f"new {write_new:.0f} us CPU; mark_once: old {mark_old:.0f} us, "
          f"new {mark_new:.0f} us CPU")
