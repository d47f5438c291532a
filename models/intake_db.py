"""Webhook intake's one statement per request, on PostgreSQL run straight on psycopg.

The engine's autocommit pool costs a webhook about 0.1 ms of CPU around its one statement
(checkout, reset on return, SQLAlchemy's execution layer and result objects): more than the
statement itself. Here each process keeps its own idle psycopg connections (autocommit, made by
the engine, so with its connect arguments), takes one for the statement, runs it prepared and
gives it back. Each statement commits by itself, so a 200 sent after `first` returns is still a
committed row. The statements stay SQLAlchemy Core, compiled once per engine dialect by
models/plain_sql.py (with their types' bind processors): one definition for both paths.
SQLite (tests on machines without PostgreSQL) takes the engine's autocommit connection as before.
"""
from __future__ import annotations

import os
import time
import weakref

import psycopg
from flask import current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine

from models import db
from models.plain_sql import plain, wrapped

IDLE_SECONDS = 300.0  # an idle connection older than this is closed, not used
clock = time.monotonic  # tests move it
IDLE_MAX = 8  # idle connections kept per process (a sync worker uses one, gthread one per thread)
# Connections inherited over a fork: the parent's sessions. Never closed in the child (libpq
# would end the parent's session on close), so kept referenced until the child exits.
_INHERITED: list = []


class IdleConnections:
    """One engine's idle psycopg connections in this process: a stack, so a single-threaded
    worker always reuses the same one. list.append and list.pop need no lock of their own.

    A connection left idle longer than IDLE_SECONDS, or older than the engine's pool_recycle, is
    closed instead of used (what the engine's pool does for its own): a NAT, a proxy or the
    server may have dropped it meanwhile, and that first request would be a 503."""

    def __init__(self) -> None:
        self.idle: list[tuple[psycopg.Connection, float, float]] = []  # (conn, born, last used)

    def take(self, engine: Engine) -> tuple[psycopg.Connection, float]:
        """(a connection, when it was made)."""
        now, recycle = clock(), engine.pool._recycle  # -1: never
        while self.idle:
            connection, born, used = self.idle.pop()
            if now - used <= IDLE_SECONDS and (recycle < 0 or now - born <= recycle):
                return connection, born
            connection.close()
        fairy = engine.raw_connection()  # the engine's connect args and autocommit
        fairy.detach()  # ours from now on: the pool forgets it
        return fairy.dbapi_connection, now

    def give_back(self, connection: psycopg.Connection, born: float) -> None:
        if connection.closed or connection.broken or len(self.idle) >= IDLE_MAX:
            connection.close()
        else:
            self.idle.append((connection, born, clock()))

    def close_all(self) -> None:
        """Close the idle connections (the engine was disposed)."""
        while self.idle:
            self.idle.pop()[0].close()

    def forget(self) -> None:
        """After a fork: the parent's connections are not this process's to use or close."""
        _INHERITED.extend(connection for connection, _, _ in self.idle)
        self.idle = []


_by_engine: weakref.WeakKeyDictionary[Engine, IdleConnections] = weakref.WeakKeyDictionary()


def _connections(engine: Engine) -> IdleConnections:
    found = _by_engine.get(engine)
    if found is None:
        found = _by_engine[engine] = IdleConnections()
        event.listen(engine, "engine_disposed", lambda _engine: found.close_all())
    return found


def _after_fork() -> None:
    for connections in list(_by_engine.values()):
        connections.forget()


os.register_at_fork(after_in_child=_after_fork)


def dialect_name() -> str:
    """The intake database's dialect (statements that differ by dialect are built per name)."""
    return current_app.extensions[db.AUTOCOMMIT].dialect.name


def first(statement, params: dict) -> tuple | None:
    """The first row of a Core statement run with `params` as a transaction of its own (None
    when there is none). Errors are SQLAlchemy's (an unreachable database is an
    OperationalError: the app's 503), and a broken connection is dropped, so the next request
    connects afresh."""
    engine = current_app.extensions[db.AUTOCOMMIT]
    if engine.dialect.name != "postgresql":
        with engine.connect() as connection:
            return connection.execute(statement, params).first()
    compiled = plain(statement, engine.dialect)
    sql = compiled.sql
    connections = _connections(engine)
    try:
        # engine.raw_connection() raises psycopg's own error when it cannot connect (the
        # engine wraps connect errors only in engine.connect()): wrapped here alike
        connection, born = connections.take(engine)
    except psycopg.Error as exc:
        raise wrapped(sql, params, exc) from exc
    try:
        row = connection.execute(sql, compiled.params(params), prepare=True).fetchone()
    except psycopg.Error as exc:
        raise wrapped(sql, params, exc) from exc
    finally:
        connections.give_back(connection, born)
    return row
