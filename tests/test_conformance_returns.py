"""Returns answer like live Shopify 2026-04: returnProcess with Swapline's document, return(id) and
nodes(ids) reads, and the merchant's moves (close, reopen, cancel, approve, decline) through the
sandbox hooks, which raise UserError with Shopify's message, field and code.

Every test names the recording it replays (under conformance.RECORDINGS).
"""
from __future__ import annotations

import pytest

from sandbox.shopify.store import UserError
from tests import conformance

live = conformance.live  # the fixture
INVALID = ("Return status is invalid.", ["id"], "INVALID_STATE")
NOT_FOUND = ("Return not found.", ["id"], "NOT_FOUND")
UNKNOWN_RETURN = "gid://shopify/Return/999999999999999"


def _refused(call, *args) -> tuple:
    with pytest.raises(UserError) as refused:
        call(*args)
    return refused.value.message, refused.value.field, refused.value.code


def _status(live, return_id: str) -> str:
    return live.store.return_state(live.shop, return_id)["status"]


def test_close_and_reopen_need_an_open_or_closed_return(live):
    """orders/returnClose-Reopen-Cancel-state-preconditions.json (requestedCase, declinedCase):
    closing or reopening a REQUESTED return, or closing a DECLINED one, is INVALID_STATE."""
    store, shop = live.store, live.shop
    order = store.create_order(shop, items=[("TS-M", 2)])
    requested = store.create_return(shop, order["id"], returned=[("TS-M", 1)], requested=True)
    assert _refused(store.close_return, shop, requested["id"]) == INVALID
    assert _refused(store.reopen_return, shop, requested["id"]) == INVALID
    assert _status(live, requested["id"]) == "REQUESTED"
    store.decline_return(shop, requested["id"], "OTHER")
    assert _refused(store.close_return, shop, requested["id"]) == INVALID


def test_close_reopen_and_cancel_are_idempotent(live):
    """orders/returnClose-Reopen-Cancel-state-preconditions.json (openCloseReopenCase,
    cancelableCase): close, close again, reopen, reopen again all succeed; an untouched OPEN
    return cancels, and cancelling it again succeeds and leaves it CANCELED."""
    store, shop = live.store, live.shop
    order, ret = live.exchange()
    assert store.close_return(shop, ret["id"])["status"] == "CLOSED"
    assert store.close_return(shop, ret["id"])["status"] == "CLOSED"
    assert store.reopen_return(shop, ret["id"])["status"] == "OPEN"
    assert store.reopen_return(shop, ret["id"])["status"] == "OPEN"
    assert store.cancel_return(shop, ret["id"])["status"] == "CANCELED"
    assert store.cancel_return(shop, ret["id"])["status"] == "CANCELED"


def test_return_process_leaves_the_return_open_and_then_it_cannot_be_cancelled(live):
    """orders/returnClose-Reopen-Cancel-state-preconditions.json (processedCase) and
    orders/order-return-status-lifecycle.json (mixedCase): returnProcess with a line of another
    return is NOT_FOUND; processing the exchange keeps the return OPEN with the items processed;
    returnCancel afterwards is refused ("Return is not cancelable.")."""
    order, other = live.exchange()
    _, ret = live.exchange()
    foreign = other["return_line_items"][0]["id"]
    invalid = live.data("ReturnProcessExchange", input={
        "returnId": ret["id"], "returnLineItems": [{"id": foreign, "quantity": 1}]})
    assert invalid == {"return": None, "userErrors": [{
        "field": ["input", "returnLineItems", "0", "id"],
        "message": "Return line item was not found.", "code": "NOT_FOUND"}]}
    processed = live.process(ret)
    assert processed["userErrors"] == [] and processed["return"]["id"] == ret["id"]
    # The payload is the return after processing (live: processedQuantity already 1 in
    # order-return-status-lifecycle.json processFirst): create reads the new line items here.
    [node] = processed["return"]["exchangeLineItems"]["nodes"]
    assert (node["processedQuantity"], node["unprocessedQuantity"]) == (1, 0)
    read = live.data("ReturnForExchange", id=ret["id"])
    assert [li["id"] for li in node["lineItems"]] == \
        [li["id"] for li in read["exchangeLineItems"]["nodes"][0]["lineItems"]] != []
    assert read["status"] == "OPEN"
    item = read["exchangeLineItems"]["nodes"][0]
    assert (item["processedQuantity"], item["unprocessedQuantity"]) == (1, 0)
    assert _refused(live.store.cancel_return, live.shop, ret["id"]) == (
        "Return is not cancelable.", ["id"], "INVALID_STATE")
    assert _status(live, ret["id"]) == "OPEN"


