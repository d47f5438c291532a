"""Redis losing its data (a restart without persistence) loses no work: the database records every
delivery and every exchange event, and the sweeper queues again whatever Redis forgot."""
from __future__ import annotations

from rq import SimpleWorker
from sqlmodel import select

from jobs.lifecycle import enqueue_signal, signal
from jobs.queue import jobs
from jobs.relay import relay_all
from jobs.sweeper import sweep
from models import db
from models.exchange_signal import ExchangeSignal


def run_one(app) -> None:
    """Run exactly one queued job (a worker that dies right after it), once the relay has
    queued what was recorded."""
    with app.app_context():
        relay_all()
        SimpleWorker([jobs().queue], connection=jobs().connection).work(
            burst=True, max_jobs=1, with_scheduler=False, logging_level="WARNING")


def redis_restarts() -> None:
    """The relay has queued what was recorded, then everything in Redis is gone: queue,
    scheduled retries, locks, worker registrations."""
    relay_all()
    jobs().connection.flushdb()


def signals() -> list[tuple[str, bool, int]]:
    with db.session() as s:
        rows = s.exec(select(ExchangeSignal).order_by(ExchangeSignal.id)).all()
    return [(row.event, row.done_at is not None, row.attempts) for row in rows]


def collect_fails_once(monkeypatch) -> None:
    """The collect step meets a Shopify 503 once: it is left to its own (scheduled) job."""
    from clients.shopify_errors import ShopifyRetriableError
    from jobs import lifecycle

    real = lifecycle.STEPS["collect"]

    def collect(exchange):
        monkeypatch.setitem(lifecycle.STEPS, "collect", real)
        raise ShopifyRetriableError("503 Service Unavailable")

    monkeypatch.setitem(lifecycle.STEPS, "collect", collect)


def test_each_lost_job_comes_back_and_the_exchange_completes_once(world, app, queued,
                                                                  monkeypatch):
    world.setup(instant=False).approve()
    redis_restarts()  # the approve's delivery job is lost before it ran
    assert sweep(grace_seconds=0) == {"deliveries": 1, "signals": 0}
    run_one(app)  # one hop: the delivery job detects the exchange and runs create
    assert world.exchange().state == "parked" and queued() == []

    world.close()
    redis_restarts()  # the close's delivery job is lost before it ran
    assert sweep(grace_seconds=0) == {"deliveries": 1, "signals": 0}
    run_one(app)
    assert world.exchange().state == "released"

    world.warehouse_moves(450, waybill="LOST1")
    collect_fails_once(monkeypatch)
    run_one(app)  # delivery: fulfilled; its follow-up collect failed, left to its own job ...
    assert world.exchange().state == "fulfilled"
    assert ("collect", False, 1) in signals()
    redis_restarts()  # ... which is lost
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 1}
    world.run_jobs()

    exchange = world.exchange()
    assert exchange.state == "completed" and exchange.tracking_number == "LOST1"
    assert world.applied("FulfillmentCreate") == 1 and world.applied("OrderCapture") == 1
    assert sum(1 for o in world.account.orders.values() if o.number == "EXCH-1001-1") == 1
    assert all(done for _, done, _ in signals())
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 0}


def test_a_crash_between_a_step_and_its_follow_up_resumes_by_the_sweeper(world, app,
                                                                        monkeypatch):
    """The follow-up is a signal row written before the step's own signal is marked done."""
    from jobs import lifecycle

    world.setup(instant=False).approve()
    world.run_jobs()
    world.close()
    world.run_jobs()
    world.warehouse_moves(450, waybill="CRASH1")
    real = lifecycle._take

    def dies_before_collect(exchange_id, signal_id, *args, **kwargs):
        with db.session() as s:
            if signal_id is not None and s.get(ExchangeSignal, signal_id).event == "collect":
                raise RuntimeError("the worker died")
        return real(exchange_id, signal_id, *args, **kwargs)

    with monkeypatch.context() as crash:  # the worker dies right after fulfil
        crash.setattr(lifecycle, "_take", dies_before_collect)
        world.run_jobs()
    assert world.exchange().state == "fulfilled"
    assert ("collect", False, 1) in signals()  # recorded with its first attempt counted
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 1}
    world.run_jobs()
    assert world.exchange().state == "completed"
    assert world.applied("OrderCapture") == 1 and all(done for _, done, _ in signals())


