"""RQ's per-job bookkeeping in fewer Redis round trips: the base of SwaplineWorker (jobs/worker.py).

RQ 3.0's SimpleWorker spent 20 round trips (56 commands) on each job besides the job's own work: a
worker heartbeat of 3 separate commands before and after every dequeue and after every job, its
state written again when unchanged, the start in two pipelines, the job's heartbeat written at its
end, and a watched transaction (WATCH, a read of the job's dependents, MULTI/EXEC) to finish it.
Here a row's job costs two script calls while jobs wait (START, FINISH: see below), three when
the worker had to block for it (BLMOVE first), and a suspension check at most once a second; with
several queues (not Swapline's), the dequeue (BLMOVE, then the job's HGETALL), one pipeline to
start it and one to finish it. The pipelines are plain ones, not MULTI/EXEC transactions: each
goes in one write and Redis runs it in order, nothing else reads a half-started job in a way that
matters (a lease entry is only claimed once expired, 15 s on), and a transaction added two
commands and a QUEUED reply to parse per command. The price: when the connection drops
mid-pipeline (or mid-script), redis-py sends it again, so a part Redis already ran runs twice;
all of it is idempotent but the worker's success count and working time, which may then count
one job twice (statistics only; the job's own row says what happened), and a START that popped
a job, re-sent, takes the next one too: the first one's lease then runs out unrenewed and
requeue_abandoned queues it again within ~20 s (RQ's own re-sent LMOVE would leave it in the
intermediate queue, failed a minute later). What it keeps:
the worker's heartbeat at least every dequeue timeout (60 s; the lease renewer beats every 5 s
while a job runs), its key's TTL, the job's lease (the started registry entry, jobs/leases.py),
and RQ's own paths for failures and retries. Swapline's jobs never have dependents, repeats or
rate limits (every job is unique, which RQ refuses to combine with dependencies); a job that has
any goes through RQ's own path.

The jobs of one recorded row (a webhook delivery, an exchange's signal) keep no result: the row
says what happened and whether it is done, and nothing reads their return value. They finish as
`finished` for RQ's result_ttl, as before, but with no Result entry and outside the finished
registry, which the periodic jobs' results (the bench's reconciliations) still use.

With one queue (Swapline's), a job is taken and started in one script call (START): popped, the
job's lease added (the started registry entry, RQ's composite key `job_id:execution_id`), the job
`started`, the worker `busy` with the job's id in its hash (`current_job`, see `running_job_id`),
and the job's hash read back. It is atomic, so the job never waits in RQ's intermediate queue
between its pop and its start. A row's job keeps no Execution hash, per-job execution registry
or worker execution set: only RQ's introspection reads them (RQ's failure, retry and registry
cleaning paths need the lease entry alone, and the worker's `current_job` says what it runs);
any other job gets them as from RQ. A row's job then finishes in one more script call (FINISH),
which marks the job finished only while its lease entry is still there (else requeue_abandoned
claimed it after a stall, or Redis was wiped: the job is not this run's any more) and also reads
the queue's length: while jobs wait, the next one is taken by START at once,
one round trip; when none did, the worker blocks in BLMOVE as RQ does and starts what it got
with START (the job sits in the intermediate queue meanwhile, as in RQ). The scripts are in
jobs/worker_scripts.py.
"""
from __future__ import annotations

import logging
import math
import time
from datetime import datetime
from uuid import uuid4

import redis
from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import DequeueTimeout, DeserializationError, StopRequested
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.serializers import DefaultSerializer
from rq.utils import as_text, current_timestamp, now, utcformat
from rq.worker import WorkerStatus

from jobs.worker_scripts import FINISH, START

BEAT_SECONDS = 10.0  # a worker heartbeat this recent is not sent again (its key lives 135 s)
SUSPENSION_CHECK_SECONDS = 1.0  # `rq suspend` stops the worker within this, not at its next job
# RQ's scheduler process wakes this often (RQ: every second) to beat (a pipeline and a script)
# and move due delayed jobs to the queue: a delayed job (a step's retry, 5 s and more; an alert
# digest) starts up to this late, and an idle scheduler costs this much less CPU and Redis.
SCHEDULER_SECONDS = 3
ROW_JOBS = frozenset({"jobs.deliveries.process_delivery", "jobs.lifecycle.advance"})
CURRENT_JOB = "current_job"  # the worker hash's field naming the job it runs ("" when none)
# RQ's INFO lines of every job but its end's "Successfully completed …": "Job OK" (its template
# is also the start's with log_job_description) and the start's, "Worker <name>: <queue>: <id>".
PER_JOB_LINES = frozenset({"Worker %s: %s: %s (%s)", "Worker %s: %s: %s"})
# A job hash's times, as RQ's restore reads them (created_at, when absent, is now)
TIMES = tuple((name, name.encode()) for name in ("created_at", "enqueued_at", "started_at",
                                                 "ended_at", "last_heartbeat"))



