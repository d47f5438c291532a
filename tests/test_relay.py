"""The relay (jobs/relay.py): the outbox of recorded deliveries moved to RQ by one lease holder,
polling every few tens of milliseconds; each poll one plain statement on a held connection."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import event, text

from jobs import relay
from jobs.queue import jobs
from jobs.relay import Outbox, Relay, relay_all, relay_once
from models import db
from models.delivery import record_delivery, unqueued
from tests.conftest import SHOP
from tests.test_webhooks_shopify import APPROVE, deliveries


@pytest.fixture
def relays(app):
    """Start relay threads on the app; every one is stopped and joined at the end."""
    started: list[tuple[threading.Event, threading.Thread]] = []

    def start() -> threading.Event:
        stop = threading.Event()
        started.append((stop, Relay(app, stop).start()))
        return stop

    yield start
    for stop, _ in started:
        stop.set()
    if db.engine().dialect.name == "postgresql":  # a sleeping relay wakes to see its stop
        with db.autocommit() as connection:
            connection.execute(text(f"SELECT pg_notify('{relay.WAKE_CHANNEL}', '')"))
    for _, thread in started:
        thread.join(timeout=10)


def wait_for(predicate, limit: float = 5.0) -> float:
    """Seconds until predicate() held; fails after `limit`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < limit, "not within the time limit"
        time.sleep(0.01)
    return time.monotonic() - started


def holder() -> bytes | None:
    return jobs().connection.get(relay.LOCK_NAME)


def test_relay_moves_in_batches_oldest_first_and_marks_each(app, post_webhook, monkeypatch):
    for n in range(5):
        post_webhook("returns/approve", APPROVE, webhook_id=f"wh-{n}")
    monkeypatch.setattr(relay, "BATCH", 2)
    assert relay_once() == 2
    rows = deliveries()
    assert [r.queued_at is not None for r in rows] == [True, True, False, False, False]
    assert relay_all() == 3 and relay_all() == 0  # two pages: 2, then 1
    assert jobs().queue.job_ids == [f"delivery-{r.id}" for r in rows]


def test_a_job_already_queued_counts_as_queued(app, post_webhook):
    from jobs.deliveries import enqueue_delivery

    post_webhook("returns/approve", APPROVE)
    [row] = deliveries()
    assert enqueue_delivery(row.id, row.shop_domain)  # e.g. a relay that died before marking
    assert relay_once() == 1 and jobs().queue.job_ids == [f"delivery-{row.id}"]


def delivery_jobs() -> list[str]:
    """The queued delivery jobs (a relay taking its lease in a fresh Redis also queues a sweep)."""
    return [j for j in jobs().queue.job_ids if j.startswith("delivery-")]


def test_a_new_delivery_is_queued_within_moments(app, post_webhook, relays):
    relays()
    wait_for(lambda: holder() is not None)
    for n in range(3):
        post_webhook("returns/approve", APPROVE, webhook_id=f"soon-{n}")
        took = wait_for(lambda n=n: len(delivery_jobs()) == n + 1, limit=2.0)
        assert took < 0.5  # a poll every POLL_SECONDS (30 ms); generous for a busy machine
    # the relay marks rows queued just after it queues their jobs
    wait_for(lambda: all(r.queued_at is not None for r in deliveries()), limit=2.0)


def test_one_relay_holds_the_lease_and_a_standby_takes_over(app, post_webhook, relays,
                                                            monkeypatch):
    first = relays()
    wait_for(lambda: holder() is not None)
    taken_by = holder()
    relays()
    time.sleep(2.5 * relay.STANDBY_SECONDS)
    assert holder() == taken_by  # the standby did not take it
    first.set()  # the holder stops (and gives the lease up)
    wait_for(lambda: holder() not in (None, taken_by), limit=3 * relay.STANDBY_SECONDS + 2)
    post_webhook("returns/approve", APPROVE, webhook_id="after-takeover")
    wait_for(lambda: len(delivery_jobs()) == 1, limit=3.0)


def test_the_relay_waits_out_redis_and_moves_the_rows_once_back(app, post_webhook, relays,
                                                                redis_down, monkeypatch):
    monkeypatch.setattr(relay, "RETRY_SECONDS", 0.1)
    assert post_webhook("returns/approve", APPROVE).get_json() == {"status": "queued"}
    relays()  # its app's queue points at a dead port: it cannot even take the lease
    time.sleep(0.5)
    [row] = deliveries()
    assert row.queued_at is None
    monkeypatch.undo()  # Redis is back
    wait_for(lambda: delivery_jobs() == [f"delivery-{row.id}"], limit=5.0)


