"""Micro-benchmark (not collected by default): CPU per call of the SQL paths this branch
changed, old way against new, on the test database. Run with
    .venv/bin/pytest -q -s -p no:cacheprovider tests/bench_sql_paths.py"""
from __future__ import annotations

import time

from clients.shopify_tokens import tokens
from models import crypto, db
from models.shop import get_shop

N = 2000


def _cpu_us(func, n: int = N) -> float:
    func()
    start = time.process_time()
    for _ in range(n):
        func()
    return (time.process_time() - start) / n * 1e6


def test_token_read(app, world):
    world.setup()
    store = tokens()

    def old():
        with db.session() as s:
            shop = get_shop(world.domain, session=s)
            return crypto.decrypt_current(shop.access_token_enc)[0]

    def new():
        return store._read_or_refresh(world.domain, None)[0]

    assert old() == new()
    print(f"\ntoken read: old {_cpu_us(old):.0f} us, new {_cpu_us(new):.0f} us CPU")  # noqa: T201


def test_exchange_read(app, world):
    from models.exchange import _READ, Exchange, read_exchange
    from models.rows import unattached

    world.setup().approve()
    world.run_jobs()
    exchange_id = world.exchange().id

    def old():
        with db.autocommit() as connection:
            row = connection.execute(_READ, {"b_id": exchange_id}).first()
            return unattached(Exchange, row._mapping)

    def new():
        with db.autocommit() as connection:
            return read_exchange(exchange_id, connection=connection)

    assert old().model_dump() == new().model_dump()
    print(f"\nexchange read: old {_cpu_us(old):.0f} us, new {_cpu_us(new):.0f} us CPU")  # noqa: T201


def test_connection_overhead(app):
    def autocommit():
        with db.autocommit():
            pass

    def transaction():
        with db.transaction():
            pass

    print(f"\nautocommit checkout {_cpu_us(autocommit):.0f} us, "  # noqa: T201
          f"transaction {_cpu_us(transaction):.0f} us CPU")


def test_webhook_line_and_signal(app, world):
    """A webhook's line and its signal (the same event waiting after the first: None)."""
    from models.exchange_signal import record_signal
    from models.exchange_writes import line, write, write_with_signal

    world.setup().approve()
    world.run_jobs()
    exchange_id = world.exchange().id

    def old():
        with db.transaction() as connection:
            write(exchange_id, [line(exchange_id, "webhook", "bench", "old")], {},
                  connection=connection)
            return record_signal(exchange_id, "release", "bench", connection=connection)

    def new():
        with db.autocommit() as connection:
            return write_with_signal(exchange_id, [line(exchange_id, "webhook", "bench", "new")],
                                     "release", "bench", taken=True, connection=connection)

    print(f"\nline + signal: old {_cpu_us(old, 500):.0f} us, "  # noqa: T201
          f"new {_cpu_us(new, 500):.0f} us CPU")