class LeanExecution(Execution):
    """A row job's execution: in Redis only as its lease entry in the started registry."""


class LeanJob(Job):
    """RQ's Job, its times read by datetime.fromisoformat: RQ's strptime took ~4.5 µs each,
    four a job at its start (fromisoformat: 0.1 µs, the same aware UTC datetimes, the same
    ValueError on a bad one). Keys as bytes (Swapline's connections); as str, RQ parses them."""

    def restore(self, raw: dict) -> None:
        raw = dict(raw)
        times = {name: raw.pop(key) for name, key in TIMES if raw.get(key)}
        super().restore(raw)
        for name, value in times.items():
            setattr(self, name, datetime.fromisoformat(as_text(value)))


class JobLines(logging.LoggerAdapter):
    """RQ's worker logger with RQ's per-job INFO lines but one at DEBUG (PER_JOB_LINES): a job
    wrote five at INFO (started, completed, "Job OK", its result's lifespan, a delivery's own),
    each ~7 µs of the worker's CPU (its record, its JSON, a write to stderr). What stays at
    INFO for each job: its end, "Successfully completed job <id> in <s>s on worker <name>" (RQ's
    own path names the job's description), and a delivery's "delivery processed: <outcome>" with
    its shop, id and topic; a failure's lines, retries and warnings as RQ writes them."""

    def process(self, msg, kwargs):
        return msg, kwargs  # a caller's `extra` (RQ's job_id on a failure) as given

    def info(self, msg, *args, **kwargs) -> None:
        level = logging.DEBUG if msg in PER_JOB_LINES else logging.INFO
        if self.logger.isEnabledFor(level):  # else no record is made at all
            self.logger.log(level, msg, *args, stacklevel=2, **kwargs)


