"""A webhook delivery whose one event its own job applies is marked processed with that
event's step (the signal's done mark, one statement on PostgreSQL); a step that does not
finish leaves the delivery unprocessed, for its job to run again."""
from __future__ import annotations

from rq.timeouts import JobTimeoutException
from sqlmodel import select

from jobs import exchange_steps, lifecycle
from models import db
from models.delivery import WebhookDelivery
from models.exchange_signal import ExchangeSignal


def _rows(topic: str) -> tuple[WebhookDelivery, ExchangeSignal]:
    with db.session() as s:
        delivery = s.exec(select(WebhookDelivery).where(WebhookDelivery.topic == topic)).one()
        signal = s.exec(select(ExchangeSignal).where(ExchangeSignal.source == topic)).one()
    return delivery, signal


def test_a_delivery_is_marked_processed_with_its_signals_step(world):
    world.parked()
    world.close()
    world.run_jobs()
    assert world.exchange().state == "released"
    delivery, signal = _rows("returns/close")
    assert delivery.processed_at is not None and delivery.last_error is None
    assert delivery.processed_at == signal.done_at  # one write, in the step's transaction


def test_a_step_that_does_not_finish_leaves_the_delivery_to_run_again(world, monkeypatch):
    world.parked()

    def killed(exchange):
        raise JobTimeoutException("the job's time ran out mid-step")

    monkeypatch.setitem(lifecycle.STEPS, "release", killed)
    world.close()
    world.run_jobs()
    delivery, signal = _rows("returns/close")
    assert delivery.processed_at is None and "time ran out" in delivery.last_error
    assert signal.done_at is None  # and its signal waits for the sweeper
    monkeypatch.setitem(lifecycle.STEPS, "release", exchange_steps.release)
    from jobs.deliveries import process_delivery

    process_delivery(delivery.id)  # the delivery's job again (the sweeper queues it)
    assert world.exchange().state == "released"
    assert _rows_processed(delivery.id)


def _rows_processed(delivery_id: int) -> bool:
    with db.session() as s:
        return s.get(WebhookDelivery, delivery_id).processed_at is not None


def test_a_delivery_whose_event_is_ignored_is_marked_by_its_job(world):
    world.parked()
    world.warehouse_moves(200)  # a status that means nothing for a parked exchange: noted
    world.run_jobs()
    with db.session() as s:
        [delivery] = s.exec(select(WebhookDelivery)
                            .where(WebhookDelivery.topic == "ongoing/order")).all()
    assert delivery.processed_at is not None and delivery.last_error is None


def test_a_follow_up_failing_leaves_the_processed_delivery_without_an_error(world, monkeypatch):
    """fulfil marks the Sent delivery processed with its signal; collect, its follow-up in
    the same job, then fails for good: the job fails (RQ shows it), the delivery stays clean."""
    world.parked()
    world.close()
    world.run_jobs()

    def killed(exchange):
        raise JobTimeoutException("the job's time ran out in the follow-up")

    monkeypatch.setitem(lifecycle.STEPS, "collect", killed)
    world.warehouse_moves(450)
    world.run_jobs()
    with db.session() as s:
        [delivery] = s.exec(select(WebhookDelivery)
                            .where(WebhookDelivery.topic == "ongoing/order")).all()
    assert delivery.processed_at is not None and delivery.last_error is None
    from jobs.deliveries import delivery_job_id
    from jobs.queue import jobs

    # the job failed (RQ retries it: its next run finds the delivery processed)
    assert delivery_job_id(delivery.id) in jobs().queue.scheduled_job_registry.get_job_ids()
