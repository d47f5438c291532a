"""What one exchange costs the database: statements and transactions per phase of its
lifecycle (webhook intake, relay and jobs), counted on both of the app's engines; `pytest -s`
prints them. The ceilings catch a change that quietly adds round trips back (a statement per
timeline line, per open Ongoing order); they are counts, not timings."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event

from models import db

# statements (measured, with some room). On PostgreSQL a step's save and its lines are one
# statement (models/exchange_writes.py); a signal applied in the job that records it is
# recorded taken (jobs/lifecycle.py). Measured 22, 14, 22 (SQLite: 29, 18, 30).
CEILINGS = {"postgresql": {"approve": 25, "close": 16, "sent": 25},
            "sqlite": {"approve": 33, "close": 21, "sent": 33}}


@pytest.fixture
def counted(app):
    """Statements by their first word, and transactions: commits on the main engine, and each
    statement on the autocommit one (its own transaction)."""
    seen: Counter = Counter()

    def statement(conn, _cursor, text, *_args):
        seen[text.lstrip().split()[0].upper()] += 1
        if conn.engine is app.extensions[db.AUTOCOMMIT]:
            seen["transactions"] += 1

    def commit(_conn):
        seen["transactions"] += 1

    engines = [app.extensions[db.EXTENSION], app.extensions[db.AUTOCOMMIT]]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statement)
    event.listen(engines[0], "commit", commit)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", statement)
    event.remove(engines[0], "commit", commit)


def _phase(counted: Counter, run) -> tuple[int, Counter]:
    counted.clear()
    run()
    return sum(n for word, n in counted.items() if word != "transactions"), Counter(counted)


def test_one_exchange_costs_few_statements(app, world, counted):
    world.setup()
    phases = {
        "approve": _phase(counted, lambda: (world.approve(), world.run_jobs())),
        "close": _phase(counted, lambda: (world.close(), world.run_jobs())),
        "sent": _phase(counted, lambda: (world.warehouse_moves(450, waybill="PN1"),
                                         world.run_jobs())),
    }
    assert world.exchange().state == "completed", world.exchange().attention_reason
    for name, (total, seen) in phases.items():
        print(f"\n{name}: {total} statements: {dict(seen)}")  # noqa: T201
    ceilings = CEILINGS[app.extensions[db.EXTENSION].dialect.name]
    assert {name: total for name, (total, _) in phases.items() if total > ceilings[name]} == {}
