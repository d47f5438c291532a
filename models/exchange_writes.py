"""Writes to an exchange: its fields and its timeline lines, few transactions per step.

Each write is one transaction: one UPDATE of the exchange (its fields, and updated_at: the
list sorts by latest activity) and one multi-row INSERT of its timeline lines, each line with
the moment it was noted; on PostgreSQL both are one statement (a data-modifying CTE), run on
the autocommit pool (no BEGIN and COMMIT around it) unless it goes with other statements.
Outside a step (a webhook's line) a note is written at once. During a step (`step_writes`, the
lifecycle's runner), a plain line waits for the step's next write or its end (the transition,
needs attention or the error that retries it), in order.

What waits, and so what a crash mid-step (the process killed) may lose: lines about a read, a
check or a decision (stock ok, the connector check, a warning) and `stage`d fields read from
outside (a status seen, the line items): the step's re-run reads and writes them again. What
never waits: a saved field with its line (`saving`, `update`: ids of what Swapline made in
Ongoing or Shopify, so a re-run finds them), and a line about an outside write the re-run
will not repeat (`now=True`: returnProcess, a hold released), so the timeline never misses a
call that changed Shopify or Ongoing. Lines about a write the re-run repeats (tagsAdd) wait.
"""
from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, union_all
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection

from models import db
from models.exchange import Exchange, ExchangeEvent
from models.exchange_signal import record_signal, record_statement, signal_values
from models.plain_sql import execute, first_mapping
from models.types import utcnow


@dataclass
class _Step:
    exchange_id: int
    lines: list[dict] = dataclass_field(default_factory=list)
    fields: dict = dataclass_field(default_factory=dict)
    held: bool = False  # inside together(): written at the block's end


_STEP: ContextVar[_Step | None] = ContextVar("swapline_exchange_step", default=None)


@contextmanager
def step_writes(exchange_id: int) -> Iterator[None]:
    """Lines noted for this exchange inside the block wait for its next write (see above)."""
    token = _STEP.set(_Step(exchange_id))
    try:
        yield
    finally:
        _STEP.reset(token)


def _step(exchange_id: int) -> _Step | None:
    step = _STEP.get()
    return step if step is not None and step.exchange_id == exchange_id else None


def line(exchange_id: int, kind: str, name: str, outcome: str = "", **detail) -> dict:
    """A timeline line's values, stamped now."""
    return {"exchange_id": exchange_id, "at": utcnow(), "kind": kind, "name": name,
            "outcome": outcome, "detail": json.dumps(detail, default=str) if detail else None}


# Built once: the columns to set come from each call's parameters (compiled once per set of
# columns). A multi-VALUES insert() would be compiled on every call; an executemany with
# RETURNING is sent as one multi-row INSERT ("insertmanyvalues").
_TABLE, _EVENTS = Exchange.__table__, ExchangeEvent.__table__
_SAVE = sql_update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
_SAVE_ROW = _SAVE.returning(*_TABLE.c)
_APPEND = insert(_EVENTS).returning(_EVENTS.c.id)
_LINE = ("at", "kind", "name", "outcome", "detail")
MAX_TOGETHER = 8  # more lines in one write (rare): the two statements


def write(exchange_id: int, lines: list[dict], fields: dict, *, connection: Connection,
          at: datetime | None = None, row: bool = False) -> dict | None:
    """Save fields and append lines in the caller's transaction: one statement on PostgreSQL
    (the UPDATE in a CTE the INSERT reads), two elsewhere. LookupError when the exchange is
    gone and fields were to be saved (or, on PostgreSQL, lines appended: the INSERT appends
    only to the row the UPDATE found, where SQLite's fails on the foreign key). `row`: the
    exchange's row as saved, by column name, is returned (UPDATE … RETURNING: no read after)."""
    values = {**fields, "updated_at": at or utcnow(), "b_id": exchange_id}
    if lines and alone(exchange_id, lines, connection.dialect.name):
        for number, each in enumerate(lines):
            values.update({f"{name}_{number}": each[name] for name in _LINE})
        done = execute(connection, _together(tuple(sorted(fields)), len(lines), row), values)
        saved = first_mapping(done) if row else done.all()
        if not saved:
            raise LookupError(f"exchange {exchange_id} is gone")
        return saved if row else None
    done = execute(connection, _SAVE_ROW if row else _SAVE, values, columns=True)
    saved = first_mapping(done) if row else None
    if (fields or row) and (saved is None if row else done.rowcount != 1):
        raise LookupError(f"exchange {exchange_id} is gone")
    if lines:
        connection.execute(_APPEND, lines)
    return saved


