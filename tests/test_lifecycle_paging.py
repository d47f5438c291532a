"""Big orders page through Shopify's connections; a normal one costs no extra call (issue 10)."""
from __future__ import annotations

PAGING = ("FulfillmentOrderLineItems", "ReturnExchangeLineItems", "ReturnReturnLineItems")


def run_to_completed(world) -> None:
    world.run_jobs()
    assert world.exchange().state == "parked", world.exchange().attention_reason
    world.close()
    world.run_jobs()
    world.warehouse_moves(450, waybill="PAGE1")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    assert world.applied("FulfillmentCreate") == 1 and world.applied("OrderCapture") == 1


def test_a_normal_exchange_reads_one_page_of_everything(world):
    world.setup().approve()
    run_to_completed(world)
    assert [world.store.count(name, world.domain) for name in PAGING] == [0, 0, 0]
    assert world.store.count("OrderFulfillmentOrders", world.domain) == 3
    # detect's read, which create (next in the same job) starts from; returnProcess's own
    # answer has the new line items
    assert world.store.count("ReturnForExchange", world.domain) == 1


def test_an_order_with_60_fulfillment_orders(world):
    world.setup(lines=60, fulfillment_orders=60).approve()
    run_to_completed(world)
    # the exchange's FO is the 61st: 7 pages of 10 on each of the 3 reads
    assert world.store.count("OrderFulfillmentOrders", world.domain) == 21
    first_page = world.store.variables("OrderFulfillmentOrders", world.domain)[0]
    assert first_page == {"id": world.order["id"]}  # no cursor: the first page
    assert len(world.shopify_order()["fulfillment_orders"]) == 61


def test_a_return_of_120_items_exchanged_on_120_lines(world):
    world.setup(lines=120, stock=500).approve(lines=120)
    run_to_completed(world)
    order = world.shopify_order()
    [fulfillment] = [f for f in order["fulfillments"] if f["line_items"][0]["sku"] == "SHIRT-L"]
    assert len(fulfillment["line_items"]) == 120
    assert len(world.ongoing_order()["orderLines"]) == 120
    # the return's items past the first 50 and the FO's lines past the first 20 were read on
    assert world.store.count("ReturnExchangeLineItems", world.domain) >= 1
    assert world.store.count("ReturnReturnLineItems", world.domain) >= 1
    assert world.store.count("FulfillmentOrderLineItems", world.domain) >= 1
    assert all(len(v["ids"]) <= 250 for v in world.store.variables("VariantsForExchange"))