class LeanWorker(SimpleWorker):
    """SimpleWorker with its per-job bookkeeping in few round trips (see the module docstring)."""

    beaten_at = float("-inf")
    suspension_checked_at = float("-inf")
    jobs_waiting = True  # the last look saw jobs queued: take the next one without blocking
    started: tuple[str, str] | None = None  # (job id, execution id) START began, not yet run
    _scripts: tuple | None = None
    log_result_lifespan = False  # RQ's "result is kept for … seconds" line after every job
    job_class = LeanJob

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = JobLines(self.log, {})

    def start_lease(self) -> int:
        """Seconds a job's lease lasts from its start, before its timeout is known (RQ's
        heartbeat TTL of a job without one)."""
        return self.job_monitoring_interval + 60

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """RQ's heartbeat, skipped when one was sent less than BEAT_SECONDS ago; always with the
        idle TTL (RQ shortens it to the job's heartbeat TTL while a job runs: the job's lease,
        not the worker's key, is what tells a dead worker's job)."""
        if time.monotonic() - self.beaten_at < BEAT_SECONDS:
            return
        self.beaten_at = time.monotonic()
        if pipeline is not None:
            super().heartbeat(None, pipeline)
            return
        with self.connection.pipeline(transaction=False) as own:
            super().heartbeat(None, own)
            own.execute()

    def set_state(self, state: str, pipeline=None) -> None:
        """Written only when it changes (or along with a pipeline that goes anyway); a worker
        not busy runs no job."""
        if pipeline is None and state == self.get_state():
            return
        self._state = state
        fields = {"state": state} if state == WorkerStatus.BUSY else {"state": state,
                                                                     CURRENT_JOB: ""}
        (pipeline if pipeline is not None else self.connection).hset(self.key, mapping=fields)

    def check_for_suspension(self, burst: bool) -> None:
        if time.monotonic() - self.suspension_checked_at >= SUSPENSION_CHECK_SECONDS:
            self.suspension_checked_at = time.monotonic()
            super().check_for_suspension(burst)

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        """RQ's, with its scheduler waking every SCHEDULER_SECONDS instead of every second."""
        self.scheduler = RQScheduler(
            self.queues, connection=self.connection, interval=SCHEDULER_SECONDS,
            logging_level=logging_level if logging_level is not None else self.log.logger.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None
                                     ) -> tuple[Job, Queue] | None:
        """RQ's, with the job taken and started by _take (one queue; RQ's own with more)."""
        if len(self.queues) != 1:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self.set_state(WorkerStatus.IDLE)
        self.procline(f"Listening on {self.queues[0].name}")
        backoff, idle_since, idle_left = 1.0, time.monotonic(), max_idle_time
        result = None
        while True:
            try:
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                if timeout is not None and idle_left is not None:
                    timeout = min(timeout, idle_left)
                result = self._take(timeout)
                break
            except DequeueTimeout:
                if max_idle_time is not None:
                    idle_left = math.ceil(max_idle_time - (time.monotonic() - idle_since))
                    if idle_left <= 0:
                        break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.log.error("Worker %s: could not connect to Redis instance: %s retrying in "
                               "%d seconds...", self.name, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * self.exponential_backoff_factor,
                              self.max_connection_wait_time)
        self.heartbeat()
        return result

    def _take(self, timeout: int | None) -> tuple[Job, Queue] | None:
        """The next job, started; None when the queue is empty and `timeout` is None (burst).
        Popped by START while jobs were seen waiting, else by BLMOVE (DequeueTimeout)."""
        queue = self.queues[0]
        while True:
            job_id = b""
            if timeout is not None and not self.jobs_waiting:
                job_id = self.connection.blmove(queue.key, queue.intermediate_queue_key, timeout)
                if job_id is None:
                    raise DequeueTimeout(timeout, queue.key)
            job = self._start(queue, as_text(job_id))
            self.jobs_waiting = job is not None
            if job:
                self.log.debug("Worker %s: %s: %s", self.name, queue.name, job.id)
                return job, queue
            if self._stop_requested:  # a SIGTERM during START, which took nothing
                raise StopRequested
            if job is None and timeout is None:
                return None

    def _start(self, queue: Queue, job_id: str) -> Job | None | bool:
        """Start `job_id` (or the queue's first job) with START: the job; None when the queue
        was empty, False when the job's hash was gone."""
        start, _ = self._lean_scripts()
        execution_id = uuid4().hex
        reply = None
        self._state = WorkerStatus.BUSY  # a SIGTERM meanwhile lets a job it takes run first
        try:
            reply = start(keys=[queue.key, queue.intermediate_queue_key,
                                self._registry_key(queue), self.key],
                          args=[job_id, execution_id, current_timestamp() + self.start_lease(),
                                utcformat(now()), self.name,
                                self.job_class.redis_job_namespace_prefix])
        finally:
            if not reply or len(reply) == 1:  # nothing taken (or Redis away): idle again
                self._state = WorkerStatus.IDLE
        if not reply or len(reply) == 1:
            return None if not reply else False
        fields = reply[1]
        # RQ's default serializer passed as None: the Job resolves it again otherwise (a
        # runtime Protocol check, ~6 µs a job)
        job = self.job_class(as_text(reply[0]), connection=self.connection,
                             serializer=None if self.serializer is DefaultSerializer
                             else self.serializer)
        job.restore(dict(zip(fields[::2], fields[1::2], strict=True)))
        job.redis_server_version = self.get_redis_server_version()
        self.started = (job.id, execution_id)
        return job

    def _lean_scripts(self) -> tuple:
        if self._scripts is None or self._scripts[0].registered_client is not self.connection:
            self._scripts = (self.connection.register_script(START),
                             self.connection.register_script(FINISH))
        return self._scripts

    def _registry_key(self, queue: Queue) -> str:
        """The started registry's key (a Queue builds a new registry object for each look)."""
        keys = self.__dict__.setdefault("_registry_keys", {})
        if queue.name not in keys:
            keys[queue.name] = queue.started_job_registry.key
        return keys[queue.name]

    def prepare_execution(self, job: Job) -> Execution:
        """The execution of a job START began: a row's lean; any other's recorded as RQ does.
        A job RQ's own dequeue gave: RQ's prepare_execution and prepare_job_execution in one
        pipeline."""
        if self.started is not None and self.started[0] == job.id:
            lean = _row_job(job)
            execution = (LeanExecution if lean else Execution)(
                self.started[1], job.id, self.connection, worker_name=self.name)
            self.started = None
            self.executions[execution.id] = execution
            if not lean:
                self._record_execution(job, execution)
            return execution
        queue = Queue(job.origin, connection=self.connection)
        with self.connection.pipeline(transaction=False) as pipeline:
            execution = Execution.create(job, self.get_heartbeat_ttl(job), pipeline=pipeline,
                                         worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.persist(job.key)
            pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            pipeline.execute()
        return execution

    def _record_execution(self, job: Job, execution: Execution) -> None:
        """What RQ's Execution.create writes besides the lease entry START added."""
        ttl = self.get_heartbeat_ttl(job)
        with self.connection.pipeline(transaction=False) as pipeline:
            execution.save(ttl=ttl, pipeline=pipeline)
            ExecutionRegistry(job_id=job.id, connection=pipeline).add(execution, ttl, pipeline)
            pipeline.sadd(execution.worker_executions_key, execution.composite_key)
            pipeline.expire(execution.worker_executions_key, ttl + 60)
            pipeline.execute()

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False):
        """Done by prepare_execution, in the same round trip."""

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """The end time and last heartbeat are written with the job's outcome; RQ's failure
        path writes no outcome fields, so a failed job's heartbeat is written here as before."""
        if job.get_status(refresh=False) == JobStatus.FAILED:
            super().handle_execution_ended(job, queue, heartbeat_ttl)
            return
        job.ended_at = job.last_heartbeat = now()

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry, execution):
        """A row's job in one script call (FINISH) or pipeline (_finish_row_job); any other
        through RQ's own path."""
        if job.func_name not in ROW_JOBS or not _plain(job):
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        if isinstance(execution, LeanExecution):
            self._finish_lean(job, queue, execution)
        else:
            self._finish_row_job(job, execution)
        job._status = JobStatus.FINISHED
        self.log.info("Successfully completed job %s in %ss on worker %s", job.id,
                      job.ended_at - job.started_at, self.name)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry=None,
                           exc_string: str = "", execution: Execution | None = None) -> None:
        """RQ's failure path (a retry scheduled, or the failed registry), only while this run
        still holds the job's lease: when requeue_abandoned claimed it (this worker stalled
        past it), the job is queued again already, and retrying it too would run it twice.
        Then only the worker's own hash and counts change, as FINISH does."""
        if execution is not None and self.connection.zscore(
                self._registry_key(queue), execution.composite_key) is None:
            self.log.warning("job %s failed after its lease was claimed; left to its new run",
                             job.id)
            self.executions.pop(execution.id, None)
            with self.connection.pipeline(transaction=False) as pipeline:
                self.increment_failed_job_count(pipeline)
                self.set_state(WorkerStatus.IDLE, pipeline=pipeline)  # and no current job
                pipeline.execute()
            return
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def _finish_lean(self, job: Job, queue: Queue, execution: LeanExecution) -> None:
        """Finished as _finish_row_job leaves it, the lease entry gone, in one script call;
        notes whether more jobs wait."""
        _, finish = self._lean_scripts()
        waiting = finish(keys=[job.key, self._registry_key(queue), self.key, queue.key],
                         args=[utcformat(job.ended_at), job.get_result_ttl(self.default_result_ttl),
                               execution.composite_key,
                               (job.ended_at - job.started_at).total_seconds()])
        self.executions.pop(execution.id, None)
        self._state = WorkerStatus.IDLE
        self.jobs_waiting = waiting > 0

    def _finish_row_job(self, job: Job, execution: Execution) -> None:
        """Finished, for RQ's result_ttl, with no Result and outside the finished registry; the
        execution and the lease gone, the worker idle."""
        ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline(transaction=False) as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            pipeline.hset(job.key, mapping={"status": JobStatus.FINISHED,
                                            "ended_at": utcformat(job.ended_at),
                                            "last_heartbeat": utcformat(job.last_heartbeat)})
            if ttl > 0:
                pipeline.expire(job.key, ttl)
            elif ttl == 0:
                pipeline.delete(job.key)
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
            pipeline.execute()


def running_job_id(worker: SimpleWorker) -> str | None:
    """The id of the job a worker runs now (any worker, as Worker.all reads them), None when it
    runs none: a row's job is named only by the worker's `current_job` field."""
    return as_text(worker.connection.hget(worker.key, CURRENT_JOB) or b"") or \
        worker.get_current_job_id()


def _row_job(job: Job) -> bool:
    """Whether the job is a row's. Its data is read here, before RQ's try around the job: one
    that cannot be read is not a row's, and RQ's own path fails it when it runs (the worker
    loop would otherwise quit, leaving it started on a lease, to be queued again)."""
    try:
        return job.func_name in ROW_JOBS
    except DeserializationError:
        return False


def _plain(job: Job) -> bool:
    """No repeats, rate limit, group or dependency: nothing RQ's success path does beyond ours."""
    return not (job.repeats_left or job.has_rate_limit or job.group_id
                or job._dependency_ids)
