"""Faults while exchanges are under way, small versions of bench/soak.py's: Ongoing down for a
while (500s, 503s and hanging calls), Shopify throttling for a while, the database unreachable for
the web process. Nothing is lost, nothing is done twice, and stuck exchanges go on by themselves
once the fault clears. A worker SIGKILLed in the middle of a step: tests/test_worker_lease.py."""
from __future__ import annotations

import json
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlmodel import select

from app import create_app
from bench.netlink import Link
from models import db
from models.delivery import WebhookDelivery
from sandbox.shopify import webhook_headers
from tests.conftest import API_SECRET, SHOP


def released(world):
    world.setup(instant=False).approve()
    world.run_jobs()
    world.close()
    world.run_jobs()
    assert world.exchange().state == "released", world.exchange().attention_reason
    return world


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def sent_once(world, waybill: str) -> None:
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    assert exchange.tracking_number == waybill
    assert world.applied("FulfillmentCreate") == 1 and world.applied("OrderCapture") == 1


def test_ongoing_down_for_a_while_then_the_exchange_ships_by_itself(world, monkeypatch):
    monkeypatch.setattr("clients.ongoing.TIMEOUT", (1.0, 0.3))  # a hang is a read timeout
    released(world)
    world.warehouse_moves(450, waybill="OUT1")
    outage_ends = time.monotonic() + 4
    world.ongoing.outage(4, hang=0.6, hang_every=3)
    world.run_jobs()  # ship: every call fails, the client's retries run out, RQ retries later
    exchange = world.exchange()
    assert exchange.state == "released" and world.applied("FulfillmentCreate") == 0
    assert any(e.kind == "error" and "will retry" in e.outcome for e in world.timeline())
    sleep_until(outage_ends)
    world.run_jobs(retries=True)  # RQ's retry, after the outage
    sent_once(world, "OUT1")


def test_shopify_throttling_for_a_while_delays_but_never_doubles(world):
    released(world)
    world.warehouse_moves(450, waybill="THR1")
    throttle_ends = time.monotonic() + 3
    world.store.throttle_for(3)
    world.run_jobs()
    assert world.exchange().state in ("released", "fulfilled")  # part done, none failed
    assert world.exchange().state != "needs_attention"
    sleep_until(throttle_ends)
    world.run_jobs(retries=True)
    sent_once(world, "THR1")


