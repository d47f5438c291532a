"""Holds and edits the lifecycle must follow: one variant on two lines, exchange items Shopify
gives no fulfillment order, and a return edited after approval."""
from __future__ import annotations

import pytest

from jobs.lifecycle import advance
from tests.lifecycle_world import EXCHANGE_SKU, RETURNED_SKU


def exchange_on(world, order: dict, returned: str, exchange: str, quantity: int = 1):
    """A return of `returned` for `exchange` on `order`, approved and announced to the app."""
    world.order = order
    world.ret = world.store.create_return(world.domain, order["id"], returned=[(returned, 1)],
                                          exchange=[(exchange, quantity)])
    world.return_webhook("returns/approve")
    world.run_jobs()


def ship(world, waybill: str) -> None:
    world.close()
    world.run_jobs()
    world.warehouse_moves(450, waybill=waybill)
    world.run_jobs()


@pytest.mark.parametrize("exchange_sku", [RETURNED_SKU, EXCHANGE_SKU],
                         ids=["same-variant-exchange", "variant-already-on-another-line"])
def test_only_the_exchange_line_is_fulfilled_when_its_variant_is_on_two_lines(world,
                                                                             exchange_sku):
    world.setup(instant=False)
    order = world.store.create_order(world.domain, items=[(RETURNED_SKU, 1)], name="#1002",
                                     unfulfilled=[(EXCHANGE_SKU, 1)])  # e.g. a pre-order
    exchange_on(world, order, RETURNED_SKU, exchange_sku)
    ship(world, "SV1")
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    [line_item] = exchange.line_item_gids
    shopify = world.shopify_order()
    [fulfillment] = shopify["fulfillments"][1:]  # the first is the original shipment
    assert [(li["line_item_id"], li["quantity"]) for li in fulfillment["line_items"]] == \
        [(line_item, 1)]
    others = [(line["line_item_id"], line["remaining"]) for fo in shopify["fulfillment_orders"]
              for line in fo["line_items"] if line["line_item_id"] != line_item]
    assert others == [(order["line_items"][0]["id"], 0), (order["line_items"][1]["id"], 1)]


def test_stock_is_checked_for_a_variant_on_two_exchange_lines_together(world):
    world.setup(instant=False, stock=1)
    world.ret = world.store.create_return(world.domain, world.order["id"],
                                          returned=[(RETURNED_SKU, 1)],
                                          exchange=[(EXCHANGE_SKU, 1), (EXCHANGE_SKU, 1)])
    world.return_webhook("returns/approve")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert exchange.attention_reason == \
        f"Out of stock: {EXCHANGE_SKU} has 1 sellable in Ongoing, the exchange needs 2."


def test_zero_priced_exchange_without_fulfillment_order_waits_for_admin_then_retry(world):
    world.setup(instant=False)
    world.store.add_variant(world.domain, EXCHANGE_SKU, "0.00", "Shirt - L (free)")
    world.store.set_zero_price_exchange_unreleased(world.domain)
    world.approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert "Orders → #1001" in exchange.attention_reason
    assert "“Process return”" in exchange.attention_reason
    world.close()  # kept until the exchange is parked
    world.run_jobs()
    world.store.process_return_in_admin(world.domain, world.ret["id"])  # the merchant acts
    advance(exchange.id, "retry", "merchant: Retry")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "released", exchange.attention_reason
    assert exchange.hold_gid and exchange.line_item_gids
    world.warehouse_moves(450, waybill="FREE1")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    [fulfillment] = world.shopify_order()["fulfillments"][1:]
    assert [li["line_item_id"] for li in fulfillment["line_items"]] == exchange.line_item_gids


def released_before_processing(world, monkeypatch, quantity: int = 2):
    """An exchange whose return was closed before create could process it: the Ongoing order is
    released and the exchange items are still unprocessed, so the merchant may remove them."""
    world.setup(instant=False)
    world.approve_while_locked(monkeypatch, quantity=quantity)
    world.close()
    world.run_jobs()
    assert world.exchange().state == "released", world.exchange().attention_reason
    world.store.reopen_return(world.domain, world.ret["id"])  # the merchant reopens to edit
    return world


def remove_exchange_units(world, quantity: int) -> None:
    """The merchant takes units off the return in Shopify; Shopify sends returns/update."""
    line = world.ret["exchange_line_items"][0]["id"]
    world.store.remove_from_return(world.domain, world.ret["id"], exchange=[(line, quantity)])
    world.return_webhook("returns/update")
    world.run_jobs()


def ongoing_lines(world) -> list[tuple[str, float]]:
    return [(line["article"]["articleNumber"], line["orderedNumberOfItems"])
            for line in world.ongoing_order()["orderLines"]]


def test_units_removed_from_the_return_change_the_ongoing_order_then_withdraw_it(world,
                                                                                 monkeypatch):
    released_before_processing(world, monkeypatch, quantity=2)
    assert ongoing_lines(world) == [(EXCHANGE_SKU, 2)]
    remove_exchange_units(world, 1)
    exchange = world.exchange()
    assert exchange.state == "released", exchange.attention_reason
    assert [i["quantity"] for i in exchange.items] == [1]
    assert ongoing_lines(world) == [(EXCHANGE_SKU, 1)]
    assert world.ongoing_order()["orderInfo"]["orderStatus"]["number"] == 300  # kept
    remove_exchange_units(world, 1)  # none left: the exchange is withdrawn
    exchange = world.exchange()
    assert exchange.state == "cancelled", exchange.attention_reason
    assert world.account.orders[exchange.ongoing_order_id].status == 1000
    assert world.account.return_orders[exchange.ongoing_return_order_id].status == 100
    assert world.store.return_state(world.domain, world.ret["id"])["status"] == "OPEN"


def test_a_removal_after_picking_started_needs_attention(world, monkeypatch):
    released_before_processing(world, monkeypatch, quantity=2)
    world.warehouse_moves(400, webhook=False)  # picked
    remove_exchange_units(world, 1)
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert "after the warehouse started on order EXCH-1001-1 (Ongoing status 400)" in \
        exchange.attention_reason
    assert ongoing_lines(world) == [(EXCHANGE_SKU, 2)]


def test_a_removal_before_create_ran_reaches_ongoing_already_changed(world):
    world.setup(instant=False)
    world.ret = world.store.create_return(world.domain, world.order["id"],
                                          returned=[(RETURNED_SKU, 1)],
                                          exchange=[(EXCHANGE_SKU, 2)])
    world.return_webhook("returns/approve")  # recorded; its jobs have not run yet
    remove_exchange_units(world, 1)
    exchange = world.exchange()
    assert exchange.state == "parked", exchange.attention_reason
    assert ongoing_lines(world) == [(EXCHANGE_SKU, 1)]
    assert any(e.outcome == "amend: exchange items unchanged" for e in world.timeline())


def test_removing_the_exchange_of_a_stuck_exchange_withdraws_it(world):
    world.setup(instant=False, stock=0)
    world.approve()
    world.run_jobs()
    assert world.exchange().state == "needs_attention"  # out of stock
    remove_exchange_units(world, 1)  # the merchant gives up on the exchange in Shopify
    exchange = world.exchange()
    assert exchange.state == "cancelled" and exchange.ongoing_order_id is None
