"""Real worker processes and the job lease (jobs/leases.py): a worker SIGKILLed in the middle of a
step leaves its job, and the locks it held, to another worker within seconds; a live job slower
than the lease keeps it and runs once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq.job import Job
from rq.registry import StartedJobRegistry

from jobs import leases
from jobs.alerts import TICK_SECONDS
from jobs.leases import LEASE_SECONDS, RENEW_SECONDS, LeasedLock, Renewer, requeue_abandoned
from jobs.queue import enqueue, job_id, jobs
from jobs.reconcile import PERIOD_SECONDS as RECONCILE_SECONDS
from jobs.worker import enqueue_periodic
from tests.test_faults import released, sent_once

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored


def slow_job(record: str, seconds: float) -> None:
    """A job that notes each start (one line per run) and then takes `seconds`."""
    with open(record, "a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(seconds)


def start_worker(config: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # its own session: SIGKILL reaches its scheduler child too
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"],
                                cwd=ROOT, env={**os.environ, **config}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def wait_until(condition, what: str, log: Path, timeout: float = 30.0) -> float:
    """Seconds it took; fails after `timeout` with the worker's log."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    return time.monotonic() - started


def periodic_jobs_done(world, margin: float = 60.0) -> None:
    """This 5-minute period's reconciliation and alert tick, which a worker enqueues when it
    starts (once per period), run here first, after waiting out a period about to end: none of
    them will take the Ongoing call the test delays, or advance its exchange."""
    period = min(RECONCILE_SECONDS, TICK_SECONDS)
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.5)
    enqueue_periodic()
    world.run_jobs()


def running(prefix: str) -> list[str]:
    registry = StartedJobRegistry(queue=jobs().queue)
    return [j for j in registry.get_job_ids(cleanup=False) if j.startswith(prefix)]


def test_the_lease_is_short_and_renewed_well_before_it_runs_out():
    assert LEASE_SECONDS <= 20 and RENEW_SECONDS * 3 <= LEASE_SECONDS
    assert LEASE_SECONDS + RENEW_SECONDS < 30  # the longest a dead worker's job waits


def test_a_killed_workers_job_resumes_on_another_worker_and_is_done_once(world, base_config,
                                                                       tmp_path):
    """SIGKILLed while its fulfil step waits on Ongoing, holding the exchange's lock and the goods
    owner's: a second worker runs the job again once the lease runs out, and both locks are free
    by then. The resume time is written to tests/artifacts/worker-kill-resume.txt."""
    released(world)
    periodic_jobs_done(world)
    world.ongoing.delay_next(1, 20)  # the fulfil step's first Ongoing call hangs
    world.warehouse_moves(450, waybill="KILL1")
    first, second = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    worker = start_worker(base_config, first)
    replacement = None
    try:
        wait_until(lambda: running("delivery-"), "the Sent notice's job (fulfil, one hop) to start",
                   first)
        [killed] = running("delivery-")
        time.sleep(0.3)  # inside the step, waiting on Ongoing
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        killed_at = time.time()
        replacement = start_worker(base_config, second)
        job = Job.fetch(killed, connection=jobs().connection)

        def started_again() -> bool:
            job.refresh()
            return job.started_at is not None and job.started_at.timestamp() > killed_at

        resumed = wait_until(started_again, "the job to run again", second, timeout=60)
        wait_until(lambda: world.exchange().state == "completed", "the exchange to complete",
                   second, timeout=60)
    finally:
        stop(worker)
        if replacement is not None:
            stop(replacement)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "worker-kill-resume.txt").write_text(
        f"killed worker's job running again after {resumed:.1f} s "
        f"(lease {LEASE_SECONDS} s, renewed every {RENEW_SECONDS} s)\n")
    sent_once(world, "KILL1")  # the step ran again, and did nothing twice
    assert "abandoned by its worker; queued again" in second.read_text()


def test_a_held_lock_outlives_its_lease_and_a_dead_holders_frees_within_it(app, monkeypatch):
    monkeypatch.setattr(leases, "LEASE_SECONDS", 1)
    renewer, name = Renewer(every=0.2), job_id("test-lease", time.time())

    def lock(wait: float = 0) -> LeasedLock:
        return LeasedLock(jobs().connection, name, timeout=60, blocking_timeout=wait,
                          renewer=renewer)

    held = lock()
    assert held.acquire()
    time.sleep(2.5)  # over two leases: renewed meanwhile
    assert not lock().acquire()
    held.release()
    dying = lock()
    assert dying.acquire()  # released: free at once
    renewer.drop(dying._handle)  # its process died: nobody renews it any more
    started = time.monotonic()
    assert lock(wait=5).acquire()
    assert time.monotonic() - started <= 1.5


def test_an_abandoned_job_is_queued_again_once_at_the_front(app):
    queue = jobs().queue
    job = enqueue(slow_job, "/dev/null", 0, job_id="abandoned-job")
    other = enqueue(slow_job, "/dev/null", 0, job_id="waiting-job")
    queue.remove(job)  # a worker took it, started it and died
    job.set_status("started")
    connection = jobs().connection
    connection.zadd(queue.started_job_registry.key, {f"{job.id}:dead-run": time.time() - 1})
    connection.zadd(queue.started_job_registry.key, {"live-job:run": time.time() + 10})
    assert requeue_abandoned(queue) == ["abandoned-job"]
    assert requeue_abandoned(queue) == []  # a second worker looking finds nothing left
    assert queue.job_ids == ["abandoned-job", other.id]
    job.refresh()
    assert job.get_status() == "queued" and job.retries_left == 4  # counted as one retry


@pytest.mark.parametrize("seconds", [LEASE_SECONDS + 2 * RENEW_SECONDS])
def test_a_live_job_slower_than_the_lease_keeps_it_and_runs_once(app, base_config, tmp_path,
                                                                 seconds):
    """Two workers: one runs a job longer than the lease, the other looks for abandoned jobs all
    the while; the job starts once and finishes."""
    record = tmp_path / "starts.txt"
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    workers = [start_worker(base_config, log) for log in logs]
    try:
        job = enqueue(slow_job, str(record), seconds, job_id="slow-job")
        wait_until(lambda: record.exists(), "the slow job to start", logs[0])
        wait_until(lambda: job.get_status(refresh=True) == "finished", "the slow job to end",
                   logs[0], timeout=seconds + 30)
    finally:
        for worker in workers:
            stop(worker)
    assert len(record.read_text().split()) == 1, "started twice"
    job.refresh()
    assert job.retries_left == 5  # never counted as abandoned
    assert not any("abandoned" in log.read_text() for log in logs)
