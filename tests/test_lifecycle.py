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
