"""The RQ worker for Swapline's queue: jobs run in the worker's own process, scheduler on,
periodic jobs enqueued from the maintenance loop.

Why no fork per job: a forked child starts with no DB or HTTP connections and pays for them on
every job; measured in bench/lifecycle.py, a job took ~85 ms forked and 41 ms in-process, and
most jobs (a status notice) do far less work than the fork itself.
A job that kills the process (SIGKILL, OOM) is not lost: its place in RQ's started registry is a
short lease this worker renews while the job runs (jobs/leases.py); once the lease runs out, any
live worker queues the job again, within about 20 s of the death. A slow job keeps its lease
until its own timeout. A delivery job is also found by the sweeper.
Every worker process also runs the relay (jobs/relay.py) in a thread: it queues the jobs of the
deliveries the web requests recorded, one relay at a time across machines.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time

import redis
from flask import Flask
from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.utils import now, utcformat
from rq.worker import WorkerStatus
from rq.worker_registration import REDIS_WORKER_KEYS

from jobs.leases import LEASE_SECONDS, RENEWER, requeue_abandoned
from jobs.queue import enqueue, job_id, jobs
from jobs.relay import RETRY_SECONDS, Relay, relay_all
from jobs.sweeper import sweep_if_redis_was_emptied
from jobs.worker_base import LeanExecution, LeanWorker
from models import db

PERIOD_SECONDS = 60
REGISTRATION_CHECK_SECONDS = 10
WORKER_TTL = 75  # RQ's: the worker's key lives this + 60 s past its last heartbeat
# RQ's connection_timeout: its dequeue blocks for WORKER_TTL - 15 s, and a reply may take 10 more
SOCKET_TIMEOUT = WORKER_TTL - 5
log = logging.getLogger(__name__)


def enqueue_periodic() -> None:
    """Enqueue the periodic jobs (sweep every minute, reconciliation every 5, retention every
    hour); ids unique per period make it safe from any worker, any number of times."""
    from jobs.alerts import TICK_SECONDS, tick
    from jobs.reconcile import PERIOD_SECONDS as RECONCILE_SECONDS
    from jobs.reconcile import reconcile_all
    from jobs.retention import PERIOD_SECONDS as PRUNE_SECONDS
    from jobs.retention import prune
    from jobs.sweeper import sweep

    now = int(time.time())
    enqueue(sweep, job_id=job_id("sweep", now // PERIOD_SECONDS))
    enqueue(reconcile_all, job_id=job_id("reconcile-all", now // RECONCILE_SECONDS))
    enqueue(prune, job_id=job_id("prune", now // PRUNE_SECONDS))
    enqueue(tick, job_id=job_id("alert-tick", now // TICK_SECONDS))


class SwaplineWorker(LeanWorker):
    """Runs each job in this process, reusing its DB, Redis and HTTP connections, with RQ's
    bookkeeping in few round trips (jobs/worker_base.py); holds each job on a short lease it
    renews while the job runs, and re-queues the jobs of dead workers."""

    stop_asked = False
    checked_at = 0.0
    lease: int | None = None  # the running job's handle in RENEWER
    watch: int | None = None  # this worker's look for abandoned jobs, in RENEWER

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """The job's lease in the started registry (RQ's SimpleWorker: its timeout + 60 s)."""
        return LEASE_SECONDS

    def start_lease(self) -> int:
        return self.get_heartbeat_ttl(None)

    def execute_job(self, job: Job, queue: Queue):
        execution = self.prepare_execution(job)
        self.lease = RENEWER.hold(lambda: self._renew(job, execution))
        try:
            with db.holding_autocommit():  # one connection for the job's one-statement reads
                self.perform_job(job, queue, execution)
        finally:
            self._end_lease()
        self.set_state(WorkerStatus.IDLE)

    def _renew(self, job: Job, execution: Execution) -> bool:
        """Extend the running job's lease (and this worker's registration). Only existing keys
        are touched: a renewal racing the job's end never brings its entry back."""
        registry = job.started_job_registry
        with self.connection.pipeline() as pipeline:
            registry.add_execution(execution, pipeline, ttl=LEASE_SECONDS, xx=True)
            if not isinstance(execution, LeanExecution):  # a row's job has no execution hash
                pipeline.expire(execution.key, LEASE_SECONDS)
            pipeline.hset(self.key, "last_heartbeat", utcformat(now()))
            pipeline.expire(self.key, self.worker_ttl)
            pipeline.execute()
        return True

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int):
        self._end_lease()  # before RQ removes the execution: no renewal after the job ended
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def _end_lease(self) -> None:
        if self.lease is not None:
            RENEWER.drop(self.lease)
            self.lease = None

    def _requeue_abandoned(self) -> bool:
        try:
            for queue in self.queues:
                requeue_abandoned(queue)
        except redis.RedisError:  # Redis away: the worker's own loop says so; look again later
            pass
        return True

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        if time.monotonic() - self.checked_at >= REGISTRATION_CHECK_SECONDS:
            self.checked_at = time.monotonic()
            self._register_again_if_forgotten()

    def _register_again_if_forgotten(self) -> None:
        """A Redis restarted without its data no longer lists this worker: /healthz would say
        no worker runs. RQ reconnects by itself while waiting for a job, but never re-registers."""
        try:
            if self.connection.sismember(REDIS_WORKER_KEYS, self.key):
                return
            log.warning("worker no longer registered (Redis lost its data); registering again")
            self.connection.delete(self.key)
            self.register_birth()
            sweep_if_redis_was_emptied()
        except redis.RedisError as exc:
            log.warning("worker registration check failed: %s", type(exc).__name__)

    def work(self, *args, **kwargs) -> bool:
        self.watch = RENEWER.hold(self._requeue_abandoned)
        try:
            return super().work(*args, **kwargs)
        finally:
            RENEWER.drop(self.watch)

    def request_stop(self, signum, frame):
        self.stop_asked = True  # SIGTERM/SIGINT: RQ's warm shutdown, and no restart after it
        super().request_stop(signum, frame)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        enqueue_periodic()


