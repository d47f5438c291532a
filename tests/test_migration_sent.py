"""Revision 0007 rewrites the stored event `shipped` as `sent` and the step `ship` as `fulfil`
(README "Words"), and renames exchange.shipped_at to sent_at; the downgrade undoes both."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import inspect, text

from models import db, migrate
from tests.conftest import PG_ADMIN

NOW = "2026-11-30 12:00:00+00:00"
ROWS = [
    "INSERT INTO exchange (id, shop_domain, return_gid, order_gid, order_name, state, "
    "attention_step, items, returned_items, line_item_gids, created_at, updated_at, shipped_at, "
    "attention_transient) VALUES (1, 's.myshopify.com', 'r', 'o', '#1', 'needs_attention', "
    f"'released:shipped', '[]', '[]', '[]', '{NOW}', '{NOW}', '{NOW}', false)",
    "INSERT INTO exchange_signal (exchange_id, event, source, created_at, attempts) "
    f"VALUES (1, 'shipped', 'Ongoing webhook 7', '{NOW}', 0)",
    "INSERT INTO exchange_event (exchange_id, at, kind, name, outcome, detail) VALUES "
    f"(1, '{NOW}', 'ignored', 'shipped', 'not applicable in state completed', NULL), "
    f"(1, '{NOW}', 'transition', 'released → fulfilled', 'ship: fulfilled with tracking T1', "
    "NULL), "
    f"(1, '{NOW}', 'transition', 'released → needs_attention', 'Shopify said no', "
    "'{\"step\": \"ship\"}')",
]


def _stored(engine) -> tuple:
    with engine.connect() as c:
        return (c.execute(text("SELECT attention_step FROM exchange")).scalar(),
                c.execute(text("SELECT event FROM exchange_signal")).scalar(),
                c.execute(text("SELECT name, outcome, detail FROM exchange_event ORDER BY id"))
                .all())


def _round_trip(url: str) -> None:
    engine = db.engine_for(url)
    migrate.upgrade(engine, "0006")
    with engine.begin() as c:
        for row in ROWS:
            c.execute(text(row))
    before = _stored(engine)
    migrate.upgrade(engine, "0007")
    step, event, timeline = _stored(engine)
    assert (step, event) == ("released:sent", "sent")
    assert timeline[0][0] == "sent"
    assert timeline[1][1] == "fulfil: fulfilled with tracking T1"
    assert timeline[2][2] == '{"step": "fulfil"}'
    assert "sent_at" in {c["name"] for c in inspect(engine).get_columns("exchange")}
    migrate.downgrade(engine, "0006")
    assert _stored(engine) == before
    engine.dispose()


def test_0007_on_sqlite(tmp_path):
    _round_trip(f"sqlite:///{tmp_path / 'm.db'}")


def test_0007_on_postgresql(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL is not reachable on this machine")
    name = f"swapline_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _round_trip(f"postgresql://postgres@127.0.0.1:5432/{name}")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
