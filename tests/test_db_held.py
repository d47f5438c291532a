"""A job run holds one autocommit connection (models/db.py `holding_autocommit`): its
one-statement reads and writes share it instead of a pool checkout each."""
from __future__ import annotations

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