def test_the_relay_sweeps_at_once_when_redis_lost_its_data(app, relays, post_webhook):
    """Redis came back empty: the relay that takes the lease queues the lost jobs again at once,
    itself and without the grace period (once: the mark is back)."""
    from jobs.sweeper import KEPT_MARK, sweep_if_redis_was_emptied

    post_webhook("returns/approve", APPROVE)
    assert relay_once() == 1  # queued, and marked so
    [row] = deliveries()
    jobs().queue.empty()  # the wipe: the job is gone, the row says it was queued
    jobs().connection.delete(KEPT_MARK)
    relays()
    wait_for(lambda: delivery_jobs() == [f"delivery-{row.id}"], limit=3.0)
    assert sweep_if_redis_was_emptied() is False


def test_the_outbox_reads_what_unqueued_reads(app, post_webhook, monkeypatch):
    for n in range(4):
        post_webhook("returns/approve", APPROVE, webhook_id=f"poll-{n}")
    monkeypatch.setattr(relay, "BATCH", 1)
    assert relay_once() == 1  # the oldest is queued; three wait
    with db.autocommit() as connection:
        expected = unqueued(connection, limit=10)
        monkeypatch.setattr(relay, "BATCH", 10)
        read = Outbox(connection).unqueued()
    assert [tuple(row) for row in read] == expected
    assert [row[0] for row in read] == [r.id for r in deliveries()][1:]


@pytest.fixture
def statements(app):
    """SQLAlchemy statements run on either engine while the test runs (a list of their SQL)."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    engines = [db.engine(), app.extensions[db.AUTOCOMMIT]]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", note)


def test_an_idle_relay_runs_no_sqlalchemy_statement_per_poll(app, relays, statements):
    relays()
    wait_for(lambda: holder() is not None)
    time.sleep(0.2)
    statements.clear()
    time.sleep(10 * relay.POLL_SECONDS)  # about ten polls, each finding nothing
    assert statements == []


def postgresql_only() -> None:
    if db.engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no NOTIFY, its relay polls")


def wake_lock_holders() -> int:
    """Sessions holding the relay's wake lock (a sleeping relay)."""
    with db.autocommit() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
            "classid = :c AND objid = :o AND mode = 'ExclusiveLock' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            dict(zip("co", relay.WAKE_LOCK, strict=True))).scalar()


def test_an_idle_relay_sleeps_and_a_new_delivery_wakes_it(app, post_webhook, relays,
                                                          monkeypatch):
    """Idle, the relay stops polling and waits on the INSERT's NOTIFY: its timeout here is
    far longer than the test waits, so only the NOTIFY can have woken it."""
    postgresql_only()
    monkeypatch.setattr(relay, "IDLE_SECONDS", 0.2)
    monkeypatch.setattr(relay, "WAKE_CHECK_SECONDS", 60.0)
    polls = []
    read = Outbox.unqueued
    monkeypatch.setattr(Outbox, "unqueued", lambda self: polls.append(1) or read(self))
    relays()
    wait_for(lambda: wake_lock_holders() == 1)
    polls.clear()
    time.sleep(0.5)
    assert polls == []  # asleep: not one read in ten poll intervals
    for n in range(2):
        post_webhook("returns/approve", APPROVE, webhook_id=f"wakes-{n}")
        assert wait_for(lambda n=n: len(delivery_jobs()) == n + 1, limit=3.0) < 3.0
        wait_for(lambda: wake_lock_holders() == 1)  # asleep again once idle


def test_an_insert_notifies_only_while_the_relay_sleeps(app, post_webhook):
    postgresql_only()
    listener = psycopg.connect(db.engine().url.render_as_string(hide_password=False)
                               .replace("+psycopg", ""), autocommit=True)
    sleeper = psycopg.connect(listener.info.dsn, autocommit=True)
    with listener, sleeper:
        listener.execute(f"LISTEN {relay.WAKE_CHANNEL}")
        post_webhook("returns/approve", APPROVE, webhook_id="awake")
        assert list(listener.notifies(timeout=0.3)) == []
        sleeper.execute("SELECT pg_advisory_lock(%s, %s)", relay.WAKE_LOCK)
        post_webhook("returns/approve", APPROVE, webhook_id="asleep")
        assert [n.channel for n in listener.notifies(timeout=3, stop_after=1)] == \
            [relay.WAKE_CHANNEL]


