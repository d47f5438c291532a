"""RQ's bookkeeping in few round trips (jobs/worker_base.py), run in-process by the real
SwaplineWorker: what a finished, a failed and a periodic job leave in Redis, and how many round
trips a row's job costs."""
from __future__ import annotations

import logging
import time

import pytest
import redis
from rq import Worker
from rq.exceptions import DequeueTimeout, StopRequested
from rq.job import Job
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import DefaultSerializer, JSONSerializer

from jobs import worker, worker_base
from jobs.queue import enqueue, jobs
from jobs.relay import relay_all

REOPEN = {"id": 1, "admin_graphql_api_id": "gid://shopify/Return/1"}  # no handler: ignored


def returns_a_value(n: int) -> int:
    return n * 2


@pytest.fixture
def run_worker(app, monkeypatch):
    """Run SwaplineWorker in burst mode in this process (no periodic jobs); the worker."""
    monkeypatch.setattr(worker, "enqueue_periodic", lambda: None)

    def run() -> worker.SwaplineWorker:
        relay_all()
        w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
        w.work(burst=True, with_scheduler=False, logging_level="WARNING")
        return w

    return run




def leftovers() -> list[bytes]:
    """Keys of executions and leases left behind."""
    connection = jobs().connection
    return sorted(connection.keys("rq:execution:*")) + sorted(
        k for k in connection.keys("rq:wip:*") if connection.zcard(k))


def test_a_deliverys_job_finishes_without_a_result_and_leaves_nothing_running(
        app, post_webhook, run_worker):
    post_webhook("returns/reopen", REOPEN)
    w = run_worker()
    [job_id] = [k.decode().split(":")[-1] for k in jobs().connection.keys("rq:job:delivery-*")]
    job = Job.fetch(job_id, connection=jobs().connection)
    assert job.get_status() == "finished" and job.ended_at and job.latest_result() is None
    assert 0 < jobs().connection.ttl(job.key) <= w.default_result_ttl  # gone in RQ's time
    assert job_id not in FinishedJobRegistry(queue=jobs().queue).get_job_ids()
    assert StartedJobRegistry(queue=jobs().queue).get_job_ids(cleanup=False) == []
    assert leftovers() == [] and jobs().connection.llen(jobs().queue.intermediate_queue_key) == 0
    w.refresh()
    assert (w.successful_job_count, w.get_state()) == (1, "idle")


def test_another_job_keeps_its_result_as_rq_does(app, run_worker):
    job = enqueue(returns_a_value, 21, job_id="keeps-result")
    run_worker()
    assert job.latest_result().return_value == 42
    assert "keeps-result" in FinishedJobRegistry(queue=jobs().queue).get_job_ids()
    assert leftovers() == []


def fails(_: int) -> None:
    raise RuntimeError("boom")


def test_a_failed_job_is_retried_as_rq_does(app, run_worker, monkeypatch):
    monkeypatch.setattr(worker_base, "ROW_JOBS", frozenset({f"{__name__}.fails"}))
    job = enqueue(fails, 1, job_id="fails-once")
    w = run_worker()
    job.refresh()
    assert job.get_status() == "scheduled" and job.retries_left == 4 and job.last_heartbeat
    assert "fails-once" in ScheduledJobRegistry(queue=jobs().queue).get_job_ids()
    assert leftovers() == []
    w.refresh()
    assert w.failed_job_count == 1


def _lines(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == level and r.name in ("rq.worker", "jobs.deliveries")]


@pytest.mark.parametrize("kind", ["delivery", "other"])
def test_a_job_logs_its_end_alone_at_info(app, post_webhook, monkeypatch, caplog, kind):
    """RQ wrote five lines at INFO per job (started, completed, "Job OK", the result's
    lifespan, a delivery's own): its start and "Job OK" are DEBUG now, the lifespan not
    written; a failure still logs at ERROR."""
    monkeypatch.setattr(worker, "enqueue_periodic", lambda: None)
    if kind == "delivery":
        post_webhook("returns/reopen", REOPEN)
        relay_all()
        [job_id], own = jobs().queue.job_ids, ["delivery processed: noted"]
    else:
        job_id, own = enqueue(returns_a_value, 1, job_id="keeps-result").id, []
    enqueue(fails, 1, job_id="fails-once")
    w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
    with caplog.at_level(logging.DEBUG):
        w.work(burst=True, with_scheduler=False, logging_level="DEBUG")
    info = [line for line in _lines(caplog, logging.INFO) if job_id in line
            or line.startswith(("delivery processed", "Successfully completed"))]
    assert len(info) == 1 + len(own) and info[:len(own)] == own
    assert info[-1].startswith("Successfully completed ")  # RQ's own names its description
    debug = _lines(caplog, logging.DEBUG)
    assert f"Worker {w.name}: swapline: Job OK ({job_id})" in debug
    assert f"Worker {w.name}: swapline: {job_id}" in debug
    assert not [line for line in _lines(caplog, logging.INFO) + debug if "result is kept" in line]
    assert any("fails-once" in line for line in _lines(caplog, logging.ERROR))
    # RQ's failure line keeps the job id it passes as a field (the JSON line's job_id)
    assert "fails-once" in {getattr(r, "job_id", None) for r in caplog.records
                            if r.levelno == logging.ERROR and r.name == "rq.worker"}


