"""A step's timeline lines wait for its next save and are written with it, in order and with
the moment each was noted; saves, and lines about outside writes a re-run would not repeat,
are written at once; a failing step still writes what it noted before it failed."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from models import db
from models.exchange import Exchange, timeline
from models.exchange_writes import note, stage, step_writes, together, update


@pytest.fixture
def exchange_id(parked_exchange) -> int:
    return parked_exchange


@pytest.fixture
def commits(app):
    """Transactions that wrote, from now on: commits on the app's engine, and each write on the
    autocommit one (one statement, its own transaction; the test's reads there not counted)."""
    seen: list[int] = []
    engine, alone = app.extensions[db.EXTENSION], app.extensions[db.AUTOCOMMIT]
    listener = lambda _conn: seen.append(1)  # noqa: E731

    def statement(_conn, _cursor, text, *_args):
        if text.lstrip().split()[0].upper() != "SELECT":
            seen.append(1)

    event.listen(engine, "commit", listener)
    event.listen(alone, "before_cursor_execute", statement)
    yield seen
    event.remove(engine, "commit", listener)
    event.remove(alone, "before_cursor_execute", statement)


def lines(exchange_id: int) -> list[tuple[str, str]]:
    with db.autocommit_session() as s:  # reads off the counted engine
        return [(e.name, e.outcome) for e in timeline(exchange_id, session=s)]


def saved(exchange_id: int) -> Exchange:
    with db.autocommit_session() as s:
        return s.get(Exchange, exchange_id)


def test_outside_a_step_each_note_is_written_at_once(exchange_id, commits):
    note(exchange_id, "webhook returns/close", "release", kind="webhook")
    assert lines(exchange_id) == [("webhook returns/close", "release")] and len(commits) == 1


def test_lines_wait_for_the_step_s_next_save_and_keep_order_and_time(exchange_id, commits):
    with step_writes(exchange_id):
        note(exchange_id, "Ongoing GET /articles", "stock ok")
        stage(exchange_id, ongoing_status=200)
        note(exchange_id, "Shopify tagsAdd", "order tagged swapline-exchange")
        assert lines(exchange_id) == [] and not commits
        update(exchange_id, ongoing_return_order_id=9001)  # a save: now, with what waits
        assert len(commits) == 1
        note(exchange_id, "Connector check", "no other open order")
    assert lines(exchange_id) == [("Ongoing GET /articles", "stock ok"),
                                  ("Shopify tagsAdd", "order tagged swapline-exchange")]
    row = saved(exchange_id)
    assert (row.ongoing_status, row.ongoing_return_order_id) == (200, 9001)
    with db.session() as s:
        stamps = [e.at for e in timeline(exchange_id, session=s)]
    assert stamps[0] <= stamps[1] <= row.updated_at
    assert stamps[0] < stamps[1]  # each line keeps the moment it was noted


def test_a_call_that_a_re_run_would_not_repeat_is_written_at_once(exchange_id):
    with step_writes(exchange_id):
        note(exchange_id, "Shopify tagsAdd", "order tagged")
        note(exchange_id, "Shopify returnProcess", "exchange items processed", now=True)
        assert lines(exchange_id) == [("Shopify tagsAdd", "order tagged"),
                                      ("Shopify returnProcess", "exchange items processed")]


def test_together_writes_a_call_and_its_lines_in_one_transaction(exchange_id, commits):
    with step_writes(exchange_id):
        with together(exchange_id):
            note(exchange_id, "Ongoing PUT /orders", "order EXCH-1001-1",
                 saving={"ongoing_order_id": 50001})
            note(exchange_id, "Shipping", "like the original order")
            assert not commits
        assert len(commits) == 1
    assert lines(exchange_id) == [("Ongoing PUT /orders", "order EXCH-1001-1"),
                                  ("Shipping", "like the original order")]
    assert saved(exchange_id).ongoing_order_id == 50001


def test_a_save_of_a_gone_exchange_fails_loudly(exchange_id):
    with db.session() as s:
        s.delete(s.get(Exchange, exchange_id))
    with pytest.raises(LookupError):
        update(exchange_id, ongoing_status=200)


def test_a_step_that_fails_writes_what_it_noted_before_with_its_reason(world, monkeypatch):
    """The connector check's line waits; release then fails for a person: both are written."""
    from clients.ongoing import OngoingClient
    from jobs.exchange_rules import NeedsAttention

    world.setup().approve()
    world.run_jobs()

    def refused(self, order_id, status):
        raise NeedsAttention("Ongoing refused the status change")

    monkeypatch.setattr(OngoingClient, "set_order_status", refused)
    world.close()
    world.run_jobs()
    names = [e.name for e in world.timeline()]
    moved = names.index("parked → needs_attention")
    assert names[moved - 1] == "Connector check", names
