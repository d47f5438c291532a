"""The Redis traffic of queueing and of an idle worker: the queue lists itself in RQ's set of
queues once per REGISTER_SECONDS, not on every enqueue; RQ's scheduler wakes every
SCHEDULER_SECONDS."""
from __future__ import annotations

from rq import Queue
from rq.scheduler import RQScheduler

from jobs import queue, worker, worker_base
from jobs.queue import enqueue, jobs


def noop(n: int) -> int:
    return n


def commands(monitor_calls: list, fn) -> list[str]:
    before = len(monitor_calls)
    fn()
    return [c[0] for c in monitor_calls[before:]]


def test_an_enqueue_is_one_script_call_once_the_queue_is_listed(app, monkeypatch):
    sent: list[tuple] = []
    connection = jobs().connection
    original = connection.execute_command
    monkeypatch.setattr(connection, "execute_command",
                        lambda *a, **kw: sent.append(a) or original(*a, **kw))
    enqueue(noop, 1, job_id="first")  # lists the queue, as RQ does on every enqueue
    assert Queue.all(connection=connection) == [jobs().queue]
    assert commands(sent, lambda: enqueue(noop, 2, job_id="second")) == ["EVALSHA"]
    assert connection.llen(jobs().queue.key) == 2
    assert enqueue(noop, 2, job_id="second") is None  # still unique


def test_a_lost_queue_set_is_listed_again_after_register_seconds(app, monkeypatch):
    enqueue(noop, 1, job_id="first")
    connection = jobs().connection
    connection.delete(Queue.redis_queues_keys)  # Redis restarted without its data
    enqueue(noop, 2, job_id="second")
    assert Queue.all(connection=connection) == []  # not yet: at most once per REGISTER_SECONDS
    monkeypatch.setattr(queue, "REGISTER_SECONDS", 0.0)
    enqueue(noop, 3, job_id="third")
    assert Queue.all(connection=connection) == [jobs().queue]


def test_the_scheduler_wakes_every_scheduler_seconds(app, monkeypatch):
    started = []
    monkeypatch.setattr(RQScheduler, "start", lambda self: started.append(self))
    w = worker.SwaplineWorker([jobs().queue], connection=jobs().connection, worker_ttl=75)
    w._start_scheduler(burst=False)
    assert [s.interval for s in started] == [worker_base.SCHEDULER_SECONDS]
    w.scheduler.release_locks()
