"""Reads the lifecycle no longer makes: what a job already holds is handed down instead of
read again (the signal being applied, the shop's settings, the shop's token)."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from jobs.exchange_guard import RELEASE_NOW, applying, released_by_merchant
from models import db


@contextmanager
def statements(app):
    """The statements run on either engine inside the block."""
    seen: list[str] = []

    def count(_conn, _cursor, text, *_args):
        seen.append(text)

    engines = [app.extensions[db.EXTENSION], app.extensions[db.AUTOCOMMIT]]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def test_the_release_guard_reads_the_applied_signal_from_the_runner(app, world):
    exchange = world.parked()
    with statements(app) as seen:
        with applying("release", RELEASE_NOW):
            assert released_by_merchant(exchange)
        with applying("release", "returns/close"):
            assert not released_by_merchant(exchange)
        with applying("retry", RELEASE_NOW):
            assert not released_by_merchant(exchange)
    assert seen == []


def test_a_kept_release_now_is_the_merchants_after_create(app, world):
    exchange = world.parked()
    exchange.release_reason = RELEASE_NOW
    with applying("release_if_requested", "after create"):
        assert released_by_merchant(exchange)
    exchange.release_reason = "returns/close"
    with applying("release_if_requested", "after create"):
        assert not released_by_merchant(exchange)


def test_outside_the_runner_the_guard_reads_the_signal(app, world):
    exchange = world.parked()
    with statements(app) as seen:
        assert not released_by_merchant(exchange)
    assert len(seen) == 1


def test_settings_are_read_once_per_job_run_and_fresh_in_the_next(app, world, monkeypatch):
    from models import settings as settings_module

    world.setup()
    run = ["job-1", 1]
    monkeypatch.setattr(settings_module, "job_run", lambda: tuple(run))
    with statements(app) as seen:
        first = settings_module.settings_of(world.domain)
        assert settings_module.settings_of(world.domain) is first
    assert len(seen) == 1
    with db.session() as s:
        s.get(settings_module.ShopSettings, first.id).order_number_prefix = "SWAP"
    run[1] = 2  # the next job run (a retry of the same job too) reads the merchant's save
    assert settings_module.settings_of(world.domain).order_number_prefix == "SWAP"


def test_settings_a_job_read_with_its_exchange_are_kept_for_its_steps(app, world, monkeypatch):
    from models import settings as settings_module

    world.setup()
    monkeypatch.setattr(settings_module, "job_run", lambda: ("job-1", 1))
    row = settings_module.settings_of(world.domain)
    settings_module._kept_settings.clear()
    settings_module.keep_for_job(world.domain, row)
    with statements(app) as seen:
        assert settings_module.settings_of(world.domain) is row
    assert seen == []
    monkeypatch.setattr(settings_module, "job_run", lambda: None)
    settings_module.keep_for_job(world.domain, row)  # outside a job: pages read every time
    with statements(app) as seen:
        assert settings_module.settings_of(world.domain) is not row
    assert len(seen) == 1


def test_a_follow_up_is_applied_on_the_row_its_step_saved(app, world, monkeypatch):
    """Sent: fulfil, then its follow-up collect in the same job; the exchange is read once,
    when the job takes the Sent signal, and collect gets the row fulfil's end saved."""
    from jobs import lifecycle

    exchange = world.parked()
    world.close()
    world.run_jobs()
    reads = []
    real = lifecycle.read_exchange
    monkeypatch.setattr(lifecycle, "read_exchange",
                        lambda *a, **k: reads.append(a) or real(*a, **k))
    collected = []
    real_collect = lifecycle.STEPS["collect"]
    monkeypatch.setitem(lifecycle.STEPS, "collect",
                        lambda row: collected.append(row) or real_collect(row))
    world.warehouse_moves(450, waybill="READ1")
    world.run_jobs()
    assert world.exchange().state == "completed", world.exchange().attention_reason
    assert len(reads) == 1
    [row] = collected
    assert (row.id, row.state, row.tracking_number) == (exchange.id, "fulfilled", "READ1")
    assert row.fulfilled_at is not None and row.items == exchange.items
