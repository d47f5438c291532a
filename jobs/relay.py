"""The relay: moves recorded deliveries whose job was never queued (the outbox) to RQ.

A webhook request only inserts its row (blueprints/intake.py); queueing happens here, in a thread
of every worker process (jobs/worker.py). One relay at a time works, the holder of the relay lease
(a LeasedLock in Redis, renewed while it lives); the others stand by and try for it every
STANDBY_SECONDS, so a dead holder's place is taken within about LEASE_SECONDS + STANDBY_SECONDS.
The holder polls every POLL_SECONDS (an indexed read of an almost empty partial index, 20 a second
from one process): a webhook's job is queued within about POLL_SECONDS of its 200, inside the 100
ms (p99) an idle queue has to start it; each poll and its wait cost ~0.3 ms of CPU, and at 30 ms
they were ~10 of an idle worker's ~11 ms/s. Not PostgreSQL's LISTEN/NOTIFY: commits that NOTIFY
take turns, which cost about 30% of the stored webhooks/s (bench.webhook_ingest, 325 against 468
req/s). Most polls find nothing, so a poll is one plain statement on a DB-API cursor held with the
lease (Outbox), not a SQLAlchemy query with a pool checkout each time: an idle worker spent ~23 ms
of CPU a second on them. Redis down: nothing moves and it tries again every RETRY_SECONDS; the row
is the truth. Jobs queued and then lost (Redis restarted without its data) are the sweeper's: the
relay that takes the lease after a wipe has it sweep at once.
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
    the server after a few runs). An empty poll then costs a round trip and little else."""

    def __init__(self, connection: Connection):
        self.sql = plain(unqueued_query(BATCH), connection.dialect, literal=True).sql
        self.cursor = connection.connection.dbapi_connection.cursor()

    def unqueued(self) -> list[tuple[int, str]]:
        """(id, shop) of the first BATCH deliveries whose job was never queued, oldest first."""
        self.cursor.execute(self.sql)
        return self.cursor.fetchall()


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
                    self._poll(Outbox(connection), lock)
                except Exception:  # a broken connection is not handed back to the pool
                    connection.invalidate()
                    raise
        finally:
            with contextlib.suppress(LockError, redis.RedisError):  # expired or Redis away
                lock.release()

    def _poll(self, outbox: Outbox, lock) -> None:
        """Relay every POLL_SECONDS until the lease is due to be given up, lost, or stopped."""
        give_up = time.monotonic() + HOLD_SECONDS - OWNED_CHECK_SECONDS
        checked = time.monotonic()
        while not self.stop.is_set() and time.monotonic() < give_up:
            rows = outbox.unqueued()
            if not rows or _queue(rows) < BATCH:
                self.stop.wait(POLL_SECONDS)
            if time.monotonic() - checked >= OWNED_CHECK_SECONDS:
                checked = time.monotonic()
                if not lock.owned():
                    log.warning("relay lease lost; standing by")
                    return