def run(app: Flask, *, burst: bool = False) -> None:
    """Run a worker inside the app context until stopped (or the queue is empty with burst).

    RQ's loop quits when Redis goes away mid-job or at start-up; a worker that was not asked to
    stop waits for Redis and starts again, so a Redis restart needs no one to restart workers.
    A burst worker relays the recorded deliveries first; any other runs the relay beside it."""
    with app.app_context():
        jobs().wait_longer(SOCKET_TIMEOUT)  # before the relay opens a connection
    relay_stop = threading.Event()
    relay = None if burst else Relay(app, relay_stop).start()
    try:
        _run(app, burst=burst)
    finally:
        relay_stop.set()
        if relay is not None:
            relay.join(timeout=2 * RETRY_SECONDS)  # gives the lease up for a standby at once


def _run(app: Flask, *, burst: bool) -> None:
    with app.app_context():
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        while True:
            worker = SwaplineWorker([jobs().queue], connection=jobs().connection,
                                    worker_ttl=WORKER_TTL,
                                    maintenance_interval=PERIOD_SECONDS)
            try:
                enqueue_periodic()
                if burst:
                    relay_all()
                worker.work(burst=burst, with_scheduler=True, logging_level=level)
            except redis.RedisError as exc:
                log.error("worker lost Redis: %s", type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):  # its pubsub thread, even if teardown failed
                    worker.unsubscribe()
            if burst or worker.stop_asked:
                return
            stop = _stop_flag()  # RQ's handlers went with its loop: SIGTERM must still stop us
            log.warning("worker loop ended without a stop request; starting again once Redis "
                        "answers")
            if not _wait_for_redis(stop):
                return
            sweep_if_redis_was_emptied()


def _stop_flag() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _wait_for_redis(stop: threading.Event, pause: float = 1.0) -> bool:
    """True once Redis answers (after at least one pause: no busy restart loop); False when a
    stop was asked meanwhile."""
    while not stop.wait(pause):
        try:
            jobs().connection.ping()
            return True
        except redis.RedisError:
            continue
    return False


def run_burst_in_process(app: Flask) -> bool:
    """Relay the recorded deliveries, then run every queued job in this process (tests and the
    demo's self-check)."""
    with app.app_context():
        relay_all()
        worker = SimpleWorker([jobs().queue], connection=jobs().connection)
        return worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