def test_a_rows_job_costs_two_script_calls(app, run_worker, round_trips, monkeypatch):
    """Per job while jobs wait: START takes and starts it, FINISH ends it (a BLMOVE, the job's
    HGETALL and two pipelines before; RQ 3.0's own SimpleWorker: 20). Two bursts of 5 and 25
    jobs: the difference is the jobs' share, the worker's start and end (registration,
    maintenance) cancel out."""
    monkeypatch.setattr(worker_base, "ROW_JOBS", frozenset({f"{__name__}.returns_a_value"}))
    # one suspension check and heartbeat per worker, however slow the machine is today
    monkeypatch.setattr(worker_base, "SUSPENSION_CHECK_SECONDS", 3600)
    monkeypatch.setattr(worker_base, "BEAT_SECONDS", 3600)

    def trips(n: int) -> int:
        for i in range(n):
            enqueue(returns_a_value, i, job_id=f"row-{n}-{i}")
        round_trips.clear()
        w = run_worker()
        w.refresh()
        assert w.successful_job_count == n
        return len(round_trips)

    trips(1)  # the pool's connections opened
    assert (trips(25) - trips(5)) / 20 <= 2.05  # START and FINISH


def test_a_connection_opened_before_the_worker_waits_as_long_as_its_dequeue(app, monkeypatch):
    """The relay thread may open the process's first connection before RQ's Worker raises the
    socket timeout for its blocking dequeue: wait_longer reaches that one too (it used to time
    out the idle worker's dequeue every 5 s, which then backed off)."""
    from jobs import queue

    holder = queue.Jobs(app.config["SETTINGS"].redis_url, app.config["SETTINGS"].instance_path)
    holder.socket_timeout = 0.5  # the web's 5 s, shortened for the test
    holder.connection.ping()  # opened early, as the relay's lock would
    holder.wait_longer(3)
    assert holder.connection.blmove("empty-list", "other-list", 1) is None  # waited, no timeout
    assert holder.connection.connection_pool.connection_kwargs["socket_timeout"] == 3


def running(key: str) -> None:
    """A job that notes what every worker says it runs, as the soak's worker-kill reads it."""
    connection = jobs().connection
    for w in Worker.all(connection=connection):
        connection.rpush(key, worker_base.running_job_id(w) or "")
        connection.rpush(key, w.get_current_job_id() or "")


def test_a_rows_job_keeps_only_its_lease_and_the_worker_names_it(app, run_worker, monkeypatch):
    """No Execution hash, per-job execution registry or worker execution set for a row's job;
    the worker's `current_job` names it while it runs, and nothing once done."""
    monkeypatch.setattr(worker_base, "ROW_JOBS", frozenset({f"{__name__}.running"}))
    enqueue(running, "seen-row", job_id="row-job")
    w = run_worker()
    connection = jobs().connection
    assert connection.lrange("seen-row", 0, -1) == [b"row-job", b""]
    assert connection.keys("rq:execution*") == [] and connection.keys("rq:worker:*:exec*") == []
    assert connection.hget(w.key, "current_job") == b"" and leftovers() == []


def test_another_job_keeps_rqs_execution_records(app, run_worker):
    enqueue(running, "seen-other", job_id="other-job")
    run_worker()
    assert jobs().connection.lrange("seen-other", 0, -1) == [b"other-job", b"other-job"]
    assert leftovers() == []