@functools.lru_cache(maxsize=128)
def _together(fields: tuple[str, ...], count: int, row: bool = False):
    """WITH saved AS (UPDATE exchange … RETURNING id) INSERT INTO exchange_event … SELECT …
    FROM saved (one SELECT per line, UNION ALL): built once per set of fields, count of lines
    and `row`. The lines are appended only when the exchange row was there to update. `row`:
    the INSERT is a second CTE and the statement reads the saved row (every column)."""
    saved = sql_update(_TABLE).where(_TABLE.c.id == bindparam("b_id")).values(
        {name: bindparam(name, type_=_TABLE.c[name].type) for name in (*fields, "updated_at")}
    ).returning(*(_TABLE.c if row else [_TABLE.c.id])).cte("saved")
    rows = [select(saved.c.id, *(bindparam(f"{name}_{number}", type_=_EVENTS.c[name].type)
                                 for name in _LINE)) for number in range(count)]
    appended = insert(_EVENTS).from_select(["exchange_id", *_LINE],
                                           union_all(*rows) if count > 1 else rows[0])
    if row:
        return select(*saved.c).add_cte(appended.returning(_EVENTS.c.id).cte("appended"))
    return appended.add_cte(saved).returning(_EVENTS.c.id)


def write_with_signal(exchange_id: int, lines: list[dict], event: str, source: str, *,
                      taken: bool, connection: Connection,
                      moment: str | None = None) -> int | None:
    """Append lines, set a moment column once (`mark_once`) and record a signal
    (models/exchange_signal.py `record_signal`): one statement on PostgreSQL when `taken`
    (the signal row only where the exchange row was there to update), else `write`,
    `mark_once` and `record_signal` in the caller's transaction. The signal's id, or None
    when the same event already waits; LookupError when the exchange is gone, as `write`."""
    if not one_statement(exchange_id, lines, connection.dialect.name, taken=taken):
        # The exchange row locked first (by the lines' UPDATE, else by a lock of its own on
        # PostgreSQL): a second writer of the same event waits on it until this transaction
        # commits, and its INSERT then sees this signal waiting.
        if lines:
            write(exchange_id, lines, {}, connection=connection)
        elif connection.dialect.name == "postgresql":
            execute(connection, _LOCK_ROW, {"b_id": exchange_id})
        if moment:
            mark_once(exchange_id, moment, connection=connection)
        return record_signal(exchange_id, event, source, connection=connection, taken=taken)
    values = {**signal_values(exchange_id, event, source, taken=taken), "b_id": exchange_id}
    values["updated_at"] = values["s_created_at"]
    for number, each in enumerate(lines):
        values.update({f"{name}_{number}": each[name] for name in _LINE})
    signal_id = execute(connection, _with_signal(len(lines), moment), values).scalar()
    if signal_id is None and execute(connection, _EXISTS, {"b_id": exchange_id}).first() is None:
        raise LookupError(f"exchange {exchange_id} is gone")
    return signal_id


def one_statement(exchange_id: int, lines: list[dict], dialect: str, *, taken: bool) -> bool:
    """Whether `write_with_signal` is one statement (then it needs no transaction around).
    Only for a `taken` signal: the caller holds the exchange's lock. A waiting one is checked
    against the same event waiting, and one statement's snapshot would miss a concurrent
    writer's row (two waiting signals); two statements, the UPDATE first, see it."""
    return taken and bool(lines) and alone(exchange_id, lines, dialect)


def alone(exchange_id: int, lines: list[dict], dialect: str) -> bool:
    """Whether `write` is one statement: the UPDATE alone (no lines), or with its lines in one
    CTE (PostgreSQL, few lines of this exchange). One statement is atomic by itself: it runs on
    the autocommit pool, one round trip instead of BEGIN, the statement and COMMIT."""
    return not lines or (len(lines) <= MAX_TOGETHER and dialect == "postgresql"
                         and all(each["exchange_id"] == exchange_id for each in lines))


_EXISTS = select(_TABLE.c.id).where(_TABLE.c.id == bindparam("b_id"))
_LOCK_ROW = _EXISTS.with_for_update(key_share=True)  # FOR NO KEY UPDATE: as an UPDATE locks it


