"""models/plain_sql.py: one compile of Core to plain SQL; hot statements run prepared on psycopg
with SQLAlchemy's bind processors, errors and statement listeners; the same results through
SQLAlchemy on SQLite. And the step writes that became one statement on PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import bindparam, event, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlmodel import select

from models import db
from models.delivery import unqueued_query
from models.exchange import Exchange, ExchangeEvent
from models.exchange_writes import line, write
from models.plain_sql import execute, first_mapping, plain

_TABLE = Exchange.__table__
_SAVE = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))


@pytest.fixture
def exchange_id(parked_exchange) -> int:
    return parked_exchange


def test_json_and_datetimes_go_through_their_bind_processors(exchange_id):
    with db.transaction() as connection:
        done = execute(connection, _SAVE, {"b_id": exchange_id, "line_item_gids": ["a", "b"]},
                       columns=True)
        assert done.rowcount == 1
    with db.session() as s:
        assert s.get(Exchange, exchange_id).line_item_gids == ["a", "b"]
    with pytest.raises((ValueError, StatementError)), db.transaction() as connection:
        execute(connection, _SAVE, {"b_id": exchange_id, "updated_at": datetime(2026, 1, 1)},
                columns=True)  # naive: UTCDateTime refuses it on both paths


def test_returning_and_constants(exchange_id):
    statement = update(_TABLE).where(_TABLE.c.id == bindparam("b_id")) \
        .values(order_name=_TABLE.c.order_name + "-x").returning(_TABLE.c.order_name)
    with db.transaction() as connection:
        assert execute(connection, statement, {"b_id": exchange_id}).scalar() == "#1001-x"
        assert execute(connection, statement, {"b_id": -1}).first() is None


def test_rows_by_name_and_statements_without_rows(exchange_id):
    """A row by column name, read twice (the second time from the names kept for the same
    SQL); on psycopg, a statement that returns no rows gives none, whichever way it is asked
    (SQLAlchemy's Result, on SQLite, raises instead: no caller asks it)."""
    read = select(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
    with db.transaction() as connection:
        for _ in range(2):
            row = first_mapping(execute(connection, read, {"b_id": exchange_id}))
            assert (row["id"], row["order_name"]) == (exchange_id, "#1001")
            assert list(row) == [column.key for column in _TABLE.columns]
        assert first_mapping(execute(connection, read, {"b_id": -1})) is None
        done = execute(connection, _SAVE, {"b_id": exchange_id, "order_name": "#1001"},
                       columns=True)
        assert done.rowcount == 1
        if connection.dialect.name == "postgresql":
            assert done.all() == []
            assert execute(connection, _SAVE, {"b_id": exchange_id, "order_name": "#1001"},
                           columns=True).first() is None


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """The first word of each statement the main engine's listeners see in the block."""
    seen: list[str] = []
    engine = app.extensions[db.EXTENSION]
    listener = lambda _c, _cur, text, *_: seen.append(text.split()[0])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_errors_are_sqlalchemys_and_listeners_see_the_statement(app, exchange_id):
    with statements(app) as seen, pytest.raises(IntegrityError), \
            db.transaction() as connection:
        execute(connection, _SAVE, {"b_id": exchange_id, "shop_domain": None}, columns=True)
    assert seen == ["UPDATE"]


def test_a_broken_connection_takes_the_pools_older_ones_with_it(app, exchange_id):
    """A database restart breaks every pooled connection: the first statement to fail on one
    (here a prepared one) marks the pool's older connections stale, as SQLAlchemy's own
    execution does, so the next checkout gets a fresh one instead of failing again."""
    engine = db.engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's statements do not go through psycopg here")
    read = select(_TABLE.c.id).where(_TABLE.c.id == bindparam("b_id"))
    first, second = engine.connect(), engine.connect()  # two pooled connections, both used
    for connection in (first, second):
        connection.execute(text("SELECT 1")).all()
        connection.rollback()
    pids = [c.connection.dbapi_connection.info.backend_pid for c in (first, second)]
    first.close(), second.close()
    with db.autocommit() as admin:
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) "
                           "AS pid"), {"pids": pids})
    with pytest.raises(OperationalError) as failed, db.transaction() as connection:
        execute(connection, read, {"b_id": exchange_id})
    assert failed.value.connection_invalidated
    with db.transaction() as connection:  # the other one, stale too: replaced on checkout
        assert execute(connection, read, {"b_id": exchange_id}).scalar() == exchange_id


def test_the_relay_poll_compiles_with_literal_values(app):
    dialect = app.extensions[db.EXTENSION].dialect
    sql = plain(unqueued_query(7), dialect, literal=True).sql
    assert "7" in sql and "%(" not in sql and "?" not in sql


def test_a_write_is_one_statement_on_postgresql_and_keeps_its_lines_in_order(app, exchange_id):
    with statements(app) as seen, db.transaction() as connection:
        write(exchange_id, [line(exchange_id, "call", f"n{i}") for i in range(3)],
              {"ongoing_status": 200, "line_item_gids": ["g"]}, connection=connection)
    assert len(seen) == (1 if db.engine().dialect.name == "postgresql" else 2)
    with db.session() as s:
        row = s.get(Exchange, exchange_id)
        names = s.exec(select(ExchangeEvent.name).where(ExchangeEvent.exchange_id == exchange_id)
                       .order_by(ExchangeEvent.id)).all()
    assert (row.ongoing_status, row.line_item_gids, list(names)) == (200, ["g"],
                                                                     ["n0", "n1", "n2"])


def test_lines_for_a_gone_exchange_fail_loudly(exchange_id):
    with db.session() as s:
        s.delete(s.get(Exchange, exchange_id))
    with pytest.raises((LookupError, IntegrityError)), db.transaction() as connection:
        write(exchange_id, [line(exchange_id, "call", "late")], {}, connection=connection)
    with pytest.raises(LookupError), db.transaction() as connection:
        write(exchange_id, [line(exchange_id, "call", "late")], {"ongoing_status": 1},
              connection=connection)
