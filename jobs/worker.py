"""The RQ worker for Swapline's queue: scheduler on, periodic jobs, DB engine disposed per fork."""
from __future__ import annotations

import logging
import time

from flask import Flask
from rq import SimpleWorker, Worker

from jobs.queue import enqueue, job_id, jobs
from models import db

PERIOD_SECONDS = 60
log = logging.getLogger(__name__)


def enqueue_periodic() -> None:
    """Enqueue the periodic jobs once per minute (unique ids make it safe from any worker)."""
    from jobs.deliveries import sweep
    from jobs.reconcile import PERIOD_SECONDS as RECONCILE_SECONDS
    from jobs.reconcile import reconcile_all

    now = int(time.time())
    enqueue(sweep, job_id=job_id("sweep", now // PERIOD_SECONDS))
    enqueue(reconcile_all, job_id=job_id("reconcile-all", now // RECONCILE_SECONDS))


class SwaplineWorker(Worker):
    """Forking worker: each job runs in a fresh child with its own DB connections."""

    def fork_work_horse(self, job, queue):
        # Pooled connections must not be shared between parent and child across fork().
        db.dispose(close=False)
        super().fork_work_horse(job, queue)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        enqueue_periodic()


def run(app: Flask, *, burst: bool = False) -> None:
    """Run a worker inside the app context until stopped (or the queue is empty with burst)."""
    with app.app_context():
        worker = SwaplineWorker([jobs().queue], connection=jobs().connection,
                                worker_ttl=75, maintenance_interval=PERIOD_SECONDS)
        enqueue_periodic()
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        worker.work(burst=burst, with_scheduler=True, logging_level=level)


def run_burst_in_process(app: Flask) -> bool:
    """Run every queued job in this process (tests and the demo's self-check)."""
    with app.app_context():
        worker = SimpleWorker([jobs().queue], connection=jobs().connection)
        return worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
