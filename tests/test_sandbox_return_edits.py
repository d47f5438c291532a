"""The sandbox Shopify's merchant actions around exchanges: removeFromReturn with Shopify's
preconditions, and exchange items priced 0 that returnProcess leaves without a fulfillment order."""
from __future__ import annotations

import uuid

import pytest

from sandbox.shopify.graphql_fulfillment import return_process
from sandbox.shopify.return_edits import UserErrors


@pytest.fixture
def store(sandbox):
    return sandbox.store


@pytest.fixture
def shop(store):
    domain = f"t{uuid.uuid4().hex[:10]}.myshopify.com"
    for sku, price in (("RM-M", "20.00"), ("RM-L", "25.00"), ("RM-FREE", "0.00")):
        store.add_variant(domain, sku, price, sku)
    return domain


def test_remove_from_return_follows_recorded_preconditions(store, shop):
    """userErrors as recorded live (airhorns/shopify-draft-proxy, 2026-04 orders/
    return-quantity-validation, returnClose-Reopen-Cancel-state-preconditions,
    order-return-status-lifecycle removedCase); exchange lines by analogy."""
    order = store.create_order(shop, items=[("RM-M", 1)])
    ret = store.create_return(shop, order["id"], returned=[("RM-M", 1)],
                              exchange=[("RM-L", 2)])
    line = ret["exchange_line_items"][0]["id"]

    def refused(**kwargs) -> list[dict]:
        with pytest.raises(UserErrors) as caught:
            store.remove_from_return(shop, ret["id"], **kwargs)
        return caught.value.errors

    assert refused(exchange=[(line, 0)]) == [
        {"field": None, "message": "Quantity must be greater than 0", "code": "GREATER_THAN"}]
    assert refused(exchange=[(line, 3)]) == [
        {"field": ["exchangeLineItems", "0", "quantity"],
         "message": "Exchange line item has an invalid quantity.", "code": "INVALID"}]
    after = store.remove_from_return(shop, ret["id"], exchange=[(line, 1)])
    assert after["status"] == "OPEN" and after["balance"] == "5.00"
    assert after["exchange_line_items"][0]["removed_quantity"] == 1
    store.close_return(shop, ret["id"])
    assert refused(exchange=[(line, 1)]) == [
        {"field": ["returnId"], "message": "Return status is invalid.", "code": "INVALID_STATE"}]
    store.reopen_return(shop, ret["id"])
    returned = ret["return_line_items"][0]["id"]
    emptied = store.remove_from_return(shop, ret["id"], exchange=[(line, 1)],
                                       returned=[(returned, 1)])
    assert emptied["status"] == "CLOSED"  # nothing left on it
    payload = store.return_payload(shop, ret["id"], "returns/update")
    assert payload["return_line_items"]["removals"] == [
        {"admin_graphql_api_id": returned, "delta": 1}]


def test_remove_from_return_refuses_processed_exchange_units(store, shop):
    store.set_workflow(shop, "legacy")  # processed when the return opens
    order = store.create_order(shop, items=[("RM-M", 1)])
    ret = store.create_return(shop, order["id"], returned=[("RM-M", 1)], exchange=[("RM-L", 1)])
    with pytest.raises(UserErrors, match="invalid quantity"):
        store.remove_from_return(shop, ret["id"],
                                 exchange=[(ret["exchange_line_items"][0]["id"], 1)])


def test_zero_priced_exchange_items_wait_for_process_return_in_admin(store, shop):
    store.set_zero_price_exchange_unreleased(shop)
    order = store.create_order(shop, items=[("RM-M", 1)])
    ret = store.create_return(shop, order["id"], returned=[("RM-M", 1)],
                              exchange=[("RM-FREE", 1)])
    answer = return_process(store, store.shops[shop], {"input": {
        "returnId": ret["id"], "exchangeLineItems": [
            {"id": ret["exchange_line_items"][0]["id"], "quantity": 1}]}})
    assert answer["userErrors"] == []
    [line] = store.return_state(shop, ret["id"])["exchange_line_items"]
    assert (line["processed_quantity"], line["unreleased_quantity"], line["line_item_ids"]) == \
        (1, 1, [])
    assert store.return_state(shop, ret["id"])["fulfillment_order_ids"] == []
    after = store.process_return_in_admin(shop, ret["id"])
    [fo_id] = after["fulfillment_order_ids"]
    [fo] = [f for f in store.order_state(shop, order["id"])["fulfillment_orders"]
            if f["id"] == fo_id]
    assert fo["status"] == "OPEN" and fo["line_items"][0]["sku"] == "RM-FREE"
