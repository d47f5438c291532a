"""bench.soak's faults (its docstring says what each does): when each starts and how long it
lasts, the injector that runs them from threads during wave 3, and the servers they need (a Redis
of the run's own for redis-restart, bench.processes.PrivateRedis; a cuttable link to PostgreSQL for
db-outage, bench.netlink.Link)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Worker
from rq.job import Job
from sqlalchemy.engine import make_url

from bench.netlink import Link
from bench.processes import HOST, PrivateRedis, worker
from jobs.leases import LEASE_SECONDS
from jobs.queue import jobs
from jobs.worker_base import running_job_id

# The faults: seconds after wave 3 starts, and how long each lasts.
WORKER_KILL_AT, WORKER_KILL_SEARCH_S = 1.0, 30.0  # looks this long for a busy worker
RECORDED_JOBS = ("delivery-", "exchange-")  # the ids of jobs/deliveries.py, jobs/lifecycle.py
ONGOING_OUTAGE_AT, ONGOING_OUTAGE_S = 2.0, 60.0
SHOPIFY_THROTTLE_AT, SHOPIFY_THROTTLE_S = 4.0, 60.0
DB_OUTAGE_AT, DB_OUTAGE_S = 8.0, 10.0
REDIS_RESTART_AT, REDIS_DOWN_S = 15.0, 5.0
RESUME_WAIT_S = 120.0  # worker-kill: how long to wait for the killed job to run again
FAULTS = {  # name: (starts at, lasts, what it does)
    "worker-kill": (WORKER_KILL_AT, 0.0, "an RQ worker SIGKILLed mid-job, a replacement started"),
    "ongoing-outage": (ONGOING_OUTAGE_AT, ONGOING_OUTAGE_S,
                       f"Ongoing API failing for {ONGOING_OUTAGE_S:g} s"),
    "shopify-throttle": (SHOPIFY_THROTTLE_AT, SHOPIFY_THROTTLE_S,
                         f"Shopify throttling for {SHOPIFY_THROTTLE_S:g} s"),
    "db-outage": (DB_OUTAGE_AT, DB_OUTAGE_S,
                  f"the web processes' database link cut for {DB_OUTAGE_S:g} s"),
    "redis-restart": (REDIS_RESTART_AT, REDIS_DOWN_S,
                      f"Redis SIGKILLed, down {REDIS_DOWN_S:g} s, started again empty"),
}


# --- the faults ----------------------------------------------------------------------------------

@dataclass
class Fault:
    name: str
    events: list[tuple[float, str]] = field(default_factory=list)  # (s after wave 3, what)
    injected: bool = False
    job: str = ""  # worker-kill: the job the killed worker was running
    requeued_s: float | None = None  # worker-kill: from the kill to that job queued again
    resumed_s: float | None = None  # worker-kill: from the kill to that job running again


class Injector:
    """Injects the chosen faults during wave 3, each from its own thread at its offset."""

    def __init__(self, names: list[str], app, flood_, *, stack, env: dict, tmp: Path,
                 logs: list, workers: list, shopify, ongoing, private_redis=None, link=None):
        self.faults = {name: Fault(name) for name in names}
        self.app, self.flood, self.stack, self.env, self.tmp = app, flood_, stack, env, tmp
        self.logs, self.workers, self.shopify, self.ongoing = logs, workers, shopify, ongoing
        self.private_redis, self.link = private_redis, link
        self.threads: list[threading.Thread] = []
        self.started = 0.0

    def __bool__(self) -> bool:
        return bool(self.faults)

    def span(self) -> float:
        """Seconds after wave 3 starts at which the last fault is over."""
        return max((FAULTS[name][0] + FAULTS[name][1] for name in self.faults), default=0.0)

    def start(self) -> None:
        self.started = time.monotonic()
        for name in self.faults:
            thread = threading.Thread(target=self._run, args=(self.faults[name],), daemon=True,
                                      name=f"fault-{name}")
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        until = self.started + self.span() + WORKER_KILL_SEARCH_S + 30
        for thread in self.threads:
            thread.join(timeout=max(1.0, until - time.monotonic()))
            if thread.is_alive():
                print(f"  {thread.name} still running; draining anyway", flush=True)

    def note(self, fault: Fault, what: str) -> None:
        fault.events.append((time.monotonic() - self.started, what))

    def _run(self, fault: Fault) -> None:
        time.sleep(max(0.0, self.started + FAULTS[fault.name][0] - time.monotonic()))
        inject = getattr(self, "_" + fault.name.replace("-", "_"))
        try:
            with self.app.app_context():
                inject(fault)
        except Exception as exc:  # reported as not injected, never a crashed bench
            self.note(fault, f"FAILED: {type(exc).__name__}: {exc}")

    def _worker_kill(self, fault: Fault) -> None:
        """SIGKILL the process group of an RQ worker busy with a job; start a replacement."""
        deadline = time.monotonic() + WORKER_KILL_SEARCH_S
        while time.monotonic() < deadline:
            busy = self._busy_worker()
            if busy is None:
                time.sleep(0.05)
                continue
            name, job_id, proc = busy
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = time.time()
            fault.injected, fault.job = True, job_id
            self.note(fault, f"SIGKILLed worker {name} (pid {proc.pid}) mid-job {job_id}")
            log = self.tmp / "worker-3.log"
            self.logs.append(log)
            replacement = worker(self.env, log, self.stack)
            self.workers.append(replacement)
            self.note(fault, f"started a replacement worker (pid {replacement.pid})")
            self._watch_resume(fault, killed_at)
            return
        self.note(fault, f"no RQ worker was busy within {WORKER_KILL_SEARCH_S:g} s: none killed")

    def _watch_resume(self, fault: Fault, killed_at: float) -> None:
        """Wait for the killed job to be queued again (its lease ran out, or the sweeper found it
        after a Redis wipe: RQ's enqueued_at after the kill) and to run again (started_at after
        the kill); note both. The first is the lease's doing; the wait between the two is the
        queue's (other faults may hold every worker in slow calls meanwhile)."""
        deadline = time.monotonic() + RESUME_WAIT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # Redis away, the job gone: look again
                job = Job.fetch(fault.job, connection=jobs().connection)
                queued, started = job.enqueued_at, job.started_at
                if fault.requeued_s is None and queued and queued.timestamp() > killed_at:
                    fault.requeued_s = queued.timestamp() - killed_at
                    self.note(fault, f"the killed job queued again {fault.requeued_s:.1f} s "
                                     f"after the kill (lease {LEASE_SECONDS} s)")
                if started is not None and started.timestamp() > killed_at:
                    fault.resumed_s = started.timestamp() - killed_at
                    fault.requeued_s = fault.requeued_s or fault.resumed_s
                    self.note(fault, f"the killed job running again {fault.resumed_s:.1f} s "
                                     f"after the kill")
                    return
            time.sleep(0.1)
        self.note(fault, f"the killed job did not run again within {RESUME_WAIT_S:g} s")

    def _busy_worker(self) -> tuple[str, str, subprocess.Popen] | None:
        """(name, job id, our process) of a live worker of ours running the job of a recorded
        delivery or signal; None while there is none or Redis does not answer."""
        try:
            for worker in Worker.all(connection=jobs().connection):
                job_id = running_job_id(worker)
                proc = next((p for p in self.workers
                             if p.pid == worker.pid and p.poll() is None), None)
                # recorded work (a delivery, an exchange's signal): a periodic job killed
                # mid-run just runs at its next period, and a Redis wipe forgets it
                if job_id and job_id.startswith(RECORDED_JOBS) and proc is not None:
                    return worker.name, job_id, proc
        except redis.RedisError:
            pass
        return None

    def _redis_restart(self, fault: Fault) -> None:
        _, before = self.flood.snapshot()
        self.private_redis.kill()
        self.note(fault, "Redis SIGKILLed (no persistence: every job, retry and lock is gone)")
        time.sleep(REDIS_DOWN_S)
        self.private_redis.start()
        fault.injected = True
        answered = (self.flood.snapshot()[1] - before)["queued"]
        self.note(fault, f"Redis started again, empty, on port {self.private_redis.port}; "
                         f"{answered} webhooks answered 200 'queued' (into the outbox) while "
                         "it was down")

    def _ongoing_outage(self, fault: Fault) -> None:
        calls = len(self.ongoing.calls)
        self.ongoing.outage(ONGOING_OUTAGE_S)
        fault.injected = True
        self.note(fault, f"Ongoing API down for {ONGOING_OUTAGE_S:g} s: 500/503, every 3rd "
                         "call hangs 25 s first")
        time.sleep(ONGOING_OUTAGE_S)
        self.note(fault, f"Ongoing outage over; {len(self.ongoing.calls) - calls} API calls "
                         "failed during it")

    def _shopify_throttle(self, fault: Fault) -> None:
        self.shopify.store.throttle_for(SHOPIFY_THROTTLE_S)
        fault.injected = True
        self.note(fault, f"Shopify throttling for {SHOPIFY_THROTTLE_S:g} s: GraphQL calls "
                         "answered THROTTLED or 429 Retry-After 1")
        time.sleep(SHOPIFY_THROTTLE_S)
        self.note(fault, "Shopify throttling over")

    def _db_outage(self, fault: Fault) -> None:
        before, _ = self.flood.snapshot()
        self.link.cut()
        self.note(fault, f"web processes' database link cut (PostgreSQL via port "
                         f"{self.link.port})")
        time.sleep(DB_OUTAGE_S)
        self.link.restore()
        fault.injected = True
        during = self.flood.snapshot()[0] - before
        self.note(fault, f"database link restored; webhook answers during the cut: "
                         f"{dict(during)}")


