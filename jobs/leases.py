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

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable

import redis
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError
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


class Script:
    """A Lua script run by EVALSHA of its digest, sent whole (EVAL) only when Redis does not
    know it (after a restart or SCRIPT FLUSH; EVAL caches it again): one round trip either way
    most of the time, with none of redis-py's Script bookkeeping per call."""

    def __init__(self, text: str):
        self.text, self.sha = text, hashlib.sha1(text.encode()).hexdigest()

    def __call__(self, connection: redis.Redis, key: str, *args: object):
        try:
            return connection.execute_command("EVALSHA", self.sha, 1, key, *args)
        except NoScriptError:
            return connection.execute_command("EVAL", self.text, 1, key, *args)


# Only the holder's token lets go of a lock or extends its lease (redis-py's Lock does the same).
RELEASE = Script("if redis.call('get', KEYS[1]) == ARGV[1] then "
                 "return redis.call('del', KEYS[1]) end return 0")
RENEW = Script("if redis.call('get', KEYS[1]) == ARGV[1] then "
               "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0")
POLL_SECONDS = 0.1  # a waiter tries again this often (redis-py's Lock default)


class LeasedLock:
    """A Redis lock on a LEASE_SECONDS lease that this process renews while it holds it.

    `timeout` is the longest a holder may keep it (renewal stops then: a thread stuck for good
    cannot hold it for ever); every holder is designed to finish well before, e.g. a job is
    stopped at its own timeout and releases its locks on the way out.

    Taken by one `SET name token NX PX lease`, released by a script that deletes the key only
    while it still holds this holder's random token, as redis-py's Lock does, raising its
    LockError (released when not held) and LockNotOwnedError (the lease was lost)."""

    def __init__(self, connection: redis.Redis, name: str, *, timeout: float,
                 blocking_timeout: float | None, renewer: Renewer = RENEWER):
        self.connection, self.name, self.timeout = connection, name, timeout
        self.blocking_timeout, self.renewer = blocking_timeout, renewer
        self.lease_ms = int(min(timeout, LEASE_SECONDS) * 1000)
        # Read by the renewing thread too: it renews with the token this thread acquired with.
        self.token: bytes | None = None
        self._handle: int | None = None
        self._until = 0.0
        # When Redis last confirmed the lease (monotonic, taken before the command was sent, so
        # the lease ran from after it): a renewal that cannot reach Redis confirms nothing.
        self._confirmed = float("-inf")

    def acquire(self, blocking: bool = True) -> bool:
        """Take it, waiting up to `blocking_timeout` (None: for ever) unless not `blocking`."""
        token = os.urandom(16).hex().encode()
        give_up = None if self.blocking_timeout is None \
            else time.monotonic() + self.blocking_timeout
        while True:
            sent = time.monotonic()
            if self.connection.execute_command("SET", self.name, token, "NX", "PX", self.lease_ms):
                break
            if not blocking or (give_up is not None and time.monotonic() > give_up):
                return False
            time.sleep(POLL_SECONDS)
        self.token, self._confirmed = token, sent
        self._until = time.monotonic() + self.timeout
        self._handle = self.renewer.hold(self._renew)
        return True

    def _renew(self) -> bool:
        token = self.token
        if token is None:  # released meanwhile
            return False
        if time.monotonic() >= self._until:
            log.warning("lock %s held past its %s s; no longer renewed", self.name, self.timeout)
            return False
        sent = time.monotonic()
        if not RENEW(self.connection, self.name, token, self.lease_ms):
            # It expired (Redis lost it, a long stall): the Renewer drops it.
            raise LockNotOwnedError(f"lock {self.name} is no longer owned", lock_name=self.name)
        self._confirmed = sent
        return True

    def kept(self) -> bool:
        """Held, renewed, and confirmed by Redis recently enough that the lease outlasts one
        more renewal interval; known without a round trip to Redis. False once a renewal found
        the lease lost, the lock was held past its `timeout`, or no renewal reached Redis for
        the lease less that interval (Redis away, this process frozen): the lease may have run
        out and another holder taken the lock."""
        handle = self._handle
        fresh = self.lease_ms / 1000 - self.renewer.every  # LEASE_SECONDS - RENEW_SECONDS
        return handle is not None and self.renewer.holds(handle) and \
            time.monotonic() - self._confirmed < fresh

    def owned(self) -> bool:
        """Whether Redis still holds this holder's token (False once the lease was lost)."""
        token = self.token
        return token is not None and self.connection.get(self.name) == token

    def release(self) -> None:
        """Let go; LockError when not held, LockNotOwnedError when its lease was lost."""
        if self._handle is not None:
            self.renewer.drop(self._handle)
            self._handle = None
        token, self.token = self.token, None
        if token is None:
            raise LockError(f"lock {self.name} is not held", lock_name=self.name)
        if not RELEASE(self.connection, self.name, token):
            raise LockNotOwnedError(f"lock {self.name} is no longer owned", lock_name=self.name)

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
