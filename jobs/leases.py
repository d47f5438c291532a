"""Short leases, renewed while their holder lives: a running job's place in RQ's started registry
and every shared lock (an exchange's, a goods owner's, a token refresh's).

A lease lasts LEASE_SECONDS in Redis and one thread per process renews every lease the process
holds each RENEW_SECONDS. A live holder therefore keeps its job or lock as long as it needs (a
slow step may run to the job's timeout), while one that dies (SIGKILL, OOM, a lost machine) stops
renewing, and what it held is free LEASE_SECONDS later. Every worker also looks for such jobs each
RENEW_SECONDS and queues them again at once (`requeue_abandoned`), so a killed worker's job runs
again within LEASE_SECONDS + RENEW_SECONDS (+ a free worker's pick-up), not after a lease of the
job's timeout + 60 s as RQ's own registry cleaning would.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis
from redis.exceptions import LockError, LockNotOwnedError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import as_text, parse_composite_key

LEASE_SECONDS = 15  # a dead holder's job or lock is free this long after its last renewal
RENEW_SECONDS = 5  # three renewals per lease: one slow Redis answer does not lose it
log = logging.getLogger(__name__)


class Renewer:
    """One daemon thread per process calling every held lease's `renew` each RENEW_SECONDS.

    `renew` returns False (or raises) to be dropped. Started on first use and again after a fork
    (gunicorn's workers, RQ's scheduler): threads do not survive one."""

    def __init__(self, every: float = RENEW_SECONDS):
        self.every = every
        self._next = 0
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """A forked child holds none of its parent's leases, and runs no thread yet."""
        self._guard = threading.Lock()
        self._held: dict[int, Callable[[], bool]] = {}
        self._running = False

    def hold(self, renew: Callable[[], bool]) -> int:
        """Renew with `renew` from now on; the handle to `drop` it with."""
        with self._guard:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, daemon=True, name="swapline-leases").start()
            self._next += 1
            self._held[self._next] = renew
            return self._next

    def drop(self, handle: int) -> bool:
        """Stop renewing; False when it was dropped already (renewal found the lease lost)."""
        with self._guard:
            return self._held.pop(handle, None) is not None

    def holds(self, handle: int) -> bool:
        with self._guard:
            return handle in self._held

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            with self._guard:
                held = list(self._held.items())
            for handle, renew in held:
                try:
                    keep = renew()
                except Exception as exc:  # Redis away: the next round tries again
                    keep = not isinstance(exc, LockNotOwnedError)
                    if self.holds(handle):
                        log.warning("lease renewal failed: %s: %s", type(exc).__name__, exc)
                if not keep:
                    self.drop(handle)


RENEWER = Renewer()


class LeasedLock:
    """A Redis lock on a LEASE_SECONDS lease that this process renews while it holds it.

    `timeout` is the longest a holder may keep it (renewal stops then: a thread stuck for good
    cannot hold it for ever); every holder is designed to finish well before, e.g. a job is
    stopped at its own timeout and releases its locks on the way out."""

    def __init__(self, connection: redis.Redis, name: str, *, timeout: float,
                 blocking_timeout: float, renewer: Renewer = RENEWER):
        # thread_local=False: the renewing thread must see the token this thread acquired with
        self.inner = connection.lock(name, timeout=min(timeout, LEASE_SECONDS),
                                     blocking_timeout=blocking_timeout, thread_local=False)
        self.name, self.timeout, self.renewer = name, timeout, renewer
        self._handle: int | None = None
        self._until = 0.0

    def acquire(self, blocking: bool = True) -> bool:
        if not self.inner.acquire(blocking=blocking):
            return False
        self._until = time.monotonic() + self.timeout
        self._handle = self.renewer.hold(self._renew)
        return True

    def _renew(self) -> bool:
        if time.monotonic() >= self._until:
            log.warning("lock %s held past its %s s; no longer renewed", self.name, self.timeout)
            return False
        self.inner.reacquire()  # LockNotOwnedError: it expired (Redis lost it, a long stall)
        return True

    def release(self) -> None:
        if self._handle is not None:
            self.renewer.drop(self._handle)
            self._handle = None
        self.inner.release()

    def __enter__(self) -> LeasedLock:
        if not self.acquire():
            raise LockError(f"waited too long for lock {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def requeue_abandoned(queue: Queue) -> list[str]:
    """Queue again, at the front, every job whose worker stopped renewing its lease; their ids.

    Several workers may look at once: the ZREM of a registry entry is the claim, so each
    abandoned run is queued once. A job with no retries left is left to RQ's own cleaning (it
    fails it; the sweeper brings back its recorded work). RQ's retry would wait the job's retry
    interval in the scheduler, whose lock may have died with the same worker: a job that never
    failed goes straight back to the queue instead, counting as one retry."""
    registry, connection = queue.started_job_registry, queue.connection
    requeued = []
    for entry in connection.zrangebyscore(registry.key, 0, time.time()):
        job_id, _ = parse_composite_key(as_text(entry))
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        if job.get_status(refresh=False) != JobStatus.STARTED or not job.retries_left:
            continue
        if not connection.zrem(registry.key, entry):
            continue  # another worker claimed it
        job.retries_left -= 1
        job.started_at = job.ended_at = None
        queue.enqueue_job(job, at_front=True)
        log.warning("job %s abandoned by its worker; queued again", job_id,
                    extra={"job_id": job_id})
        requeued.append(job_id)
    return requeued
