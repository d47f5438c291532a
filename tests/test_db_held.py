"""A job run holds one autocommit connection (models/db.py `holding_autocommit`): its
one-statement reads and writes share it instead of a pool checkout each."""
from __future__ import annotations

import signal

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from models import db


@pytest.fixture
def checkouts(app):
    """Checkouts from the autocommit pool, from now on."""
    seen: list[int] = []
    engine = app.extensions[db.AUTOCOMMIT]
    listener = lambda *_: seen.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    yield seen
    event.remove(engine, "checkout", listener)


def _backend(connection) -> object:
    return connection.connection.dbapi_connection


def test_blocks_inside_share_one_connection_returned_at_the_end(app, checkouts):
    engine = app.extensions[db.AUTOCOMMIT]
    with db.holding_autocommit():
        with db.autocommit() as first:
            assert first.execute(text("SELECT 1")).scalar() == 1
        with db.autocommit() as second:
            assert second is first and second.execute(text("SELECT 2")).scalar() == 2
        assert engine.pool.checkedout() == 1
    assert engine.pool.checkedout() == 0 and len(checkouts) == 1
    with db.autocommit() as a, db.autocommit() as b:  # outside: a connection each
        assert a is not b
    assert len(checkouts) == 3


def test_nothing_is_checked_out_when_no_block_runs(app, checkouts):
    with db.holding_autocommit():
        pass
    assert checkouts == []


def test_a_held_connection_broken_meanwhile_is_replaced_on_its_next_use(app):
    if db.engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a server session to end")
    with db.holding_autocommit():
        with db.autocommit() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with db.engine().connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError), db.autocommit() as connection:
            connection.execute(text("SELECT 1"))
        with db.autocommit() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != pid


class Timeout(Exception):
    """As RQ's job timeout: raised by a signal handler, whatever the job was doing."""


def test_a_job_timeout_mid_statement_leaves_the_next_block_a_working_connection(app):
    """psycopg cancels a running query on KeyboardInterrupt only: after another exception the
    connection is still busy with it, and a block reusing it would fail with it."""
    if db.engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a statement to interrupt")

    def times_out(*_):
        raise Timeout()

    previous = signal.signal(signal.SIGALRM, times_out)
    try:
        with db.holding_autocommit():
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(Timeout), db.autocommit() as connection:
                connection.execute(text("SELECT pg_sleep(3)"))
            with db.autocommit() as connection:
                assert connection.execute(text("SELECT 42")).scalar() == 42
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def shares_its_connection() -> bool:
    """A job: whether its two autocommit blocks got one connection."""
    with db.autocommit() as first:
        first.execute(text("SELECT 1"))
    with db.autocommit() as second:
        return second is first


def test_a_worker_runs_each_job_holding_one_connection(app):
    from jobs import worker
    from jobs.queue import enqueue, jobs

    job = enqueue(shares_its_connection, job_id="shares")
    w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
    w.work(burst=True, with_scheduler=False)
    job.refresh()
    assert job.return_value() is True