@pytest.fixture
def link(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the database outage needs PostgreSQL (SQLite is a local file)")
    parts = urlsplit(database_url)
    proxy = Link(parts.hostname, parts.port)
    yield proxy, urlunsplit(parts._replace(netloc=f"{parts.username}@{proxy.url_host}"))
    proxy.close()


def test_database_unreachable_for_the_web_answers_503_and_stores_nothing(app, base_config,
                                                                        link, queued):
    proxy, through_link = link
    web = create_app({**base_config, "DATABASE_URL": through_link})
    client = web.test_client()

    def post(webhook_id: str):
        body = json.dumps({"id": 7, "admin_graphql_api_id": "gid://shopify/Return/7"}).encode()
        return client.post("/webhooks/shopify", data=body, headers=webhook_headers(
            "returns/reopen", SHOP, body, API_SECRET, webhook_id=webhook_id))

    assert post("before").status_code == 200
    proxy.cut()
    down = post("during")
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    text = down.get_data(as_text=True)
    assert "retry" in text and "postgres" not in text and API_SECRET not in text
    assert client.get("/healthz").status_code == 503
    proxy.restore()
    answers = [post("during").status_code for _ in range(3)]  # Shopify's re-sends
    assert 200 in answers and set(answers) <= {200, 503}  # a stale pooled connection: one 503
    with db.session() as s:
        rows = s.exec(select(WebhookDelivery.delivery_id)).all()
    assert sorted(rows) == ["before", "during"] and len(queued()) == 2


def test_the_health_check_after_an_outage_says_how_the_database_is_now(base_config, link):
    proxy, through_link = link
    client = create_app({**base_config, "DATABASE_URL": through_link}).test_client()
    assert client.get("/healthz").status_code == 200  # a connection now idle in the pool
    proxy.cut()
    proxy.restore()  # the outage is over; the pooled connection died with it
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_json()["database"] == "ok"


def test_an_outage_longer_than_the_retries_resumes_by_itself_once_it_clears(world, monkeypatch,
                                                                            htmx):
    from datetime import timedelta

    from jobs.reconcile import reconcile_shop
    from models.exchange import Exchange
    from models.types import utcnow

    monkeypatch.setattr("clients.ongoing.TIMEOUT", (1.0, 0.3))
    released(world)
    world.warehouse_moves(450, waybill="LONG1")
    world.ongoing.outage(3600, hang=0.4, hang_every=5)  # down for an hour
    world.run_jobs(retries=True)  # RQ's five retries all fail
    exchange = world.exchange()
    assert exchange.state == "needs_attention" and exchange.attention_transient
    page = htmx("GET", f"/exchanges/{exchange.id}", shop=world.domain).get_data(as_text=True)
    assert 'data-testid="auto-retry"' in page and "every 10 minutes" in page

    world.ongoing.reset()  # Ongoing answers again
    assert reconcile_shop(world.domain) == "1 open exchanges read, 0 acted on"  # too soon
    with db.session() as s:
        s.get(Exchange, exchange.id).updated_at = utcnow() - timedelta(minutes=11)
    assert reconcile_shop(world.domain) == "1 open exchanges read, 1 acted on"
    world.run_jobs()
    sent_once(world, "LONG1")
    assert not world.exchange().attention_transient


def test_an_automatic_retry_during_the_outage_parks_it_again_instead_of_losing_it(
        world, monkeypatch):
    from datetime import timedelta

    from jobs.lifecycle import signal
    from jobs.reconcile import reconcile_shop
    from models.exchange import Exchange
    from models.types import utcnow

    def ten_minutes_pass() -> None:
        with db.session() as s:
            s.get(Exchange, world.exchange().id).updated_at = utcnow() - timedelta(minutes=11)

    monkeypatch.setattr("clients.ongoing.TIMEOUT", (1.0, 0.3))
    released(world)
    world.warehouse_moves(450, waybill="AGAIN1")
    world.ongoing.outage(3600, hang=0.4, hang_every=5)
    world.run_jobs(retries=True)
    assert world.exchange().attention_transient
    # the Retry reconciliation sends (or a merchant's), while Ongoing is still down
    signal(world.exchange().id, "retry", source="reconciliation: retry after an outage")
    world.run_jobs()  # the step fails again, retriably: no RQ retry of a "retry" job
    exchange = world.exchange()
    assert exchange.state == "needs_attention" and exchange.attention_transient  # not lost
    world.ongoing.reset()
    ten_minutes_pass()
    reconcile_shop(world.domain)
    world.run_jobs()
    sent_once(world, "AGAIN1")


def test_database_unreachable_for_an_ongoing_notice_answers_503_each_time(app, base_config,
                                                                         link):
    """The Ongoing route reads on intake's own connections (models/intake_db.py): a kept one
    that breaks and a new one that cannot connect are both the 503 Ongoing retries on."""
    proxy, through_link = link
    client = create_app({**base_config, "DATABASE_URL": through_link}).test_client()

    def post():
        body = json.dumps({"orderId": 5, "orderNumber": "X-5", "webhookEventId": 1})
        return client.post("/webhooks/ongoing/no-such-key", data=body,
                           headers={"X-Auth-Token": "t", "Content-Type": "application/json"})

    assert post().status_code == 404  # a connection is now kept
    proxy.cut()
    answers = [post() for _ in range(3)]  # the kept one breaks, then new ones are refused
    assert [a.status_code for a in answers] == [503] * 3
    assert all(a.headers["Retry-After"] == "5" for a in answers)
    proxy.restore()
    assert post().status_code == 404
