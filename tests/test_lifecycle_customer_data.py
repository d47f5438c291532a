"""The lifecycle on a shop whose Swapline lacks Protected customer data (Level 2) approval, under
each answer Shopify may give (sandbox/shopify/customer_data.py): the exchange ships to the original
Ongoing order's address, or waits in needs attention with the reason, never to an empty address."""
from __future__ import annotations

import pytest
from sqlmodel import select

from jobs.lifecycle import advance
from jobs.sweeper import sweep
from models import db
from models.delivery import WebhookDelivery

WITHOUT = ("redacted", "error")


def consignee(world) -> dict:
    return world.ongoing_order()["consignee"]


def test_approved_ships_to_shopifys_address_with_the_email(world):
    world.setup().approve()
    world.run_jobs()
    assert world.exchange().state == "parked"
    assert consignee(world)["address1"] == "Storgatan 1"
    assert consignee(world)["name"] == "Alva Svensson"
    body = world.account.orders[world.exchange().ongoing_order_id].body
    assert body["emailNotification"]["value"] == "customer@example.com"
    assert not [e for e in world.timeline() if e.name == "Consignee"]


@pytest.mark.parametrize("mode", WITHOUT)
def test_withheld_address_ships_to_the_original_ongoing_order(world, mode):
    world.store.set_customer_data(world.domain, mode)
    world.setup().approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "parked", exchange.attention_reason
    to = consignee(world)
    assert (to["name"], to["address1"], to["postCode"], to["city"], to["countryCode"]) == \
        ("A Customer", "Street 1", "11122", "Stockholm", "SE")
    body = world.account.orders[exchange.ongoing_order_id].body
    assert "emailNotification" not in body  # no email: no notification field, no failure
    [why] = [e for e in world.timeline() if e.name == "Consignee"]
    assert why.kind == "warning"
    assert "original Ongoing order 1001" in why.outcome
    assert "Protected customer data" in why.outcome


@pytest.mark.parametrize("mode", WITHOUT)
def test_withheld_address_without_the_original_needs_attention_then_retry_parks(world, mode):
    world.store.set_customer_data(world.domain, mode)
    world.setup(original=False).approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert exchange.ongoing_order_id is None  # nothing the warehouse cannot ship
    assert exchange.attention_reason.startswith(
        "Shopify withholds the customer's address from Swapline: the app needs Protected "
        "customer data (Level 2: name, address, email, phone) approved in the Partner Dashboard")
    assert "press Retry" in exchange.attention_reason
    world.store.set_customer_data(world.domain, "approved")  # Shopify approved the app
    advance(exchange.id, "retry", "merchant: Retry")
    world.run_jobs()
    assert world.exchange().state == "parked", world.exchange().attention_reason
    assert consignee(world)["address1"] == "Storgatan 1"


def test_a_refused_order_object_at_retry_needs_attention_with_the_reason(world):
    """Shopify may refuse the whole Order (Return.order is non-null: the return goes too)."""
    world.store.set_customer_data(world.domain, "redacted")
    world.setup(original=False).approve()
    world.run_jobs()
    exchange = world.exchange()
    world.store.set_customer_data(world.domain, "order_error")
    advance(exchange.id, "retry", "merchant: Retry")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert "refuses this return's order altogether" in exchange.attention_reason
    assert "Protected customer data (Level 2" in exchange.attention_reason
    world.store.set_customer_data(world.domain, "approved")
    advance(exchange.id, "retry", "merchant: Retry")
    world.run_jobs()
    assert world.exchange().state == "parked", world.exchange().attention_reason


def test_a_refused_order_object_at_detection_keeps_the_delivery_until_approved(world):
    """No return to read, so no exchange yet: the delivery stays unprocessed with the reason,
    and its retries (or the sweeper after them) detect the exchange once Shopify answers."""
    world.store.set_customer_data(world.domain, "order_error")
    world.setup().approve()
    world.run_jobs()
    with db.session() as s:
        [delivery] = s.exec(select(WebhookDelivery).where(
            WebhookDelivery.topic == "returns/approve")).all()
        assert delivery.processed_at is None
        assert "Protected customer data (Level 2" in delivery.last_error
    world.store.set_customer_data(world.domain, "approved")
    sweep(grace_seconds=0)  # its retries, or the sweeper once they are spent
    world.run_jobs(retries=True)
    assert world.exchange().state == "parked", world.exchange().attention_reason


def test_an_incomplete_address_is_not_blamed_on_protected_data(world):
    world.setup(original=False)
    world.order = world.store.create_order(world.domain, items=[("SHIRT-M", 1)], name="#1002",
                                           shipping_address={"zip": None})
    world.approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert "has no postcode" in exchange.attention_reason
    assert "Complete the shipping address" in exchange.attention_reason
