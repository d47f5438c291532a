"""Model objects from rows read with Core, built the way the ORM loads them.

`Exchange(**row._mapping)` runs SQLModel's constructor: SQLAlchemy's instrumented __init__,
then one pydantic-and-instrumented setattr per field (about 0.3 ms for an exchange, several
times per exchange in the worker). A loaded row needs none of it: the values are the row's,
already converted by the column types. So, as SQLAlchemy's loading does, the instance is made
with its class manager (SQLModel's __new__ sets pydantic's own attributes, the manager the
instance state) and the values go straight into its __dict__. Attribute reads, later changes
(setattr, still instrumented), `object_session` and `set_committed_value` work as on any
model object; no session tracks it.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import configure_mappers
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)


def unattached(cls: type[M], values: Mapping, *, persistent: bool = False) -> M:
    """An instance of the table class `cls` holding `values` (a row's mapping: its columns by
    key), in no session. As constructed from them: every given field counts as set (pydantic's
    fields set). `persistent`: the instance carries the row's identity, as one the ORM loaded
    and whose session closed (detached): adding it to a session updates that row, not inserts
    a new one."""
    # As the constructor does: until the mappers are configured (by the process's first ORM
    # statement or constructor) the class's attributes cannot be read at all.
    configure_mappers()
    manager = cls._sa_class_manager
    instance = manager.new_instance()
    instance.__dict__.update(values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values.keys()))
    if persistent:
        state = instance._sa_instance_state
        state.key = manager.mapper.identity_key_from_primary_key(
            [values[column.key] for column in manager.mapper.primary_key])
    return instance


def new_values(cls: type[M], **values) -> dict:
    """Every column's value of a new row of `cls`, as its constructor would fill them: the
    given ones, else each field's default (its factory called: a fresh list, the time now);
    the primary key only when given (the database numbers the row). For a Core INSERT of a row
    that then needs no model object built first."""
    return {key: factory() for key, factory in _defaults(cls)} | values


@functools.cache
def _defaults(cls: type[SQLModel]) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """(column, what makes its default) of each column with one but the primary key: the
    field's factory, or its value (copied when mutable, as pydantic's get_default does); read
    once per class (pydantic's get_default inspects the factory's signature on every call)."""
    made = []
    for column in cls.__table__.columns:
        field = cls.model_fields[column.key]
        if column.primary_key or field.is_required():
            continue
        if field.default_factory is not None:
            made.append((column.key, field.default_factory))
        elif isinstance(field.default, (type(None), bool, int, float, str)):
            made.append((column.key, functools.partial(_same, field.default)))
        else:
            made.append((column.key, functools.partial(copy.deepcopy, field.default)))
    return tuple(made)


def _same(value: Any) -> Any:
    return value
