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


def test_the_exchange_ships_like_the_original_order(world):
    world.setup().approve()  # the original: PostNord MyPack Collect to pickup point 3232323
    world.run_jobs()
    assert world.exchange().state == "parked", world.exchange().attention_reason
    body = world.account.orders[world.exchange().ongoing_order_id].body
    assert body["transporter"] == {"transporterCode": "PLAB", "transporterServiceCode": "P19"}
    assert body["wayOfDelivery"] == {"code": "SHP1", "name": "Shipment way 1"}
    assert body["servicePointCode"] == "3232323"
    assert body["consignee"]["customerNumber"] == "CN1"
    order = world.ongoing_order()  # read back the way Ongoing's example order looks
    assert order["transporter"]["code"] == "PLAB" and order["transporter"]["serviceCode"] == "P19"
    assert order["orderInfo"]["servicePointCode"] == "3232323"
    [shipping] = [e for e in world.timeline() if e.name == "Shipping"]
    assert shipping.kind == "call" and shipping.outcome == (
        "original order 1001 found in Ongoing: transporter PLAB/P19 (original), way of delivery "
        "SHP1 (original), pickup point 3232323 (original), customer CN1 (original)")
    assert world.ongoing.count("GET", "/orders") == 1  # the original was read once


def test_without_the_original_the_settings_defaults_apply(world):
    defaults = {"default_transporter_code": "SBTL", "default_transporter_service_code": "BPA",
                "default_way_of_delivery": "HOME"}
    world.setup(original=False, shipping_defaults=defaults).approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "parked", exchange.attention_reason
    body = world.account.orders[exchange.ongoing_order_id].body
    assert body["transporter"] == {"transporterCode": "SBTL", "transporterServiceCode": "BPA"}
    assert body["wayOfDelivery"] == {"code": "HOME"}
    assert "servicePointCode" not in body and "customerNumber" not in body["consignee"]
    [shipping] = [e for e in world.timeline() if e.name == "Shipping"]
    assert shipping.outcome == ("original order not in Ongoing: transporter SBTL/BPA (Settings), "
                                "way of delivery HOME (Settings)")
    assert any(e.kind == "warning" and "not found in Ongoing" in e.outcome
               for e in world.timeline())


def test_without_original_or_defaults_the_timeline_warns(world):
    world.setup(original=False).approve()
    world.run_jobs()
    body = world.account.orders[world.exchange().ongoing_order_id].body
    assert "transporter" not in body and "wayOfDelivery" not in body
    [shipping] = [e for e in world.timeline() if e.name == "Shipping"]
    assert shipping.kind == "warning" and "must choose one by hand" in shipping.outcome


def test_the_customer_gets_shopify_s_postnord_link_without_an_ongoing_url(world):
    world.setup(instant=True).approve()
    world.run_jobs()
    world.in_transit()
    world.run_jobs()
    world.warehouse_moves(450, waybill="UA65456546")  # like Ongoing's example: no URL
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "completed", exchange.attention_reason
    [fulfillment] = [f for f in world.shopify_order()["fulfillments"]
                     if f["line_items"][0]["sku"] == EXCHANGE_SKU]
    [tracking] = fulfillment["tracking"]
    assert (tracking["number"], tracking["company"]) == ("UA65456546", "PostNord SE")
    assert (exchange.tracking_company, exchange.tracking_url) == ("PostNord SE", None)
