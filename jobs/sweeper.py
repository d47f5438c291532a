"""The sweeper: the database records the work, Redis only wakes the jobs.

Every minute it queues again what was recorded but whose job is gone (Redis restarted or lost
it, a worker died past its retries): webhook deliveries queued by the relay (jobs/relay.py) but
never processed, exchange signals never applied. A job still queued, running or waiting for
its retry is left alone.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

import redis

from jobs.deliveries import delivery_job_id, enqueue_delivery
from jobs.lifecycle import enqueue_signal, signal_job_id
from jobs.queue import forget_ended_job, jobs
from models import db
from models.delivery import unprocessed
from models.exchange_signal import pending

log = logging.getLogger(__name__)
KEPT_MARK = "swapline:redis-kept"  # absent: this Redis is new or lost its data
PAGE, MAX_PAGES = 500, 40  # up to 20,000 rows of each kind per run


def sweep(grace_seconds: int = 30) -> dict[str, int]:
    """Queue stray deliveries and signals recorded at least `grace_seconds` ago; the counts.

    Reads in pages of PAGE rows, up to MAX_PAGES each: after a Redis restart thousands of jobs
    may be gone at once, and they should come back in this run, not 500 a minute."""
    older_than = timedelta(seconds=grace_seconds)
    counts = {
        "deliveries": _requeue(
            lambda s, after: [(d.id, d.shop_domain) for d in unprocessed(
                session=s, older_than=older_than, limit=PAGE, after_id=after)],
            lambda d: delivery_job_id(d[0]), lambda d: enqueue_delivery(*d, at_front=True)),
        "signals": _requeue(
            lambda s, after: [(g.id, g.exchange_id, g.event, g.source) for g in pending(
                session=s, older_than=older_than, limit=PAGE, after_id=after)],
            lambda g: signal_job_id(g[0], g[1], g[2]),
            lambda g: enqueue_signal(*g, at_front=True) is not None),
    }
    if any(counts.values()):
        log.info("sweeper queued %(deliveries)d deliveries and %(signals)d signals", counts)
    return counts


def _requeue(page_after: Callable, job_id_of: Callable, enqueue_one: Callable) -> int:
    """Read the rows page by page (ids ascending), then queue each one whose job is gone at the
    front of the queue, newest first, so they run oldest first and ahead of newer work: a lost
    job has waited longest (a Redis wipe during a backlog must not leave it behind the backlog)."""
    found, after = [], 0
    for _ in range(MAX_PAGES):
        with db.session() as s:
            rows = page_after(s, after)
        found += rows
        if len(rows) < PAGE:
            break
        after = rows[-1][0]
    count = 0
    for row in reversed(found):
        forget_ended_job(job_id_of(row))
        count += bool(enqueue_one(row))
    return count



def sweep_if_redis_was_emptied() -> bool:
    """Sweep at once, here and without the grace period, when Redis is new or came back without
    its data (every queued job, retry and lease gone), rather than at the next minute's sweep: a
    mark that only a wipe removes tells. In this thread, not as a queued job: after a wipe the
    workers may all be busy (an outage's hanging calls), and the lost jobs should be back in the
    queue before they free up. Rows still waiting for the relay are the relay's; a job queued
    twice does its work once (jobs check the database first). Called by the relay when it takes
    its lease and by a worker that finds itself unregistered; True if it swept."""
    try:
        if not jobs().connection.set(KEPT_MARK, "1", nx=True):
            return False
        log.info("Redis is new or lost its data: sweeping now")
        sweep(0)
    except redis.RedisError as exc:  # gone again: unmarked, so the next call sweeps
        log.warning("immediate sweep not done: %s", type(exc).__name__)
        with contextlib.suppress(redis.RedisError):
            jobs().connection.delete(KEPT_MARK)
        return False
    return True