@functools.lru_cache(maxsize=16)
def _with_signal(count: int, moment: str | None = None):
    """WITH saved AS (UPDATE exchange … RETURNING id), appended AS (INSERT INTO exchange_event
    … FROM saved) INSERT INTO exchange_signal … WHERE NOT EXISTS (the same event waiting) AND
    EXISTS (SELECT FROM saved): built once per count of lines and moment column (set to the
    signal's time unless already set)."""
    values = {"updated_at": bindparam("updated_at", type_=_TABLE.c.updated_at.type)}
    if moment:
        values[moment] = func.coalesce(_TABLE.c[moment],
                                       bindparam("updated_at", type_=_TABLE.c[moment].type))
    saved = sql_update(_TABLE).where(_TABLE.c.id == bindparam("b_id")).values(values) \
        .returning(_TABLE.c.id).cte("saved")
    rows = [select(saved.c.id, *(bindparam(f"{name}_{number}", type_=_EVENTS.c[name].type)
                                 for name in _LINE)) for number in range(count)]
    appended = insert(_EVENTS).from_select(["exchange_id", *_LINE],
                                           union_all(*rows) if count > 1 else rows[0]) \
        .returning(_EVENTS.c.id).cte("appended")
    return record_statement(select(saved.c.id).exists()).add_cte(appended)


def pending(exchange_id: int) -> tuple[list[dict], dict]:
    """Take the lines and fields waiting in this exchange's step (the caller writes them)."""
    step = _step(exchange_id)
    if step is None:
        return [], {}
    taken = step.lines, step.fields
    step.lines, step.fields = [], {}
    return taken


def _save(exchange_id: int, lines: list[dict], fields: dict, *, now: bool) -> None:
    step = _step(exchange_id)
    if step is not None:
        step.lines.extend(lines)
        step.fields.update(fields)
        if not now or step.held:
            return
        lines, fields = pending(exchange_id)
    if lines or fields:
        write_now(exchange_id, lines, fields)


def write_now(exchange_id: int, lines: list[dict], fields: dict) -> None:
    """`write` in a transaction of its own: on the autocommit pool when it is one statement
    (`alone`), else BEGIN … COMMIT around its two (SQLite, many lines)."""
    one = alone(exchange_id, lines, db.engine().dialect.name)
    with db.autocommit() if one else db.transaction() as connection:
        write(exchange_id, lines, fields, connection=connection)


def note(exchange_id: int, what: str, outcome: str = "ok", kind: str = "call", *,
         saving: dict | None = None, now: bool = False, **ids) -> None:
    """A timeline line (an outside call, a warning, a webhook). `saving`: fields of the exchange
    saved with it, at once; `now`: written at once even during a step (see above)."""
    _save(exchange_id, [line(exchange_id, kind, what, outcome, **ids)], saving or {},
          now=now or saving is not None)


def update(exchange_id: int, **fields) -> None:
    """Save fields of an exchange at once, with any lines waiting (steps save each id as soon
    as they have it): the row is not read first. LookupError when the exchange is gone."""
    _save(exchange_id, [], fields, now=True)


def stage(exchange_id: int, **fields) -> None:
    """Fields read from outside, saved with the step's next write (at once outside a step)."""
    _save(exchange_id, [], fields, now=False)


@contextmanager
def together(exchange_id: int) -> Iterator[None]:
    """The lines and saves of the block in one transaction, at its end (a call's line and the
    lines about how it was made, never one without the other)."""
    with contextlib.ExitStack() as stack:
        if _step(exchange_id) is None:
            stack.enter_context(step_writes(exchange_id))
        step = _step(exchange_id)
        step.held = True
        try:
            yield
        finally:  # after an error the lines wait for the step's error or needs attention
            step.held = False
        _save(exchange_id, [], {}, now=True)


def mark_once(exchange_id: int, column: str, *, connection: Connection | None = None) -> None:
    """Set a moment column (return_closed_at, returned_in_ongoing_at) now, unless already set;
    in the caller's transaction when given one."""
    if connection is None:
        with db.autocommit() as c:  # one UPDATE: its own transaction
            return mark_once(exchange_id, column, connection=c)
    execute(connection, _mark_statement(column), {"b_id": exchange_id, column: utcnow()},
            columns=True)


@functools.cache
def _mark_statement(column: str):
    table = Exchange.__table__
    return sql_update(table).where(table.c.id == bindparam("b_id"), table.c[column].is_(None))
