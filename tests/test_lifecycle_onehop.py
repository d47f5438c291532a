"""One hop from a webhook to the step it causes: a delivery's job applies the signal it records,
and the follow-ups that step records, under the exchange's lock; a busy lock or a retriable
failure leaves the signal to its own job, nothing lost."""
from __future__ import annotations

from rq import SimpleWorker
from sqlmodel import select

from jobs.queue import jobs
from jobs.relay import relay_all
from models import db
from models.exchange_signal import ExchangeSignal


def jobs_run(app, max_jobs: int | None = None) -> int:
    """Run queued jobs in-process like a burst worker (once the relay has queued the recorded
    deliveries); how many ran (finished or failed)."""
    with app.app_context():
        relay_all()
        queue = jobs().queue

        def ended() -> set[str]:
            return {*queue.finished_job_registry.get_job_ids(),
                    *queue.failed_job_registry.get_job_ids()}

        before = ended()
        SimpleWorker([queue], connection=jobs().connection).work(
            burst=True, max_jobs=max_jobs, with_scheduler=False, logging_level="WARNING")
        return len(ended() - before)


def signals() -> list[tuple[str, bool]]:
    with db.session() as s:
        rows = s.exec(select(ExchangeSignal).order_by(ExchangeSignal.id)).all()
    return [(row.event, row.done_at is not None) for row in rows]


def test_each_webhook_is_one_job_and_sent_leaves_the_exchange_completed(world, app, queued):
    world.setup(instant=False).approve()
    assert jobs_run(app) == 1  # detect, create, and create's follow-up (no release asked yet)
    assert world.exchange().state == "parked"
    world.close()
    assert jobs_run(app) == 1
    assert world.exchange().state == "released"

    world.warehouse_moves(450, waybill="HOP1")
    assert jobs_run(app) == 1  # the Sent notice's job: fulfil, then collect, no further job
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    assert exchange.fulfilled_at and exchange.collection == "captured"
    assert queued() == [] and world.applied("FulfillmentCreate") == 1
    assert signals() == [("create", True), ("release_if_requested", True), ("release", True),
                         ("sent", True), ("collect", True)]  # each step recorded as a signal


def test_a_busy_exchange_lock_leaves_the_signal_to_its_own_job(world, app, queued):
    world.setup(instant=False).approve()
    world.run_jobs()
    world.close()
    world.run_jobs()
    exchange_id = world.exchange().id
    lock = jobs().connection.lock(f"swapline:exchange:{exchange_id}", timeout=60)
    assert lock.acquire(blocking=False)  # another job is working on this exchange
    world.warehouse_moves(450, waybill="BUSY1")
    assert jobs_run(app, max_jobs=1) == 1  # the delivery's job: the lock is taken
    assert world.exchange().state == "released"
    assert ("sent", False) in signals()
    [waiting] = queued()
    assert waiting.startswith(f"exchange-{exchange_id}-sent-")
    lock.release()
    assert jobs_run(app) == 1  # the signal's own job: fulfil and collect
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    assert world.applied("FulfillmentCreate") == 1 and all(done for _, done in signals())