def test_no_sleep_while_an_insert_that_sent_no_notify_is_in_flight(app):
    """An INSERT whose trigger ran before the relay tried its wake lock sent no NOTIFY, and
    holds the lock shared until it commits: the relay gets no lock, sleeps not, and its next
    read after the commit finds the row."""
    postgresql_only()
    with db.autocommit() as connection:
        outbox = Outbox(connection)
        with db.transaction() as inserting:
            record_delivery(inserting, source="shopify", delivery_id="in-flight",
                            shop_domain=SHOP, topic="returns/approve", payload="{}")
            started = time.monotonic()
            assert outbox.sleep(30.0) is False
            assert time.monotonic() - started < 1.0
        assert [shop for _, shop in outbox.unqueued()] == [SHOP]
        assert outbox.sleep(0.0) is True  # committed and read: nothing holds the lock now
        outbox.close()


def test_a_wake_lock_held_elsewhere_leaves_the_relay_polling(app, post_webhook, relays,
                                                              monkeypatch, caplog):
    """A session that is not a sleeping relay of ours holds the lock (a stale one, say): the
    relay does not wait for it, it polls, and says so once."""
    postgresql_only()
    monkeypatch.setattr(relay, "IDLE_SECONDS", 0.1)
    monkeypatch.setattr(relay, "WAKE_REFUSED_WARNING", 3)
    holder_session = psycopg.connect(db.engine().url.render_as_string(hide_password=False)
                                     .replace("+psycopg", ""), autocommit=True)
    with holder_session:
        holder_session.execute("SELECT pg_advisory_lock(%s, %s)", relay.WAKE_LOCK)
        relays()
        wait_for(lambda: holder() is not None)
        time.sleep(0.5)  # idle long enough to want to sleep
        post_webhook("returns/approve", APPROVE, webhook_id="while-held")
        wait_for(lambda: len(delivery_jobs()) == 1, limit=3.0)
        time.sleep(0.5)
    said = [r for r in caplog.records if r.getMessage().startswith("relay cannot sleep")]
    assert len(said) == 1 and said[0].levelname == "WARNING"


def test_a_database_connection_lost_under_the_relay_is_replaced(app, post_webhook, relays,
                                                                monkeypatch):
    """The poll's connection dies (here: its next read fails); the relay pauses, takes a fresh
    connection and moves what came in meanwhile."""
    monkeypatch.setattr(relay, "RETRY_SECONDS", 0.1)
    broken = threading.Event()
    read = Outbox.unqueued

    def fails_once(self):
        if not broken.is_set():
            broken.set()
            raise RuntimeError("server closed the connection unexpectedly")
        return read(self)

    monkeypatch.setattr(Outbox, "unqueued", fails_once)
    relays()
    wait_for(broken.is_set)
    post_webhook("returns/approve", APPROVE, webhook_id="after-loss")
    wait_for(lambda: len(delivery_jobs()) == 1, limit=3.0)


def test_a_backend_terminated_under_the_relay_is_replaced(app, post_webhook, relays):
    """PostgreSQL ends the relay's session (a restart, an admin): the next lease's connection
    is a new one, and webhooks move again."""
    if db.engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server session to end")
    relays()

    def end_the_relays_session() -> bool:
        with db.autocommit() as connection:
            return bool(connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid() AND query LIKE "
                "'%queued_at IS NULL%'")).all())

    wait_for(end_the_relays_session)
    post_webhook("returns/approve", APPROVE, webhook_id="after-terminate")
    wait_for(lambda: len(delivery_jobs()) == 1, limit=5.0)


def test_a_batch_is_queued_in_one_round_trip_even_after_a_script_flush(app, post_webhook,
                                                                       round_trips):
    """The relay's rows go to RQ in one pipeline of RQ's unique-enqueue script calls (one round
    trip per delivery before); a Redis that forgot its scripts has them loaded again."""
    for n in range(6):
        post_webhook("returns/approve", APPROVE, webhook_id=f"wh-batch-{n}")
    jobs().connection.script_flush()
    assert relay_once(limit=2) == 2  # NOSCRIPT: loaded, sent again
    round_trips.clear()
    assert relay_once() == 4
    assert len(round_trips) == 1
    assert jobs().queue.job_ids == [f"delivery-{r.id}" for r in deliveries()]