def test_a_started_job_whose_worker_died_is_queued_again(app, monkeypatch):
    """START's lease entry is what requeue_abandoned looks for: a job taken and started by a
    worker that then died runs again, counted as one retry."""
    from jobs.leases import requeue_abandoned

    monkeypatch.setattr(worker_base, "ROW_JOBS", frozenset({f"{__name__}.returns_a_value"}))
    queue, connection = jobs().queue, jobs().connection
    job = enqueue(returns_a_value, 1, job_id="taken-then-dead")
    dead = worker.SwaplineWorker([queue], connection=connection, worker_ttl=75)
    taken, _ = dead._take(None)
    assert taken.id == job.id and job.get_status(refresh=True) == "started"
    assert connection.hget(dead.key, "current_job") == b"taken-then-dead"
    [entry] = connection.zrange(queue.started_job_registry.key, 0, -1)
    connection.zadd(queue.started_job_registry.key, {entry: time.time() - 1})  # lease ran out
    assert requeue_abandoned(queue) == ["taken-then-dead"]
    assert queue.job_ids == ["taken-then-dead"] and job.get_status(refresh=True) == "queued"
    assert Job.fetch(job.id, connection=connection).retries_left == 4


@pytest.mark.parametrize("serializer", [None, JSONSerializer])
def test_a_taken_job_reads_its_data_with_the_workers_serializer(app, serializer):
    queue, connection = jobs().queue, jobs().connection
    enqueue(returns_a_value, 2, job_id="serialized")
    w = worker.SwaplineWorker([queue], connection=connection, worker_ttl=75,
                              serializer=serializer)
    taken, _ = w._take(None)
    assert taken.serializer is w.serializer is (serializer or DefaultSerializer)


def test_a_taken_jobs_times_are_rqs_own(app):
    """LeanJob reads a job hash's times as RQ's Job does, only faster."""
    queue, connection = jobs().queue, jobs().connection
    enqueue(returns_a_value, 2, job_id="times")
    w = worker.SwaplineWorker([queue], connection=connection, worker_ttl=75)
    taken, _ = w._take(None)
    connection.hset(taken.key, "ended_at", "2026-01-02T03:04:05Z")  # RQ's older format
    rqs = Job.fetch("times", connection=connection)
    ours = worker_base.LeanJob.fetch("times", connection=connection)
    assert isinstance(taken, worker_base.LeanJob)
    names = ("created_at", "enqueued_at", "started_at", "ended_at", "last_heartbeat")
    assert [getattr(ours, n) for n in names] == [getattr(rqs, n) for n in names]
    assert all(getattr(ours, n).tzinfo is getattr(rqs, n).tzinfo for n in names)
    assert taken.started_at == rqs.started_at and taken.func_name == rqs.func_name


def test_a_blocking_take_starts_the_job_and_skips_a_vanished_one(app):
    """When no job was seen waiting the worker blocks in BLMOVE, then starts what it got; a
    queued id whose job hash is gone is passed over, as RQ does."""
    queue, connection = jobs().queue, jobs().connection
    connection.rpush(queue.key, "gone-job")
    job = enqueue(returns_a_value, 2, job_id="blocking-take")
    w = worker.SwaplineWorker([queue], connection=connection, worker_ttl=75)
    w.jobs_waiting = False
    taken, _ = w._take(1)
    assert taken.id == job.id and taken.get_status(refresh=False) == "started"
    assert connection.llen(queue.intermediate_queue_key) == 0 and queue.count == 0
    w.jobs_waiting = False
    with pytest.raises(DequeueTimeout):
        w._take(1)


def test_a_stop_asked_while_start_took_nothing_does_not_wait_for_a_job(app, monkeypatch):
    """SIGTERM while START runs finds the worker busy (so a job it takes runs first); when it
    took nothing, the worker stops rather than block in BLMOVE; a failed START leaves it idle
    (a SIGTERM in a Redis outage must still stop it at once)."""
    queue, connection = jobs().queue, jobs().connection
    w = worker.SwaplineWorker([queue], connection=connection, worker_ttl=75)
    w._stop_requested = True
    with pytest.raises(StopRequested):
        w._take(60)
    w._stop_requested = False

    def away(**_):
        raise redis.ConnectionError("Redis away")

    monkeypatch.setattr(w, "_lean_scripts", lambda: (away, away))
    with pytest.raises(redis.ConnectionError):
        w._take(None)
    assert w.get_state() != "busy"


