"""The relay: moves recorded deliveries whose job was never queued (the outbox) to RQ.

A webhook request only inserts its row (blueprints/intake.py); queueing happens here, in a thread
of every worker process (jobs/worker.py). One relay at a time works, the holder of the relay lease
(a LeasedLock in Redis, renewed while it lives); the others stand by and try for it every
STANDBY_SECONDS, so a dead holder's place is taken within about LEASE_SECONDS + STANDBY_SECONDS.
The holder polls every POLL_SECONDS (an indexed read of an almost empty partial index) while
webhooks come in: a webhook's job is queued within about POLL_SECONDS of its 200, inside the 100 ms
(p99) an idle queue has to start it. Each poll and its wait cost ~0.3 ms of CPU (a thread woken 20
times a second: ~6 ms/s, most of an idle worker's CPU), so on PostgreSQL a holder whose polls found
nothing for IDLE_SECONDS sleeps instead: it holds the advisory lock WAKE_LOCK and LISTENs, and the
INSERT of a delivery NOTIFYs only while that lock is held (the trigger of migration 0012): the
sleeper wakes within a few ms of the commit and polls again. While it is awake no commit NOTIFYs
(commits that NOTIFY take turns, which cost about 30% of the stored webhooks/s in
bench.webhook_ingest when every INSERT did). An INSERT that ran its trigger just before holds the
lock shared until it commits: the relay does not get it then (a try, never a wait: a stale session
holding it must not stop the relay) and polls on, its next read sees the row; once it holds the
lock, its first read sees every row committed before. A sleep lasts at most WAKE_CHECK_SECONDS,
then the loop checks the lease and whether it is asked to stop. SQLite has no NOTIFY: it polls.
Most polls find nothing, so a poll is one plain statement on a DB-API cursor held with the lease
(Outbox), not a SQLAlchemy query with a pool checkout each time: an idle worker spent ~23 ms of CPU
a second on them. Redis down: nothing moves and it tries again every RETRY_SECONDS; the row is the
truth. Jobs queued and then lost (Redis restarted without its data) are the sweeper's: the relay
that takes the lease after a wipe has it sweep at once.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis
from flask import Flask
from redis.exceptions import LockError
from sqlalchemy.engine import Connection

from jobs.deliveries import enqueue_deliveries
from jobs.queue import jobs
from jobs.sweeper import sweep_if_redis_was_emptied
from models import db
from models.delivery import mark_queued, unqueued, unqueued_query
from models.plain_sql import plain

BATCH = 500
LOCK_NAME = "swapline:relay"
HOLD_SECONDS = 300  # the lease is given up and taken again this often (LeasedLock's timeout)
OWNED_CHECK_SECONDS = 5.0  # a Redis that lost its data lost the lease too: stand by then
STANDBY_SECONDS = 2.0  # a standby's try: a SET and ~1 ms of CPU; a takeover waits 15 s anyway
POLL_SECONDS = 0.05
IDLE_SECONDS = 1.0  # polls found nothing this long: sleep until woken (PostgreSQL)
WAKE_CHECK_SECONDS = 1.0  # a sleep's longest: then the lease and the stop are looked at
WAKE_CHANNEL = "swapline_outbox"
WAKE_LOCK = (1937207404, 1)  # ("swpl", 1): migration 0012's trigger tries it shared
WAKE_REFUSED_WARNING = 100  # idle polls in a row without the wake lock (~5 s): said once a lease
RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)


def relay_once(limit: int | None = None) -> int:
    """Queue the jobs of up to `limit` (BATCH) unqueued deliveries, oldest first, and mark them
    queued (a job that was there already counts as queued); how many. A Redis error propagates,
    none marked."""
    with db.autocommit() as connection:
        rows = unqueued(connection, limit=limit or BATCH)
    return _queue(rows)


def _queue(rows: list[tuple[int, str]]) -> int:
    """Queue the deliveries' jobs, in one round trip, and mark them queued; how many. After a
    Redis error none is marked: the next try finds any that were queued there already."""
    if not rows:
        return 0
    enqueue_deliveries(rows)
    with db.autocommit() as connection:
        mark_queued(connection, [delivery_id for delivery_id, _ in rows])
    return len(rows)


def relay_all() -> int:
    """Relay until the outbox is empty (burst workers, tests, the demo's self-check); how many."""
    total = moved = relay_once()
    while moved == BATCH:
        moved = relay_once()
        total += moved
    return total


class Outbox:
    """The relay loop's read of the outbox: `unqueued` as plain SQL, compiled once, run on the
    DB-API cursor of one autocommit connection held while the lease is (psycopg prepares it on
    the server after a few runs). An empty poll then costs a round trip and little else. On
    PostgreSQL the connection LISTENs for the INSERTs' wake-up (`sleep`)."""

    def __init__(self, connection: Connection):
        self.sql = plain(unqueued_query(BATCH), connection.dialect, literal=True).sql
        self.dbapi = connection.connection.dbapi_connection
        self.cursor = self.dbapi.cursor()
        self.can_sleep = connection.dialect.name == "postgresql"
        if self.can_sleep:
            self.cursor.execute(f"LISTEN {WAKE_CHANNEL}")

    def unqueued(self) -> list[tuple[int, str]]:
        """(id, shop) of the first BATCH deliveries whose job was never queued, oldest first."""
        self.cursor.execute(self.sql)
        return self.cursor.fetchall()

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds` for a delivery's INSERT to NOTIFY, holding WAKE_LOCK meanwhile
        (the trigger NOTIFYs only then); at once when one waits already. False, at once, when
        the lock is held elsewhere: by an INSERT that tried it before (its row is the next
        poll's), or by a session that is not ours to wait for (a relay's stale session)."""
        self.cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", WAKE_LOCK)
        if not self.cursor.fetchone()[0]:
            return False
        try:
            if not self.unqueued():
                for _ in self.dbapi.notifies(timeout=seconds, stop_after=1):
                    pass
        finally:
            self.cursor.execute("SELECT pg_advisory_unlock(%s, %s)", WAKE_LOCK)
        return True

    def close(self) -> None:
        """Stop listening: the connection goes back to the pool."""
        if self.can_sleep:
            self.cursor.execute(f"UNLISTEN {WAKE_CHANNEL}")


class Relay:
    """The relay loop of one worker process: stand by for the lease, then relay while held."""

    def __init__(self, app: Flask, stop: threading.Event):
        self.app, self.stop = app, stop

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True, name="swapline-relay")
        thread.start()
        return thread

    def run(self) -> None:
        with self.app.app_context():
            while not self.stop.is_set():
                try:
                    self._serve()
                except Exception as exc:  # Redis or the database away: the rows wait for us
                    log.warning("relay paused: %s: %s", type(exc).__name__, exc)
                    self.stop.wait(RETRY_SECONDS)

    def _serve(self) -> None:
        """Take the lease (or stand by a while); relay until it is time to give it up."""
        lock = jobs().lock(LOCK_NAME, timeout=HOLD_SECONDS, blocking_timeout=0)
        if not lock.acquire(blocking=False):
            self.stop.wait(STANDBY_SECONDS)
            return
        log.info("relay lease taken")
        sweep_if_redis_was_emptied()  # the lease is free after a wipe: this is the first to see it
        try:
            with db.autocommit() as connection:
                try:
                    outbox = Outbox(connection)
                    self._poll(outbox, lock)
                    outbox.close()
                except Exception:  # a broken connection is not handed back to the pool
                    connection.invalidate()
                    raise
        finally:
            with contextlib.suppress(LockError, redis.RedisError):  # expired or Redis away
                lock.release()

    def _poll(self, outbox: Outbox, lock) -> None:
        """Relay every POLL_SECONDS (or sleep when idle, see above) until the lease is due to
        be given up, lost, or stopped."""
        give_up = time.monotonic() + HOLD_SECONDS - OWNED_CHECK_SECONDS
        checked = found = time.monotonic()
        refused, warned = 0, False  # idle polls in a row that found the wake lock taken
        while not self.stop.is_set() and time.monotonic() < give_up:
            rows = outbox.unqueued()
            if rows:
                found = time.monotonic()
            if not rows or _queue(rows) < BATCH:
                idle = outbox.can_sleep and time.monotonic() - found >= IDLE_SECONDS
                slept = idle and outbox.sleep(WAKE_CHECK_SECONDS)
                refused = 0 if slept or not idle else refused + 1
                if refused == WAKE_REFUSED_WARNING and not warned:
                    warned = True
                    log.warning("relay cannot sleep: another database session holds its wake "
                                "lock (pg_locks: advisory %s/%s); it polls, and every webhook "
                                "INSERT NOTIFYs meanwhile", *WAKE_LOCK)
                if not slept:
                    self.stop.wait(POLL_SECONDS)
            if time.monotonic() - checked >= OWNED_CHECK_SECONDS:
                checked = time.monotonic()
                if not lock.owned():
                    log.warning("relay lease lost; standing by")
                    return
