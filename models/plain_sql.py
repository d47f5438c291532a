"""Core statements as plain SQL, and the hot ones run straight on psycopg.

One way to compile a Core statement to the SQL its DB-API takes (`plain`), used by webhook
intake (models/intake_db.py), the relay's poll (literal binds, jobs/relay.py) and `execute`.

`execute` runs a statement on the DB-API connection of a SQLAlchemy Connection (in its
transaction, or autocommit), prepared on the server, on PostgreSQL: SQLAlchemy's execution layer
(cache key, execution context, result objects) costs ~130 µs of CPU a statement against ~80 µs
for psycopg's own prepared execute. The statement is compiled once per statement, dialect and
set of parameter names (as SQLAlchemy's own cache does), with the bind processors of its types
(JSON serialised, aware datetimes checked) applied to each value, so psycopg gets what
SQLAlchemy would have sent. Errors are SQLAlchemy's (a broken connection is invalidated), and
the engine's before_cursor_execute listeners still see each statement. SQLite goes through
SQLAlchemy as before.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import psycopg
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError


class Plain(NamedTuple):
    """A compiled statement: its SQL (psycopg's %(name)s style), its own bound values (already
    processed) and the bind processors of the parameters a caller supplies."""

    sql: str
    constants: dict
    processors: dict

    def params(self, given: dict) -> dict:
        """The caller's parameters, processed, with the statement's own values."""
        processed = {**self.constants, **given}
        for name, process in self.processors.items():
            if name in given:
                processed[name] = process(given[name])
        return processed


@functools.lru_cache(maxsize=256)
def plain(statement, dialect: Dialect, columns: tuple[str, ...] | None = None, *,
          literal: bool = False) -> Plain:
    """Compile a Core statement built once (its callers keep it) for a dialect; `columns`: the
    parameter names of an UPDATE or INSERT whose columns come from its parameters (sorted, as
    SQLAlchemy's own compile cache keys them); `literal`: bound values written into the SQL."""
    kwargs = {"literal_binds": True} if literal else {"render_postcompile": True}
    compiled = statement.compile(dialect=dialect, compile_kwargs=kwargs,
                                 column_keys=list(columns) if columns is not None else None)
    if literal:
        return Plain(compiled.string, {}, {})
    processors = dict(compiled._bind_processors)
    constants = {}
    for name, value in compiled.params.items():
        bind = compiled.binds.get(name)
        if value is not None and not (bind is not None and bind.required):
            process = processors.get(name)
            constants[name] = process(value) if process else value
    return Plain(compiled.string, constants, processors)


class Rows:
    """What `execute` gives back on psycopg: the few things callers use of a result. psycopg's
    cursor.description builds a Column object per column on every read (~40 for an exchange
    row): whether there are rows is asked of the result itself, and a statement's column names
    are read once per SQL text (a compiled statement's columns never change)."""

    __slots__ = ("cursor", "sql")

    def __init__(self, cursor, sql: str = "") -> None:
        self.cursor, self.sql = cursor, sql

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

    def first(self) -> tuple | None:
        return self.cursor.fetchone() if self._has_rows() else None

    def scalar(self):
        row = self.first()
        return None if row is None else row[0]

    def all(self) -> list[tuple]:
        return self.cursor.fetchall() if self._has_rows() else []

    def names(self) -> tuple[str, ...]:
        names = _NAMES.get(self.sql)
        if names is None:
            names = tuple(column.name for column in self.cursor.description)
            if len(_NAMES) < 512:  # the statements are built once: a few dozen texts
                _NAMES[self.sql] = names
        return names

    def _has_rows(self) -> bool:
        result = self.cursor.pgresult
        return bool(result and (result.nfields or result.status == _TUPLES_OK))


_NAMES: dict[str, tuple[str, ...]] = {}
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


def first_mapping(result) -> dict | None:
    """The first row of what `execute` gave back, by column name (psycopg's cursor or
    SQLAlchemy's Result alike), or None: for building a model object (models/rows.py)."""
    if not isinstance(result, Rows):
        row = result.first()
        return None if row is None else row._mapping
    row = result.first()
    if row is None:
        return None
    return dict(zip(result.names(), row, strict=True))


def execute(connection: Connection, statement, params: dict, *, columns: bool = False):
    """Run a Core statement with one set of parameters on `connection`, prepared, on
    PostgreSQL (see above); through SQLAlchemy elsewhere. `columns`: the statement's SET or
    VALUES columns come from the parameters' names."""
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, params)
    compiled = plain(statement, connection.dialect, tuple(sorted(params)) if columns else None)
    values = compiled.params(params)
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    if connection._has_events or connection.engine._has_events:  # statement counters, tracing
        connection.dispatch.before_cursor_execute(connection, cursor, compiled.sql, values,
                                                  None, False)
    try:
        cursor.execute(compiled.sql, values, prepare=True)
    except psycopg.Error as exc:
        broken = dbapi_connection.broken
        if broken:  # as SQLAlchemy's own handling: the pool's older connections go too
            connection.engine.pool._invalidate(connection.connection, exc, _checkin=False)
            connection.invalidate(exc)
        raise wrapped(compiled.sql, values, exc, invalidated=broken) from exc
    return Rows(cursor, compiled.sql)


def wrapped(sql: str, params: dict, exc: psycopg.Error, *,
            invalidated: bool = False) -> DBAPIError:
    """psycopg's error as SQLAlchemy's (OperationalError: the app's 503), parameters hidden
    (payloads stay out of logs)."""
    return DBAPIError.instance(sql, params, exc, psycopg.Error, hide_parameters=True,
                               connection_invalidated=invalidated)