def test_a_job_whose_data_cannot_be_read_fails_through_rqs_path(app, run_worker):
    """A job whose data does not unpickle is not known to be a row's: RQ's own path fails it
    (the worker goes on; the job is not left started on a lease to be queued again)."""
    job = enqueue(returns_a_value, 3, job_id="unreadable")
    jobs().connection.hset(job.key, "data", b"not a pickle")
    w = run_worker()
    job.refresh()  # failed once by RQ, which retries it as any failed job
    assert job.get_status() == "scheduled" and job.retries_left == 4
    assert leftovers() == []
    w.refresh()
    assert w.failed_job_count == 1 and w.get_state() != "busy"


def finish_after(w: worker.SwaplineWorker, job: Job, queue) -> None:
    """End a job _take started as the worker does once it ran."""
    execution = w.prepare_execution(job)
    job.started_at = job.ended_at = job.last_heartbeat = worker_base.now()
    w.handle_job_success(job, queue, queue.started_job_registry, execution)


def _row_job_started(monkeypatch, job_id: str):
    """A row job enqueued and taken by a fresh worker: (queue, connection, job, worker, taken)."""
    monkeypatch.setattr(worker_base, "ROW_JOBS", frozenset({f"{__name__}.returns_a_value"}))
    queue, connection = jobs().queue, jobs().connection
    job = enqueue(returns_a_value, 1, job_id=job_id)
    w = worker.SwaplineWorker([queue], connection=connection, worker_ttl=75)
    taken, _ = w._take(None)
    return queue, connection, job, w, taken


def _lease_runs_out_and_is_claimed(queue, connection, job) -> None:
    from jobs.leases import requeue_abandoned

    [entry] = connection.zrange(queue.started_job_registry.key, 0, -1)
    connection.zadd(queue.started_job_registry.key, {entry: time.time() - 1})
    assert requeue_abandoned(queue) == [job.id]


def test_a_job_whose_lease_was_claimed_meanwhile_is_not_marked_finished(app, monkeypatch):
    """A worker that stalled past its job's lease finds the job queued again by another: its
    FINISH leaves the job as it is (the worker's own hash and counts still change)."""
    queue, connection, job, w, taken = _row_job_started(monkeypatch, "stalled-past-lease")
    _lease_runs_out_and_is_claimed(queue, connection, job)
    finish_after(w, taken, queue)
    assert job.get_status(refresh=True) == "queued" and connection.ttl(job.key) == -1
    assert queue.job_ids == [job.id]
    assert connection.hget(w.key, "current_job") == b"" and w.get_state() == "idle"
    w.refresh()
    assert w.successful_job_count == 1


def test_a_job_wiped_from_redis_meanwhile_is_not_written_back(app, monkeypatch):
    queue, connection, job, w, taken = _row_job_started(monkeypatch, "wiped-meanwhile")
    connection.delete(job.key, queue.started_job_registry.key)  # e.g. a FLUSHALL
    finish_after(w, taken, queue)
    assert not connection.exists(job.key) and leftovers() == []


def test_a_job_failing_after_its_lease_was_claimed_is_left_to_its_new_run(app, monkeypatch):
    """A worker that stalled past its job's lease, whose run then fails, finds the job queued
    again by another: RQ's retry would queue it a second time (scheduled as well as queued);
    it is left as requeue_abandoned left it, and only the worker's counts change."""
    queue, connection, job, w, taken = _row_job_started(monkeypatch, "stalled-then-failed")
    execution = w.prepare_execution(taken)
    _lease_runs_out_and_is_claimed(queue, connection, job)
    taken.started_at = taken.ended_at = worker_base.now()
    w.handle_job_failure(taken, queue, queue.started_job_registry, "boom", execution)
    assert job.get_status(refresh=True) == "queued" and queue.job_ids == [job.id]
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
    assert Job.fetch(job.id, connection=connection).retries_left == 4  # requeue's one retry
    w.refresh()
    assert w.failed_job_count == 1 and w.get_state() == "idle"
    assert connection.hget(w.key, "current_job") == b""


def test_a_job_failing_with_its_lease_still_held_is_retried_by_rq(app, monkeypatch):
    queue, connection, job, w, taken = _row_job_started(monkeypatch, "failed-in-time")
    execution = w.prepare_execution(taken)
    taken.started_at = taken.ended_at = worker_base.now()
    w.handle_job_failure(taken, queue, queue.started_job_registry, "boom", execution)
    assert job.get_status(refresh=True) == "scheduled" and queue.job_ids == []
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [job.id]
    assert connection.zrange(queue.started_job_registry.key, 0, -1) == []