def print_faults(injector: Injector, connection) -> None:
    if not injector:
        return
    print("faults (seconds after wave 3 started):")
    for name, fault in injector.faults.items():
        print(f"  {name}:")
        for at, what in fault.events or [(0.0, "nothing happened")]:
            print(f"    +{at:5.1f} s  {what}")
        if fault.name == "worker-kill" and fault.injected:
            def seen(seconds):
                return "never seen" if seconds is None else f"{seconds:.1f} s"
            print(f"    resume time: kill to the job queued again {seen(fault.requeued_s)} "
                  f"(target <= 30 s), to it running again {seen(fault.resumed_s)}")
        if fault.job:
            status = "gone (Redis lost it)"
            with contextlib.suppress(Exception):
                status = Job.fetch(fault.job, connection=connection).get_status()
            print(f"    the killed job's status now: {status}")


def queue_for(args, stack: contextlib.ExitStack, tmp: Path) -> tuple[str, object]:
    """(REDIS_URL, the private Redis): always a server of this run's own, which redis-restart
    can kill. On the machine's shared Redis (db 11) another bench running beside this one shares
    the queue name: each run's workers would take the other's jobs, and each start flushes it."""
    private = PrivateRedis(tmp)
    private.start()
    stack.callback(private.stop)
    return private.url, private


def web_database(args, stack: contextlib.ExitStack, db_url: str) -> tuple[str, object]:
    """(DATABASE_URL for gunicorn, the Link or None): with db-outage the web processes reach
    PostgreSQL through a Link the fault can cut; workers and this process connect directly."""
    if "db-outage" not in args.fault:
        return db_url, None
    url = make_url(db_url)
    if not url.drivername.startswith("postgresql"):
        raise RuntimeError("--fault db-outage needs PostgreSQL; this run fell back to SQLite")
    link = Link(url.host, url.port or 5432)
    stack.callback(link.close)  # after gunicorn has stopped (the stack unwinds in reverse)
    return url.set(host=HOST, port=link.port).render_as_string(hide_password=False), link