def test_a_signal_is_applied_once_even_when_queued_twice(world, app):
    world.setup(instant=False).approve()
    world.run_jobs()
    exchange_id = world.exchange().id
    signal(exchange_id, "release", source="test")
    [pending] = [row for row in _rows() if row.done_at is None]
    world.run_jobs()
    jobs().connection.flushdb()
    job = enqueue_signal(pending.id, exchange_id, "release", "test again")
    world.run_jobs()
    assert job.latest_result().return_value == "signal already applied"
    assert world.exchange().state == "released"
    assert [e.name for e in world.timeline() if e.kind == "transition"].count(
        "parked → released") == 1


def test_the_sweeper_leaves_a_waiting_retry_alone(world, app, ongoing, queued):
    world.setup(instant=False).approve()
    world.run_jobs()  # detect and create: parked
    ongoing.fail_next(3, status=503)  # release: the client's retries run out, RQ retries later
    world.close()
    world.run_jobs()
    assert world.exchange().state == "parked"
    assert ("release", False, 1) in signals()
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 0}  # its retry is scheduled
    redis_restarts()  # the scheduled retry is lost with Redis: now the sweeper takes it
    ongoing.reset()
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 1}
    world.run_jobs()
    assert world.exchange().state == "released"
    assert ("release", True, 2) in signals()


def _rows() -> list[ExchangeSignal]:
    with db.session() as s:
        return list(s.exec(select(ExchangeSignal)))


def test_the_sweeper_brings_back_every_lost_job_in_one_run(app, post_webhook, queued,
                                                           monkeypatch):
    """After a restart thousands of jobs may be gone at once: page after page, not 500 a run."""
    monkeypatch.setattr("jobs.sweeper.PAGE", 2)
    for n in range(5):
        post_webhook("returns/reopen", {"id": n, "admin_graphql_api_id":
                                        f"gid://shopify/Return/{n}"}, webhook_id=f"lost-{n}")
    redis_restarts()
    assert sweep(grace_seconds=0) == {"deliveries": 5, "signals": 0}
    assert len(queued()) == 5
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 0}  # queued: left alone


def test_a_signal_every_run_of_which_died_ends_in_needs_attention_not_limbo(world, app):
    from models.exchange_signal import MAX_ATTEMPTS

    world.setup(instant=False).approve()
    world.run_jobs()
    signal(world.exchange().id, "release", source="returns/close")
    with db.session() as s:  # ten runs were killed before they could finish
        row = s.exec(select(ExchangeSignal).where(ExchangeSignal.event == "release")).one()
        row.attempts = MAX_ATTEMPTS
    redis_restarts()  # and its job is gone too
    assert sweep(grace_seconds=0) == {"deliveries": 0, "signals": 1}  # queued one last time
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert f"could not apply 'release' after {MAX_ATTEMPTS} attempts" in exchange.attention_reason
    assert all(done for _, done, _ in signals())
    world.run_jobs()
    from jobs.lifecycle import advance

    advance(exchange.id, "retry", "merchant: Retry")  # the merchant retries: it releases
    assert world.exchange().state == "released"


def test_a_worker_that_finds_redis_emptied_sweeps_at_once(app, post_webhook, queued):
    """The lost jobs come back when a worker notices the wipe (it registers again), not a
    minute later: a killed worker's job must resume within 30 s even across a Redis restart."""
    from jobs.worker import SwaplineWorker

    post_webhook("returns/reopen", {"id": 7, "admin_graphql_api_id": "gid://shopify/Return/7"},
                 webhook_id="lost-in-the-wipe")
    assert len(queued()) == 1
    redis_restarts()
    worker = SwaplineWorker([jobs().queue], connection=jobs().connection)
    worker._register_again_if_forgotten()  # it sweeps itself, grace 0: the lost one is back
    assert [job.func_name for job in jobs().queue.jobs] == ["jobs.deliveries.process_delivery"]
    assert len(queued()) == 1


def test_swept_jobs_run_oldest_first_ahead_of_newer_work(app, post_webhook, queued):
    """After a wipe during a backlog the lost jobs must not wait behind it: the sweep queues them
    at the front, in the order they were received."""
    from models.delivery import WebhookDelivery

    for n in range(3):
        post_webhook("returns/reopen", {"id": n, "admin_graphql_api_id":
                                        f"gid://shopify/Return/{n}"}, webhook_id=f"lost-{n}")
    redis_restarts()
    post_webhook("returns/reopen", {"id": 9, "admin_graphql_api_id": "gid://shopify/Return/9"},
                 webhook_id="fresh")
    assert len(queued()) == 1  # the new one, relayed
    assert sweep(grace_seconds=0) == {"deliveries": 3, "signals": 0}
    with db.session() as s:
        ids = {d.delivery_id: d.id for d in s.exec(select(WebhookDelivery))}
    assert queued() == [f"delivery-{ids[name]}" for name in ("lost-0", "lost-1", "lost-2",
                                                             "fresh")]
