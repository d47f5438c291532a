"""The exchange lifecycle end to end on the sandboxes: create, park, release, fulfil, capture."""
from __future__ import annotations

import pytest

from tests.lifecycle_world import EXCHANGE_SKU


@pytest.mark.parametrize("workflow", ["processing", "legacy"])
@pytest.mark.parametrize("instant", [False, True])
def test_happy_path(world, instant, workflow):
    world.setup(instant=instant, workflow=workflow).approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "parked", exchange.attention_reason
    order = world.ongoing_order()
    assert order["orderInfo"]["orderStatus"]["number"] == 200
    assert order["orderInfo"]["orderNumber"] == "EXCH-1001-1"
    assert [(line["article"]["articleNumber"], line["orderedNumberOfItems"])
            for line in order["orderLines"]] == [(EXCHANGE_SKU, 1)]
    ret = world.account.return_orders[exchange.ongoing_return_order_id]
    assert ret.status == 100
    if workflow == "legacy":  # Shopify made the FO at once: Swapline holds it
        holds = world.shopify_order()["fulfillment_orders"][-1]["holds"]
        assert any(h["handle"] == "swapline-exchange" for h in holds)

    if instant:
        assert world.in_transit().status_code == 200
    else:
        world.close()
    world.run_jobs()
    assert world.exchange().state == "released"
    assert world.ongoing_order()["orderInfo"]["orderStatus"]["number"] == 300

    world.warehouse_moves(450, waybill="PN123456789SE",
                          trackingUrl="https://tracking.example/PN123456789SE")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    shopify = world.shopify_order()
    [fulfillment] = [f for f in shopify["fulfillments"]
                     if f["line_items"][0]["sku"] == EXCHANGE_SKU]
    [tracking] = fulfillment["tracking"]
    assert tracking["number"] == "PN123456789SE"
    assert tracking["url"] == "https://tracking.example/PN123456789SE"
    assert fulfillment["notify_customer"] is True
    assert world.applied("FulfillmentCreate") == 1 and world.applied("OrderCapture") == 1
    assert shopify["total_outstanding"] == "0.00"
    assert (exchange.collection, exchange.collected_amount) == ("captured", "5.00")
    assert exchange.tracking_number == "PN123456789SE"


@pytest.mark.parametrize("lifts", [True, False], ids=["shopify-lifts-hold", "hold-stays"])
def test_money_owed_ends_fulfilled_and_paid_whoever_lifts_awaiting_payment(world, lifts):
    """No source says whether Shopify lifts AWAITING_PAYMENT once paid: both must work."""
    world.setup(instant=False, workflow="processing")
    world.store.set_awaiting_payment_lifts(world.domain, lifts)
    world.approve()
    world.run_jobs()
    [fo] = [f for f in world.shopify_order()["fulfillment_orders"] if f["status"] == "ON_HOLD"]
    assert {h["reason"] for h in fo["holds"]} == {"AWAITING_PAYMENT", "OTHER"}
    world.close()
    world.run_jobs()
    world.warehouse_moves(450, waybill="AP1")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    shopify = world.shopify_order()
    assert shopify["total_outstanding"] == "0.00"
    assert exchange.collection == "captured" and world.applied("FulfillmentCreate") == 1
    [fo] = [f for f in shopify["fulfillment_orders"] if f["id"] == exchange.fulfillment_order_gid]
    assert fo["status"] == "CLOSED" and fo["holds"] == []
    released = world.store.variables("FulfillmentOrderReleaseHold", world.domain)
    payment_released = [e for e in world.timeline() if "AWAITING_PAYMENT released" in e.outcome]
    assert len(released) == (1 if lifts else 2) and len(payment_released) == (0 if lifts else 1)
