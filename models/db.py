"""The database engine: one per app, kept in app.extensions; sessions are short and explicit."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

import jsoncodec

EXTENSION = "swapline.db"
AUTOCOMMIT = "swapline.db.autocommit"
# The JSON columns, as json.dumps / json.loads wrote and read them (ASCII, NaN allowed), on orjson
JSON_ARGS = {"json_serializer": partial(jsoncodec.dumps_text, ensure_ascii=True, allow_nan=True),
             "json_deserializer": jsoncodec.loads}


def engine_for(url: str, **options) -> Engine:
    """An engine for a DATABASE_URL; SQLite gets WAL and a busy timeout for web + worker."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **JSON_ARGS, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (a round trip per request); a connection broken by a database restart fails
    # one request (a 503) and SQLAlchemy then discards the whole stale pool. A database that
    # does not answer fails a connect within 3 s instead of holding a web worker.
    return create_engine(url, pool_size=5, max_overflow=5, pool_recycle=1800,
                         connect_args={"connect_timeout": 3}, **JSON_ARGS, **options)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init_app(app: Flask) -> None:
    """Create the engine for the app's DATABASE_URL (the SQLite folder too)."""
    url = app.config["SETTINGS"].database_url
    if url.startswith("sqlite:///"):
        app.config["SETTINGS"].instance_path.mkdir(parents=True, exist_ok=True)
    app.extensions[EXTENSION] = engine_for(url)
    # Webhook intake writes one row per request: its own pool of autocommit connections.
    app.extensions[AUTOCOMMIT] = engine_for(url, isolation_level="AUTOCOMMIT")


def dispose(close: bool = True) -> None:
    """Drop pooled connections of both engines (before a fork, at the end of a test)."""
    for name in (EXTENSION, AUTOCOMMIT):
        current_app.extensions[name].dispose(close=close)


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions[EXTENSION]


@contextmanager
def autocommit_session() -> Iterator[Session]:
    """A session on the autocommit pool: each statement is its own transaction, so a lookup is
    one round trip, with no BEGIN and COMMIT around it (webhook intake: the shop behind a key,
    is this notice ours). For reads and single-statement writes only."""
    with Session(current_app.extensions[AUTOCOMMIT], expire_on_commit=False) as s:
        yield s


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection whose each statement commits by itself: one round trip for one INSERT.
    Inside `holding_autocommit` (a job run) every block gets the one connection it holds."""
    held = _HELD.get()
    if held is None:
        with current_app.extensions[AUTOCOMMIT].connect() as connection:
            yield connection
        return
    if held.connection is None:
        held.connection = current_app.extensions[AUTOCOMMIT].connect()
    try:
        yield held.connection
    except BaseException:
        # Given back as a block's own connection was: the pool's reset finds out whether it is
        # still usable (a job's timeout may have struck mid-statement) and discards it if not;
        # the next block checks out another.
        connection, held.connection = held.connection, None
        with contextlib.suppress(Exception):
            connection.close()
        raise


class _Held:
    """The autocommit connection a job run holds, once it first needs one."""

    connection: Connection | None = None


_HELD: ContextVar[_Held | None] = ContextVar("swapline_db_held", default=None)


@contextmanager
def holding_autocommit() -> Iterator[None]:
    """Every `autocommit` block inside shares one connection, checked out at the first and
    returned at the end: a job runs 5-10 of them, and a pool checkout and return with its
    SQLAlchemy Connection cost ~40 µs of CPU each time. No transaction is ever open on it, so
    sharing it is sharing nothing. A block that raises gives it back to the pool as before (whose
    reset discards a broken one: the job's timeout may strike mid-statement), and the next
    block checks out another."""
    held = _Held()
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
        if held.connection is not None:
            held.connection.close()


@contextmanager
def transaction() -> Iterator[Connection]:
    """One transaction on a pooled connection, for Core statements: no ORM session to build
    (the lifecycle's hot path). Commits on success, rolls back on any error."""
    with engine().begin() as connection:
        yield connection


@contextmanager
def session() -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine(), expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
