"""What one exchange costs the database: statements and transactions per phase of its
lifecycle (webhook intake, relay and jobs), counted on both of the app's engines; `pytest -s`
prints them. The ceilings catch a change that quietly adds round trips back (a statement per
timeline line, per open Ongoing order); they are counts, not timings."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event

from models import db

# statements (measured, with some room). On PostgreSQL a step's save and its lines are one
# statement (models/exchange_writes.py), and so are a webhook's line and its signal; a signal
# applied in the job that records it is recorded taken, its delivery marked processed with its
# done mark, and its follow-up applied on the row the step saved (jobs/lifecycle.py); a new
# exchange's INSERT waits for a lock on its order (jobs/exchange_triggers.py). Measured 19, 10,
# 18, of which 2 in sent are the test's own reads (SQLite: 25, 17, 28).
CEILINGS = {"postgresql": {"approve": 20, "close": 12, "sent": 20},
            "sqlite": {"approve": 27, "close": 19, "sent": 30}}
# BEGIN … COMMIT pairs (commits on the main engine, with some room): a write of one statement
# runs on the autocommit pool (models/exchange_writes.py `alone`), so on PostgreSQL only a new
# exchange's INSERT (after its order's lock) and each step's transition (`move`) take one.
# Measured 2, 1, 3, of which 1 in sent is the test's own read (before: 7, 2, 6). SQLite
# writes a line and the row in two statements: 7, 3, 7 (before: 8, 3, 7).
COMMITS = {"postgresql": {"approve": 3, "close": 2, "sent": 4},
           "sqlite": {"approve": 8, "close": 4, "sent": 8}}


@pytest.fixture
def counted(app):
    """Statements by their first word and the engine that ran them (AC autocommit, TX the
    main one), and transactions: commits on the main engine, and each statement on the
    autocommit one (its own transaction)."""
    seen: Counter = Counter()

    def statement(conn, _cursor, text, *_args):
        word, alone = text.lstrip().split()[0].upper(), conn.engine is engines[1]
        seen[word] += 1
        seen[("caller", _caller(), f"{'AC' if alone else 'TX'} {word}")] += 1
        seen["transactions"] += alone

    def commit(_conn):
        seen["transactions"] += 1
        seen["commits"] += 1

    engines = [app.extensions[db.EXTENSION], app.extensions[db.AUTOCOMMIT]]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statement)
    event.listen(engines[0], "commit", commit)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", statement)
    event.remove(engines[0], "commit", commit)


ROOT = Path(__file__).resolve().parent.parent
PLUMBING = ("models/db.py", "models/plain_sql.py", "models/intake_db.py", "models/rows.py")
RUNNERS = ("jobs/worker.py", "jobs/worker_base.py", "jobs/queue.py")


def _caller() -> str:
    """Who ran a statement: the innermost app function outside the plumbing, and the nearest
    app function of another module that called it (`models/x.py:read <- jobs/y.py:step`)."""
    frame, ours = sys._getframe(2), []
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(str(ROOT)) and "/.venv/" not in path:
            name = path[len(str(ROOT)) + 1:]
            if name not in PLUMBING and name not in RUNNERS:
                ours.append(f"{name}:{frame.f_code.co_name}")
        frame = frame.f_back
    if not ours or ours[0].startswith("tests/"):
        return "(the test's own read)"
    module = ours[0].split(":")[0]
    caller = next((f for f in ours if f.split(":")[0] != module), "?")
    return f"{ours[0]} <- {caller}"


def _phase(counted: Counter, run) -> tuple[int, Counter]:
    counted.clear()
    run()
    words = Counter({k: n for k, n in counted.items() if not isinstance(k, tuple)})
    return sum(n for word, n in words.items() if word not in ("transactions", "commits")), \
        Counter(counted)


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
        words = {k: n for k, n in seen.items() if not isinstance(k, tuple)}
        print(f"\n{name}: {total} statements: {words}")  # noqa: T201
        for (_, caller, word), n in sorted((k, n) for k, n in seen.items()
                                           if isinstance(k, tuple)):
            print(f"  {n:2} {word:9} {caller}")  # noqa: T201
    dialect = app.extensions[db.EXTENSION].dialect.name
    ceilings, commits = CEILINGS[dialect], COMMITS[dialect]
    assert {name: total for name, (total, _) in phases.items() if total > ceilings[name]} == {}
    assert {name: seen["commits"] for name, (_, seen) in phases.items()
            if seen["commits"] > commits[name]} == {}
