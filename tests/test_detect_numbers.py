"""Two returns of one order detected at the same moment get two Ongoing order numbers (a shared
number would be one Ongoing order: PUT /orders upserts by number, the second exchange's lines
replacing the first's)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, text

from clients import shopify_admin as shop_api
from jobs import exchange_triggers
from models import db


def _waiting_on_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).first())


def test_two_returns_of_one_order_detected_at_once_get_two_numbers(app, world):
    engine = db.engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writers take the whole database in turn")
    world.setup(lines=2)
    returns = [shop_api.read_return(world.domain, world.ret_for(world.order)["id"])
               for _ in range(2)]
    made: dict[str, str] = {}
    first_inserted, go_on = threading.Event(), threading.Event()

    def detect(name: str, ret: dict) -> None:
        with app.app_context():
            made[name] = exchange_triggers._new_exchange(world.domain, ret).ongoing_order_number

    def hold_the_first_commit(connection) -> None:
        if threading.current_thread().name == "first":
            first_inserted.set()
            go_on.wait(10)

    event.listen(engine, "commit", hold_the_first_commit)
    try:
        first = threading.Thread(target=detect, args=("first", returns[0]), name="first")
        first.start()
        assert first_inserted.wait(10)
        second = threading.Thread(target=detect, args=("second", returns[1]), name="second")
        second.start()
        deadline = time.monotonic() + 3  # with the lock it waits; without, it is done at once
        while second.is_alive() and not _waiting_on_a_lock(engine) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        go_on.set()
        first.join(10)
        second.join(10)
    finally:
        go_on.set()
        event.remove(engine, "commit", hold_the_first_commit)
    assert sorted(made) == ["first", "second"]
    assert made["first"] != made["second"], made
    assert {made["first"][-2:], made["second"][-2:]} == {"-1", "-2"}


def test_the_same_return_detected_twice_makes_one_exchange(app, world):
    """The second detection's INSERT hits the unique return: no second exchange, no error."""
    world.setup()
    ret = shop_api.read_return(world.domain, world.ret_for(world.order)["id"])
    first = exchange_triggers._new_exchange(world.domain, ret)
    assert first is not None and first.ongoing_order_number.endswith("-1")
    assert exchange_triggers._new_exchange(world.domain, ret) is None
    with db.autocommit() as connection:
        assert connection.execute(text("SELECT count(*) FROM exchange")).scalar() == 1
