"""The lifecycle on a shop that granted fewer scopes than shopify.app.toml asks for: the
payment-mandate scopes not (yet) approved; the vaulted card is never asked for, the invoice goes."""
from __future__ import annotations

import pytest
from graphql import parse

from jobs.lifecycle import advance
from models import db
from models.shop import get_shop
from sandbox.shopify import scopes

MANDATE = {"read_payment_mandate", "write_payment_mandate"}


def without_mandate() -> frozenset[str]:
    return scopes.app_scopes() - MANDATE


def run_vaulted_exchange(world, **setup):
    world.setup(instant=True, capture_mode="vaulted", **setup).approve()
    world.run_jobs()
    world.in_transit()
    world.run_jobs()
    world.warehouse_moves(450, waybill="VC1")
    world.run_jobs()
    return world.exchange()


def refused_documents(world) -> list[str]:
    """Operations the shop sent that Shopify would refuse with its scopes (ACCESS_DENIED)."""
    granted = world.store.scopes(world.domain)
    sent = {op for shop, op in world.store.calls if shop == world.domain and op[0].isupper()}
    from clients.shopify import load_document

    return sorted(op for op in sent if scopes.refusal(granted, parse(load_document(op))))


def test_without_the_mandate_scope_a_vaulted_order_is_invoiced_and_noted(world):
    exchange = run_vaulted_exchange(world, granted=without_mandate())
    assert (exchange.state, exchange.collection) == ("completed", "invoice"), \
        exchange.attention_reason
    assert world.applied("OrderInvoiceSend") == 1
    assert world.store.count("OrderVaultedPaymentMethods", world.domain) == 0
    assert world.store.count("OrderCreateMandatePayment", world.domain) == 0
    assert refused_documents(world) == []
    [warning] = [e for e in world.timeline() if e.name == "Shopify vaulted card"]
    assert warning.kind == "warning" and "write_payment_mandate" in warning.outcome
    assert "opening Swapline in Shopify admin" in warning.outcome


def test_stored_scopes_that_lag_behind_shopify_fall_back_to_the_invoice(world):
    """Shop.scopes still lists the mandate scope, Shopify no longer grants it (revoked since):
    the refusal of the vaulted-card read is noted and the invoice goes."""
    world.setup(instant=True, capture_mode="vaulted").approve()
    world.run_jobs()
    world.store.grant(world.domain, without_mandate())
    world.in_transit()
    world.run_jobs()
    world.warehouse_moves(450, waybill="VC2")
    world.run_jobs()
    exchange = world.exchange()
    assert (exchange.state, exchange.collection) == ("completed", "invoice")
    assert world.store.count("OrderVaultedPaymentMethods", world.domain) == 1
    assert world.store.count("OrderCreateMandatePayment", world.domain) == 0
    [warning] = [e for e in world.timeline() if e.name == "Shopify vaulted card"]
    assert "`read_payment_mandate`" in warning.outcome
    assert "opening Swapline in Shopify admin" in warning.outcome


def test_a_refused_charge_falls_back_to_the_invoice(world):
    """Read granted, charge not (a shop that granted only read_payment_mandate)."""
    exchange = run_vaulted_exchange(
        world, granted=without_mandate() | {"read_payment_mandate"})
    assert (exchange.state, exchange.collection) == ("completed", "invoice")
    assert world.store.count("OrderCreateMandatePayment", world.domain) == 1
    assert world.applied("OrderCreateMandatePayment") == 0
    [warning] = [e for e in world.timeline() if e.name == "Shopify vaulted card"]
    assert "`write_payment_mandate`" in warning.outcome


def test_the_capture_path_never_asks_for_vaulted_cards(world):
    world.setup(instant=True).approve()
    world.run_jobs()
    world.in_transit()
    world.run_jobs()
    world.warehouse_moves(450, waybill="AU1")
    world.run_jobs()
    assert (world.exchange().state, world.exchange().collection) == ("completed", "captured")
    assert world.store.count("OrderVaultedPaymentMethods", world.domain) == 0


def test_approving_the_scope_later_lets_the_vaulted_card_be_charged(world):
    world.setup(instant=True, capture_mode="vaulted", granted=without_mandate()).approve()
    world.run_jobs()
    world.store.grant(world.domain, scopes.app_scopes())  # the merchant approved in admin
    world.shopify_webhook("app/scopes_update", {
        "id": 1, "previous": sorted(without_mandate()), "current": sorted(scopes.app_scopes())})
    world.run_jobs()
    with db.session() as s:
        assert "write_payment_mandate" in get_shop(world.domain, session=s).scopes
    world.in_transit()
    world.run_jobs()
    world.warehouse_moves(450, waybill="VC3")
    world.run_jobs()
    assert (world.exchange().state, world.exchange().collection) == ("completed", "mandate")


# --- orders older than 60 days (read_all_orders) ---------------------------------------------

def without_all_orders() -> frozenset[str]:
    return scopes.app_scopes() - {"read_all_orders"}


@pytest.mark.parametrize("answer", ["null", "error"])
def test_an_old_order_without_all_orders_access_needs_attention_then_resumes(world, answer):
    """Either answer Shopify may give for an order past 60 days becomes needs attention with the
    reason; once the merchant approves read_all_orders, Retry parks the exchange."""
    world.store.set_old_order_answer(world.domain, answer)
    world.setup(order_age_days=90, granted=without_all_orders()).approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert "only the last 60 days of orders" in exchange.attention_reason
    assert "'All orders'" in exchange.attention_reason
    world.store.grant(world.domain, scopes.app_scopes())  # approved (Shopify, then the merchant)
    world.shopify_webhook("app/scopes_update", {
        "id": 1, "previous": sorted(without_all_orders()), "current": sorted(scopes.app_scopes())})
    world.run_jobs()
    advance(exchange.id, "retry", "merchant: Retry")
    world.run_jobs()
    assert world.exchange().state == "parked", world.exchange().attention_reason
    assert world.applied("FulfillmentOrderHold") == 1


@pytest.mark.parametrize("answer", ["null", "error"])
def test_an_old_order_needs_attention_at_collect_too(world, answer):
    """All orders access revoked after create: ship and collect read the order again."""
    world.setup(instant=True, order_age_days=90).approve()
    world.run_jobs()
    world.in_transit()
    world.run_jobs()
    world.store.set_old_order_answer(world.domain, answer)
    world.store.grant(world.domain, without_all_orders())
    with db.session() as s:
        get_shop(world.domain, session=s).scopes = ",".join(sorted(without_all_orders()))
    world.warehouse_moves(450, waybill="OLD1")
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert "only the last 60 days of orders" in exchange.attention_reason


def test_a_recent_order_is_read_without_all_orders_access(world):
    world.setup(instant=True, order_age_days=59, granted=without_all_orders()).approve()
    world.run_jobs()
    world.in_transit()
    world.run_jobs()
    world.warehouse_moves(450, waybill="NEW1")
    world.run_jobs()
    assert world.exchange().state == "completed", world.exchange().attention_reason


def test_an_order_gone_with_all_orders_access_says_so(world):
    world.setup(order_age_days=90).approve()
    world.run_jobs()
    assert world.exchange().state == "parked"
    exchange = world.exchange()
    with db.session() as s:
        get_shop(world.domain, session=s).scopes = ",".join(sorted(scopes.app_scopes()))
    world.store.shops[world.domain].orders.pop(int(exchange.order_gid.rsplit("/", 1)[1]))
    advance(exchange.id, "sent", "test")
    assert world.exchange().state == "needs_attention"
    assert "may have been deleted" in world.exchange().attention_reason
