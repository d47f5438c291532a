"""The client waits out Shopify's cost bucket as throttleStatus describes it (issue 10 §1)."""
from __future__ import annotations

import time

import pytest
from sqlmodel import select

from clients import shopify as client
from clients.shopify import shopify
from clients.shopify_cost import Pacer
from clients.shopify_errors import ShopifyGraphQLError, ShopifyThrottled
from clients.shopify_session import SessionToken
from clients.shopify_tokens import install
from models import db
from models.exchange import Exchange
from tests.conftest import SHOP
from tests.lifecycle_world import EXCHANGE_SKU, RETURNED_SKU


@pytest.fixture
def installed(app, session_token, sandbox):
    import jwt

    token = session_token()
    claims = jwt.decode(token, options={"verify_signature": False})
    install(SessionToken(SHOP, "42", token, claims))
    shopify().pacer = Pacer()  # what an earlier test taught this process does not count here
    yield SHOP
    sandbox.store.set_bucket(SHOP)


class Sleeps(list):
    """Every wait the client asks for (still slept, so the bucket really refills); `after`
    runs after each one (another worker acting during the wait)."""

    after = staticmethod(lambda waits: None)


@pytest.fixture
def sleeps(monkeypatch):
    asked = Sleeps()

    class Clock:
        perf_counter = staticmethod(time.perf_counter)

        @staticmethod
        def sleep(seconds: float) -> None:
            if seconds > 0:
                asked.append(seconds)
            time.sleep(seconds)
            asked.after(asked)

    monkeypatch.setattr(client, "time", Clock)
    return asked


def test_throttled_waits_for_the_deficit_once_then_succeeds(installed, sandbox, sleeps):
    sandbox.store.set_bucket(SHOP, maximum=407, restore=200)
    assert sandbox.store.bucket(SHOP).take(407)  # another caller emptied the bucket
    payment = shopify().graphql(SHOP, "OrderPayment", {"id": "gid://shopify/Order/999999"})
    assert payment == {"order": None}
    assert sandbox.store.throttled_answers[SHOP] == 1
    assert sandbox.store.count("OrderPayment", SHOP) == 1  # ran once, after the wait
    [waited] = sleeps
    assert 0 < waited <= 407 / 200 + 0.1  # at most 407 points short at 200 points/s


def test_a_bucket_drained_again_during_the_wait_is_waited_for_again(installed, sandbox,
                                                                   sleeps):
    """Another worker takes the refilled points while this one waits: wait again, in the job,
    rather than hand the step back to RQ to run again from its start."""
    sandbox.store.set_bucket(SHOP, maximum=407, restore=200)
    bucket = sandbox.store.bucket(SHOP)
    assert bucket.take(407)

    def other_worker(waits: list[float]) -> None:
        if len(waits) == 1:
            assert bucket.take(400)  # the other worker, during the first wait

    sleeps.after = other_worker
    payment = shopify().graphql(SHOP, "OrderPayment", {"id": "gid://shopify/Order/999999"})
    assert payment == {"order": None}
    assert sandbox.store.throttled_answers[SHOP] == 2
    assert sandbox.store.count("OrderPayment", SHOP) == 1
    assert len(sleeps) == 2


def test_a_deficit_too_long_to_wait_in_a_job_goes_back_to_rq(installed, sandbox, sleeps):
    sandbox.store.set_bucket(SHOP, maximum=100, restore=0.01)
    assert sandbox.store.bucket(SHOP).take(100)
    with pytest.raises(ShopifyThrottled) as info:
        shopify().graphql(SHOP, "ShopDetails")
    assert info.value.retriable and info.value.code == "THROTTLED"
    assert info.value.wait > 10 and sleeps == []


def test_a_low_bucket_is_waited_for_before_the_call(installed, sandbox, sleeps):
    sandbox.store.set_bucket(SHOP, maximum=1, restore=1)
    shopify().graphql(SHOP, "ShopDetails")  # the bucket is empty afterwards, and says so
    shopify().graphql(SHOP, "ShopDetails")
    assert sandbox.store.throttled_answers[SHOP] == 0
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1 + 0.1  # 1 point at 1 point/s


def test_max_cost_exceeded_is_terminal_and_says_why(installed, monkeypatch):
    nested = ("query ShopDetails { shop { id } orders(first: 50) { nodes { id "
              "fulfillmentOrders(first: 50) { nodes { id } } } } }")
    monkeypatch.setattr(client, "load_document", lambda name: nested)
    with pytest.raises(ShopifyGraphQLError) as info:
        shopify().graphql(SHOP, "ShopDetails")
    assert not info.value.retriable and info.value.code == "MAX_COST_EXCEEDED"
    assert "too expensive" in str(info.value) and "limit 1000" in str(info.value)


def test_a_burst_of_exchanges_finishes_under_a_small_bucket(world, monkeypatch):
    """Ten exchanges at once on a bucket barely larger than the dearest query (453 points):
    nearly every read has to wait for the bucket, none fails, each ships and is paid once."""
    waits: list[float] = []
    ask = Pacer.wait_before
    monkeypatch.setattr(Pacer, "wait_before",
                        lambda self, *a: waits.append(ask(self, *a)) or waits[-1])
    world.setup(stock=50)
    world.store.set_bucket(world.domain, maximum=460, restore=300)
    returns = [world.ret_for(world.store.create_order(
        world.domain, items=[(RETURNED_SKU, 1)], name=f"#{2001 + n}")) for n in range(10)]
    for ret in returns:
        world.ret = ret
        world.return_webhook("returns/approve")
    world.run_jobs(retries=True)
    for ret in returns:
        world.ret = ret
        world.close()
    world.run_jobs(retries=True)
    for exchange in exchanges(world):
        world.ongoing.move_order(exchange.ongoing_order_id, 450,
                                 tracking={"waybill": f"B{exchange.id}"})
        world.ongoing_webhook(exchange.ongoing_order_id)
    world.run_jobs(retries=True)
    done = exchanges(world)
    assert [e.state for e in done] == ["completed"] * 10, [e.attention_reason for e in done]
    assert world.applied("FulfillmentCreate") == 10 and world.applied("OrderCapture") == 10
    assert sum(1 for w in waits if w > 0) + world.store.throttled_answers[world.domain] > 0


def exchanges(world) -> list[Exchange]:
    with db.session() as s:
        return list(s.exec(select(Exchange).where(Exchange.shop_domain == world.domain)
                           .order_by(Exchange.id)))


assert EXCHANGE_SKU  # the burst exchanges RETURNED_SKU for it, as World.approve does