def test_returned_lines_processed_keep_the_return_open(live):
    """orders/order-return-status-lifecycle.json (mixedCase returnProcess) and
    returnClose-Reopen-Cancel-state-preconditions.json (processedCase returnProcess): processing
    the returned line answers the return still OPEN."""
    _, ret = live.exchange()
    line = ret["return_line_items"][0]["id"]
    done = live.data("ReturnProcessExchange", input={
        "returnId": ret["id"], "returnLineItems": [{"id": line, "quantity": 1}],
        "notifyCustomer": True})
    assert done["userErrors"] == [] and _status(live, ret["id"]) == "OPEN"
    assert live.store.return_state(live.shop, ret["id"])["return_line_items"][0][
        "processed_quantity"] == 1


def test_unknown_returns(live):
    """orders/returnClose-Reopen-Cancel-state-preconditions.json (notFoundCase): return(id) reads
    null; returnCancel/Close/Reopen say "Return not found." (NOT_FOUND, field [id]); returnProcess
    says the same under [input, returnId]. returnApprove-decline-state-preconditions.json
    (unknownIdCase): approve and decline name [input, id]."""
    store, shop = live.store, live.shop
    assert live.data("ReturnForExchange", id=UNKNOWN_RETURN) is None
    for move in (store.cancel_return, store.close_return, store.reopen_return):
        assert _refused(move, shop, UNKNOWN_RETURN) == NOT_FOUND
    processed = live.data("ReturnProcessExchange", input={
        "returnId": UNKNOWN_RETURN, "returnLineItems": [
            {"id": "gid://shopify/ReturnLineItem/999999999999999", "quantity": 1}],
        "notifyCustomer": True})
    assert processed == {"return": None, "userErrors": [{
        "field": ["input", "returnId"], "message": "Return not found.", "code": "NOT_FOUND"}]}
    for move in (store.approve_return, store.decline_return):
        assert _refused(move, shop, UNKNOWN_RETURN) == ("Return not found.", ["input", "id"],
                                                        "NOT_FOUND")


def test_approve_and_decline_need_a_requested_return(live):
    """orders/returnApprove-decline-state-preconditions.json (openCase, declinedCase)."""
    store, shop = live.store, live.shop
    _, ret = live.exchange()
    not_approvable = ("Return is not approvable. Only returns with status REQUESTED can be "
                      "approved.", ["input", "id"], "INVALID_STATE")
    assert _refused(store.approve_return, shop, ret["id"]) == not_approvable
    assert _refused(store.decline_return, shop, ret["id"]) == (
        "Return is not declinable. Only non-refunded returns with status REQUESTED can be "
        "declined.", ["input", "id"], "INVALID_STATE")
    order = store.create_order(shop, items=[("TS-M", 1)])
    requested = store.create_return(shop, order["id"], returned=[("TS-M", 1)], requested=True)
    store.decline_return(shop, requested["id"], "OTHER")
    assert _refused(store.approve_return, shop, requested["id"]) == not_approvable
    assert _refused(store.decline_return, shop, requested["id"]) == (
        "The return is already declined.", ["input", "id"], "INVALID_STATE")


def test_nodes_answers_each_id_in_order(live):
    """admin-platform/fulfillment-return-node-read-after-write.json (duplicateNodes,
    releasedHoldNode): nodes(ids) answers one entry per id in the order given, repeats included;
    an unknown id is null; a node of another type selects nothing from the fragment."""
    order, ret = live.exchange("TS-L")
    variant = ret["exchange_line_items"][0]["variant_id"]
    nodes = live.data("VariantsForExchange", ids=[variant, order["id"], variant,
                                                  "gid://shopify/ProductVariant/1"])
    expected = {"id": variant, "sku": "TS-L", "price": "30.00", "displayName": "T-shirt - L"}
    assert nodes == [expected, {}, expected, None]
