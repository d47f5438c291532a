"""What the clients need from the app around them, handed over at init_app: named locks shared
by every process on every machine (the app passes its Redis, as rq's Worker takes its
connection; the clients' init_app requires them) and a place to record call latencies. The
defaults here keep a client constructed on its own working (scripts, unit tests): locks of this
process only, and metrics that go nowhere. The app never uses them. Also: which RQ job run
this thread is in, for the caches kept for one job run."""
from __future__ import annotations

import threading
from typing import Protocol

from rq import get_current_job


class Lock(Protocol):
    """One named lock, shaped like redis-py's: acquire/release, or a `with` block."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...

    def kept(self) -> bool:
        """Held, as far as this process knows without asking (a lease found lost, or one Redis
        has not confirmed lately, is not)."""
        ...

    def __enter__(self) -> Lock: ...

    def __exit__(self, *exc: object) -> None: ...


class Locks(Protocol):
    """Hands out named locks; `timeout` is the longest a holder may keep one (a holder that dies
    may free it sooner: the app's locks are short leases renewed while held), `blocking_timeout`
    the longest wait."""

    def lock(self, name: str, *, timeout: float, blocking_timeout: float) -> Lock: ...


class Metrics(Protocol):
    """Records one duration of a histogram (seconds) with its labels."""

    def observe(self, name: str, seconds: float, **labels: object) -> None: ...


class ProcessLock:
    """A lock of this process only; the lease is not enforced (nothing outlives the process)."""

    def __init__(self, inner: threading.Lock, name: str, blocking_timeout: float):
        self.inner, self.name, self.blocking_timeout = inner, name, blocking_timeout

    def acquire(self) -> bool:
        return self.inner.acquire(timeout=self.blocking_timeout)

    def release(self) -> None:
        self.inner.release()

    def kept(self) -> bool:
        return self.inner.locked()  # nothing takes it from its holder

    def __enter__(self) -> ProcessLock:
        if not self.acquire():
            raise TimeoutError(f"waited too long for lock {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ProcessLocks:
    """The default Locks: one threading.Lock per name, in this process."""

    def __init__(self):
        self.guard = threading.Lock()
        self.locks: dict[str, threading.Lock] = {}

    def lock(self, name: str, *, timeout: float, blocking_timeout: float) -> ProcessLock:
        with self.guard:
            inner = self.locks.setdefault(name, threading.Lock())
        return ProcessLock(inner, name, blocking_timeout)


class NoMetrics:
    """The default Metrics: nothing is recorded."""

    def observe(self, name: str, seconds: float, **labels: object) -> None:
        return None


NO_METRICS = NoMetrics()


def job_run() -> tuple | None:
    """(job id, started at) of the RQ job running in this thread, None outside one: what a
    per-job-run cache keys on (a retry of the same job is a new run)."""
    job = get_current_job()
    return (job.id, job.started_at) if job is not None else None
