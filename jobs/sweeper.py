"""The sweeper: the database records the work, Redis only wakes the jobs.

Every minute it queues again what was recorded but whose job is gone (Redis restarted or lost
it, a worker died past its retries): webhook deliveries never processed, exchange signals never
applied. A job still queued, running or waiting for its retry is left alone.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from jobs.deliveries import delivery_job_id, enqueue_delivery
from jobs.lifecycle import enqueue_signal, signal_job_id
from jobs.queue import jobs
from models import db
from models.delivery import unprocessed
from models.exchange_signal import pending

log = logging.getLogger(__name__)
ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


def sweep(grace_seconds: int = 30) -> dict[str, int]:
    """Queue stray deliveries and signals recorded at least `grace_seconds` ago; the counts."""
    older_than = timedelta(seconds=grace_seconds)
    with db.session() as s:
        deliveries = [(d.id, d.shop_domain) for d in unprocessed(session=s, older_than=older_than)]
        signals = [(g.id, g.exchange_id, g.event, g.source)
                   for g in pending(session=s, older_than=older_than)]
    counts = {
        "deliveries": _requeue(
            deliveries, lambda d: delivery_job_id(d[0]),
            lambda d: enqueue_delivery(*d)),
        "signals": _requeue(
            signals, lambda g: signal_job_id(g[0], g[1], g[2]),
            lambda g: enqueue_signal(*g) is not None),
    }
    if any(counts.values()):
        log.info("sweeper queued %(deliveries)d deliveries and %(signals)d signals", counts)
    return counts


def _requeue(rows: list, job_id_of: Callable, enqueue_one: Callable) -> int:
    count = 0
    for row in rows:
        _forget_ended_job(job_id_of(row))
        count += bool(enqueue_one(row))
    return count


def _forget_ended_job(jid: str) -> None:
    try:
        job = Job.fetch(jid, connection=jobs().connection)
    except NoSuchJobError:
        return
    if job.get_status(refresh=False) in ENDED:
        job.delete()
