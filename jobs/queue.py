"""The one queue module: Redis connection, safe job ids, default timeouts, logged enqueues."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import redis
import redis.retry
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.scripts import _build_hset_args, get_unique_enqueue_script

from jobs import embedded_redis
from jobs.leases import LeasedLock

EXTENSION = "swapline.queue"
QUEUE_NAME = "swapline"
DEFAULT_TIMEOUT = 120  # seconds; every job talks to at most a few outside APIs
SOCKET_TIMEOUT = 5  # seconds a Redis reply may take: a webhook is answered even while Redis hangs
ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
DEFAULT_RETRY = Retry(max=5, interval=[10, 30, 120, 600, 1800])
REGISTER_SECONDS = 60.0  # a Queue lists itself in RQ's set of queues at most this often
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
log = logging.getLogger(__name__)


class Jobs:
    """Holds the lazily opened Redis connection and the queue of one app."""

    def __init__(self, redis_url: str | None, instance: Path):
        self.redis_url = redis_url
        self.instance = instance
        self.socket_timeout: float = SOCKET_TIMEOUT
        self._connection: redis.Redis | None = None
        self._queue: Queue | None = None

    @property
    def connection(self) -> redis.Redis:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> redis.Redis:
        return redis_client(self.redis_url or embedded_redis.ensure_server(self.instance),
                            socket_timeout=self.socket_timeout)

    def wait_longer(self, seconds: float) -> None:
        """Let every reply take up to `seconds`, on every connection of this process (an RQ
        worker's: its dequeue blocks for up to a minute). RQ raises the timeout itself only for
        connections opened after its Worker is made; one a thread opened before (the relay's)
        made the idle worker's dequeue time out every 5 s and back off. Call it before the
        first connection; one already open is closed."""
        self.socket_timeout = seconds
        if self._connection is not None:
            self._connection.close()
            self._connection = self._queue = None

    def lock(self, name: str, *, timeout: float, blocking_timeout: float) -> LeasedLock:
        """A lock every process shares (the clients' Locks, clients/deps.py), in this Redis: on
        a short lease renewed while held, so a dead holder's lock is free within seconds."""
        return LeasedLock(self.connection, name, timeout=timeout,
                          blocking_timeout=blocking_timeout)

    @property
    def queue(self) -> Queue:
        # Kept: a Queue caches the server version, which would otherwise cost a round trip.
        connection = self.connection
        if self._queue is None or self._queue.connection is not connection:
            self._queue = SwaplineQueue(QUEUE_NAME, connection=connection,
                                        default_timeout=DEFAULT_TIMEOUT)
        return self._queue


class SwaplineQueue(Queue):
    """RQ's Queue, listing itself in RQ's set of queues (`rq info`, Queue.all) at most every
    REGISTER_SECONDS instead of on every enqueue, where it cost a transaction of its own (MULTI,
    SADD, EXEC) besides the enqueue's one script call. A Redis that lost its data has the queue
    listed again by the first enqueue after REGISTER_SECONDS; a delayed job lists it each time
    (RQ's unique scheduling script does), as does every job with a dependency or a rate limit."""

    registered_at = float("-inf")

    def enqueue_job(self, job: Job, pipeline=None, at_front: bool = False,
                    unique: bool = False) -> Job:
        if (pipeline is not None or job._dependency_ids or job.has_rate_limit
                or (unique and not job._id)
                or time.monotonic() - self.registered_at >= REGISTER_SECONDS):
            job = super().enqueue_job(job, pipeline=pipeline, at_front=at_front, unique=unique)
            if pipeline is None:
                self.registered_at = time.monotonic()
            return job
        job.origin = self.name
        return self._enqueue_job(job, at_front=at_front, unique=unique)

    def enqueue_unique(self, batch: list[Job], *, loaded: bool = False) -> list[bool]:
        """Queue each job unless one of its id exists, at the back, with RQ's unique enqueue
        script, all in one pipeline (listing the queue as enqueue_job does); whether each was
        new. Jobs with a dependency or a rate limit are not for this."""
        if not batch:
            return []
        script = get_unique_enqueue_script(self.connection)
        with self.connection.pipeline(transaction=False) as pipeline:
            if time.monotonic() - self.registered_at >= REGISTER_SECONDS:
                pipeline.sadd(self.redis_queues_keys, self.key)
            for job in batch:
                self._prepare_for_queue(job)
                ttl = job.ttl if job.ttl is not None else -1
                pipeline.evalsha(script.sha, 2, job.key, self.key, job.id, "R", ttl,
                                 *_build_hset_args(job))
            replies = pipeline.execute(raise_on_error=False)
        if not loaded and any(isinstance(r, NoScriptError) for r in replies):  # a new Redis
            script.sha = self.connection.script_load(script.script)
            return self.enqueue_unique(batch, loaded=True)  # any queued meanwhile answer 0
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        if len(replies) > len(batch):
            self.registered_at = time.monotonic()
        return [bool(r) for r in replies[-len(batch):]]


def redis_client(url: str, socket_timeout: float = SOCKET_TIMEOUT) -> redis.Redis:
    """A client that fails fast: a webhook must be answered even while Redis is down."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=socket_timeout, health_check_interval=30,
        retry=redis.retry.Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
    )


def init_app(app: Flask) -> None:
    """Attach the Jobs holder; no connection is opened until the first enqueue."""
    settings = app.config["SETTINGS"]
    app.extensions[EXTENSION] = Jobs(settings.redis_url, settings.instance_path)


def jobs() -> Jobs:
    """The current app's Jobs holder."""
    return current_app.extensions[EXTENSION]


def job_id(*parts: object) -> str:
    """A job id from any parts, using only letters, digits, '_' and '-'."""
    return "-".join(_UNSAFE.sub("_", str(p)) for p in parts)[:200]


def enqueue(func: Callable, *args, job_id: str, shop: str = "", retry: Retry | None = None,
            timeout: int = DEFAULT_TIMEOUT, delay: int = 0, at_front: bool = False):
    """Enqueue `func(*args)` once under `job_id` (`delay` seconds from now: RQ's scheduler
    queues it then; `at_front`: ahead of the waiting jobs); None when that job is already queued
    or scheduled."""
    options = {"job_id": job_id, "unique": True, **_defaults(func, args, retry)}
    queue = jobs().queue
    try:
        job = queue.enqueue_in(timedelta(seconds=delay), func, *args, job_timeout=timeout,
                               **options) if delay \
            else queue.enqueue_call(func, args=args, timeout=timeout, at_front=at_front, **options)
    except DuplicateJobError:
        log.info("job already queued", extra={"job_id": job_id, "shop": shop})
        return None
    log.info("job enqueued", extra={"job_id": job_id, "shop": shop})
    return job


def enqueue_many(func: Callable, calls: list[tuple[tuple, str, str]], *,
                 retry: Retry | None = None, timeout: int = DEFAULT_TIMEOUT) -> int:
    """Enqueue `func(*args)` once under `job_id` for each (args, job_id, shop) of `calls`, as
    `enqueue` does one, all in one round trip (the relay's batch); how many were new, the others
    being queued already. A Redis error propagates, and then any of them may be queued: a call
    again finds those there."""
    queue = jobs().queue
    made = [_job(queue, func, args, jid, retry, timeout) for args, jid, _ in calls]
    new = queue.enqueue_unique(made)
    for (_, jid, shop), queued in zip(calls, new, strict=True):
        log.info("job enqueued" if queued else "job already queued",
                 extra={"job_id": jid, "shop": shop})
    return sum(new)


def _job(queue: Queue, func: Callable, args: tuple, jid: str, retry: Retry | None,
         timeout: int) -> Job:
    """The job `enqueue` would make, ready to be queued."""
    job = queue.create_job(func, args=args, timeout=timeout, job_id=jid,
                           status=JobStatus.QUEUED, **_defaults(func, args, retry))
    job.origin = queue.name
    return job


def _defaults(func: Callable, args: tuple, retry: Retry | None) -> dict:
    """What every job of ours carries: its retries, a readable description, a week as failed."""
    return {"retry": retry or DEFAULT_RETRY, "description": f"{func.__name__}{args!r}",
            "failure_ttl": 7 * 24 * 3600}


def forget_ended_job(jid: str) -> None:
    """Drop a finished, failed, stopped or cancelled job of this id, so the id (unique) may be
    queued again; a job still queued, running or waiting for its retry is left alone."""
    try:
        job = Job.fetch(jid, connection=jobs().connection)
    except NoSuchJobError:
        return
    if job.get_status(refresh=False) in ENDED:
        job.delete()
