"""RQ's per-job bookkeeping in fewer Redis round trips: the base of SwaplineWorker (jobs/worker.py).

RQ 3.0's SimpleWorker spent 20 round trips (56 commands) on each job besides the job's own work: a
worker heartbeat of 3 separate commands before and after every dequeue and after every job, its
state written again when unchanged, the start in two pipelines, the job's heartbeat written at its
end, and a watched transaction (WATCH, a read of the job's dependents, MULTI/EXEC) to finish it.
Here a job costs the dequeue (BLMOVE, then the job's HGETALL), one pipeline to start it and one to
finish it, and a suspension check at most once a second. The two pipelines are plain ones, not
MULTI/EXEC transactions: each goes in one write and Redis runs it in order, nothing else reads a
half-started job in a way that matters (a lease entry is only claimed once expired, 15 s on), and a
transaction added two commands and a QUEUED reply to parse per command. The price: when the
connection drops mid-pipeline, redis-py sends the whole pipeline again, so a part Redis already ran
runs twice; all of it is idempotent but the worker's success count and working time, which may
then count one job twice (statistics only; the job's own row says what happened). What it keeps:
the worker's heartbeat at least every dequeue timeout (60 s; the lease renewer beats every 5 s
while a job runs), its key's TTL, the job's lease (the started registry entry, jobs/leases.py),
and RQ's own paths for failures and retries. Swapline's jobs never have dependents, repeats or
rate limits (every job is unique, which RQ refuses to combine with dependencies); a job that has
any goes through RQ's own path.

The jobs of one recorded row (a webhook delivery, an exchange's signal) keep no result: the row
says what happened and whether it is done, and nothing reads their return value. They finish as
`finished` for RQ's result_ttl, as before, but with no Result entry and outside the finished
registry, which the periodic jobs' results (the bench's reconciliations) still use.
"""
from __future__ import annotations

import time

from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.utils import now, utcformat
from rq.worker import WorkerStatus

BEAT_SECONDS = 10.0  # a worker heartbeat this recent is not sent again (its key lives 135 s)
SUSPENSION_CHECK_SECONDS = 1.0  # `rq suspend` stops the worker within this, not at its next job
# RQ's scheduler process wakes this often (RQ: every second) to beat (a pipeline and a script)
# and move due delayed jobs to the queue: a delayed job (a step's retry, 5 s and more; an alert
# digest) starts up to this late, and an idle scheduler costs this much less CPU and Redis.
SCHEDULER_SECONDS = 3
ROW_JOBS = frozenset({"jobs.deliveries.process_delivery", "jobs.lifecycle.advance"})


class LeanWorker(SimpleWorker):
    """SimpleWorker with its per-job bookkeeping in two pipelines (see the module docstring)."""

    beaten_at = float("-inf")
    suspension_checked_at = float("-inf")

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
        """Written only when it changes (or along with a pipeline that goes anyway)."""
        if pipeline is None and state == self.get_state():
            return
        super().set_state(state, pipeline)

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
            logging_level=logging_level if logging_level is not None else self.log.level,
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

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's prepare_execution and prepare_job_execution in one pipeline: the execution and
        the job's lease, the worker busy, the job started, out of the intermediate queue."""
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
        """A row's job in one pipeline (_finish_row_job); any other through RQ's own path."""
        if job.func_name not in ROW_JOBS or not _plain(job):
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        self._finish_row_job(job, execution)
        job._status = JobStatus.FINISHED
        self.log.info("Successfully completed job %s in %ss on worker %s", job.id,
                      job.ended_at - job.started_at, self.name)

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


def _plain(job: Job) -> bool:
    """No repeats, rate limit, group or dependency: nothing RQ's success path does beyond ours."""
    return not (job.repeats_left or job.has_rate_limit or job.group_id
                or job._dependency_ids)
