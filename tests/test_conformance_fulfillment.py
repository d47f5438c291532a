"""Holds, releases and fulfillmentCreate answer like live Shopify 2026-04 (tests/conformance.py).

Every test names the recording it replays (under conformance.RECORDINGS); it drives the sandbox
with Swapline's own documents (FulfillmentOrderHold, FulfillmentOrderReleaseHold,
FulfillmentCreate, OrderFulfillmentOrders) and asserts the userErrors, statuses and state the
recording shows.
"""
from __future__ import annotations

from tests import conformance
from tests.conformance import actions, number

live = conformance.live  # the fixture

OPEN_ACTIONS = ["CREATE_FULFILLMENT", "REPORT_PROGRESS", "MOVE", "HOLD"]
HELD_ACTIONS = ["RELEASE_HOLD", "HOLD", "MOVE"]
DUPLICATE_HANDLE = ("The handle provided for the fulfillment hold is already in use by this app "
                    "for another hold on this fulfillment order.")
LIMIT = ("The maximum number of fulfillment holds for this fulfillment order has been reached for "
         "this app. An app can only have up to 10 holds on a single fulfillment order at any one "
         "time.")


def test_a_hold_puts_the_fo_on_hold_and_changes_its_actions(live):
    """shipping-fulfillments/fulfillment-order-hold-validation.json (firstHold, secondHold) and
    fulfillment-order-open-report-progress-preconditions.json (onHold): OPEN offers
    CREATE_FULFILLMENT, REPORT_PROGRESS, MOVE, HOLD (+ SPLIT with more than one item); held, only
    RELEASE_HOLD, HOLD, MOVE. A second hold of the same app stacks on the first."""
    order, fo = live.open_fo("SOCK", quantity=2)
    assert fo["status"] == "OPEN" and actions(fo) == OPEN_ACTIONS + ["SPLIT"]
    _, single = live.open_fo("TS-S")
    assert actions(single) == OPEN_ACTIONS  # one item: nothing to split
    first = live.hold(fo["id"], "appA-1")
    assert first["userErrors"] == [] and first["fulfillmentHold"]["handle"] == "appA-1"
    assert first["fulfillmentOrder"] == {"id": fo["id"], "status": "ON_HOLD"}
    assert live.hold(fo["id"], "appA-3")["userErrors"] == []
    held = live.order_fos(order["id"])[-1]
    assert held["status"] == "ON_HOLD" and actions(held) == HELD_ACTIONS
    assert [(h["handle"], h["reason"], h["heldByRequestingApp"])
            for h in held["fulfillmentHolds"]] == [("appA-1", "OTHER", True),
                                                   ("appA-3", "OTHER", True)]


def test_hold_validation_wording_and_order(live):
    """shipping-fulfillments/fulfillment-order-hold-validation.json: duplicateHandle,
    notSplittable, limitReached (10 holds per app), zeroQuantity and duplicateLineItems, each with
    the recorded field, code and message; then releasing all ten by id reopens the FO."""
    order, fo = live.open_fo("SOCK", quantity=2)
    line = fo["lineItems"]["nodes"][0]["id"]
    assert live.hold(fo["id"], "appA-1")["userErrors"] == []
    assert live.hold(fo["id"], "appA-1")["userErrors"] == [{
        "field": ["fulfillmentHold", "handle"], "message": DUPLICATE_HANDLE,
        "code": "DUPLICATE_FULFILLMENT_HOLD_HANDLE"}]
    split = live.hold(fo["id"], "appA-2", fulfillmentOrderLineItems=[{"id": line, "quantity": 1}])
    assert split == {"fulfillmentHold": None, "fulfillmentOrder": None, "userErrors": [{
        "field": ["fulfillmentHold", "fulfillmentOrderLineItems"],
        "message": "The fulfillment order is not in a splittable state.",
        "code": "FULFILLMENT_ORDER_NOT_SPLITTABLE"}]}
    for n in range(3, 12):
        assert live.hold(fo["id"], f"appA-{n}")["userErrors"] == []
    assert live.hold(fo["id"], "appA-12")["userErrors"] == [{
        "field": ["id"], "message": LIMIT, "code": "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED"}]
    zero = live.hold(fo["id"], "appA-13", fulfillmentOrderLineItems=[{"id": line, "quantity": 0}])
    assert zero["userErrors"] == [{
        "field": ["fulfillmentHold", "fulfillmentOrderLineItems", "0", "quantity"],
        "message": "You must select at least one item to place on partial hold.",
        "code": "GREATER_THAN_ZERO"}]
    twice = live.hold(fo["id"], "appA-14", fulfillmentOrderLineItems=[
        {"id": line, "quantity": 1}, {"id": line, "quantity": 1}])
    assert twice["userErrors"] == [{
        "field": ["fulfillmentHold", "fulfillmentOrderLineItems"],
        "message": "must contain unique line item ids",
        "code": "DUPLICATED_FULFILLMENT_ORDER_LINE_ITEMS"}]
    holds = [h["id"] for h in live.order_fos(order["id"])[-1]["fulfillmentHolds"]]
    assert len(holds) == 10
    released = live.data("FulfillmentOrderReleaseHold", id=fo["id"], holdIds=holds)
    assert released["userErrors"] == [] and released["fulfillmentOrder"]["status"] == "OPEN"


def test_releasing_one_hold_of_two_leaves_the_other(live):
    """shipping-fulfillments/fulfillment-order-release-hold-selective.json: an app's
    AWAITING_RETURN_ITEMS hold and an OTHER hold; releasing the first by id leaves the FO ON_HOLD
    with the second only; releasing that one opens it with its full actions again."""
    order, fo = live.open_fo("SOCK", quantity=2)
    first = live.hold(fo["id"], "selective-release-first", reason="AWAITING_RETURN_ITEMS")
    second = live.hold(fo["id"], "selective-release-second")
    after = live.data("FulfillmentOrderReleaseHold", id=fo["id"],
                      holdIds=[first["fulfillmentHold"]["id"]])
    assert after["userErrors"] == []
    still = after["fulfillmentOrder"]
    assert still["status"] == "ON_HOLD" and actions(still) == HELD_ACTIONS
    assert [(h["id"], h["handle"], h["reason"], h["heldByRequestingApp"])
            for h in still["fulfillmentHolds"]] == [
        (second["fulfillmentHold"]["id"], "selective-release-second", "OTHER", True)]
    assert live.order_fos(order["id"])[-1]["fulfillmentHolds"] == still["fulfillmentHolds"]
    done = live.data("FulfillmentOrderReleaseHold", id=fo["id"],
                     holdIds=[second["fulfillmentHold"]["id"]])["fulfillmentOrder"]
    assert done["status"] == "OPEN" and done["fulfillmentHolds"] == []
    assert actions(done) == OPEN_ACTIONS + ["SPLIT"]


def test_an_awaiting_return_items_hold_displays_as_exchange_items(live):
    """admin-platform/fulfillment-return-node-read-after-write.json and
    fulfillment-order-release-hold-selective.json: displayReason of AWAITING_RETURN_ITEMS."""
    order, fo = live.open_fo()
    live.hold(fo["id"], "node-hold", reason="AWAITING_RETURN_ITEMS")
    query = ("query OrderFulfillmentOrders($id: ID!) { order(id: $id) { fulfillmentOrders"
             "(first: 5) { nodes { fulfillmentHolds { reason displayReason } } } } }")
    body = live.post("OrderFulfillmentOrders", query=query, id=order["id"])
    assert body["data"]["order"]["fulfillmentOrders"]["nodes"][-1]["fulfillmentHolds"] == [
        {"reason": "AWAITING_RETURN_ITEMS",
         "displayReason": "Exchange items awaiting return delivery"}]


def test_an_unknown_fulfillment_order_is_a_top_level_error(live):
    """shipping-fulfillments/fulfillment-order-lifecycle.json (holdUnknownId,
    releaseHoldUnknownId): no userError but `errors` with RESOURCE_NOT_FOUND and data null."""
    unknown = "gid://shopify/FulfillmentOrder/0"
    for name, root, variables in (
            ("FulfillmentOrderHold", "fulfillmentOrderHold", {"hold": {"reason": "OTHER"}}),
            ("FulfillmentOrderReleaseHold", "fulfillmentOrderReleaseHold",
             {"holdIds": ["gid://shopify/FulfillmentHold/0"]})):
        body = live.post(name, id=unknown, **variables)
        assert body["data"] == {root: None}
        assert [(e["message"], e["extensions"]["code"], e["path"]) for e in body["errors"]] == \
            [(f"Invalid id: {unknown}", "RESOURCE_NOT_FOUND", [root])]


def test_hold_and_release_lifecycle(live):
    """shipping-fulfillments/fulfillment-order-lifecycle.json (holdRelease): hold -> the order
    reads ON_HOLD; release by hold id -> OPEN, no holds, CREATE_FULFILLMENT offered again."""
    order, fo = live.open_fo("SOCK", quantity=2)
    held = live.hold(fo["id"], "har-234-hold-release")
    assert live.order_fos(order["id"])[-1]["status"] == "ON_HOLD"
    released = live.data("FulfillmentOrderReleaseHold", id=fo["id"],
                         holdIds=[held["fulfillmentHold"]["id"]])["fulfillmentOrder"]
    assert (released["status"], released["fulfillmentHolds"]) == ("OPEN", [])
    assert live.order_fos(order["id"])[-1]["status"] == "OPEN"


def test_fulfillment_create_happy_path_then_closed(live):
    """orders/fulfillment-create-preconditions.json (happyPath, closed): fulfilling the whole FO
    answers SUCCESS with the tracking as sent and closes the FO (no actions left); fulfilling it
    again is refused under field [fulfillment], naming the FO by its number."""
    order, fo = live.open_fo()
    done = live.fulfil(fo["id"])
    assert done["userErrors"] == [] and done["fulfillment"]["status"] == "SUCCESS"
    assert done["fulfillment"]["trackingInfo"] == [
        {"number": "FCP-1", "url": "https://example.com/track/FCP-1", "company": "Hermes"}]
    closed = live.order_fos(order["id"])[-1]
    assert closed["status"] == "CLOSED" and actions(closed) == []
    assert live.fulfil(fo["id"]) == {"fulfillment": None, "userErrors": [{
        "field": ["fulfillment"],
        "message": f"Fulfillment order {number(fo['id'])} has an unfulfillable status= closed."}]}


def test_fulfillment_create_quantity_and_missing_fo(live):
    """orders/fulfillment-create-preconditions.json (nonPositiveQuantity, overFulfill,
    missingFulfillmentOrder): the recorded fields and messages; nothing is fulfilled."""
    order, fo = live.open_fo()
    line = fo["lineItems"]["nodes"][0]["id"]
    assert live.fulfil(fo["id"], [{"id": line, "quantity": 0}])["userErrors"] == [{
        "field": ["fulfillment", "lineItemsByFulfillmentOrder", "0", "fulfillmentOrderLineItems",
                  "0", "quantity"], "message": "Quantity must be greater than 0"}]
    assert live.fulfil(fo["id"], [{"id": line, "quantity": 2}])["userErrors"] == [{
        "field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity "
                                             "requested."}]
    missing = live.fulfil("gid://shopify/FulfillmentOrder/999999999",
                          [{"id": "gid://shopify/FulfillmentOrderLineItem/999999999",
                            "quantity": 1}])
    assert missing == {"fulfillment": None, "userErrors": [{
        "field": ["fulfillment"], "message": "Fulfillment order does not exist."}]}
    untouched = live.order_fos(order["id"])[-1]
    assert untouched["status"] == "OPEN"
    assert untouched["lineItems"]["nodes"][0]["remainingQuantity"] == 1


def test_fulfillment_create_on_a_held_fo_is_refused(live):
    """orders/fulfillment-create-preconditions.json (closed) with
    fulfillment-order-open-report-progress-preconditions.json (onHold: a held FO offers no
    CREATE_FULFILLMENT): refused with the recorded wording for an unfulfillable status; the
    on_hold variant of that message is inferred (no recording fulfils a held FO)."""
    order, fo = live.open_fo()
    live.hold(fo["id"], "swapline-exchange")
    refused = live.fulfil(fo["id"])
    assert refused == {"fulfillment": None, "userErrors": [{
        "field": ["fulfillment"],
        "message": f"Fulfillment order {number(fo['id'])} has an unfulfillable status= on_hold."}]}
    assert live.order_fos(order["id"])[-1]["status"] == "ON_HOLD"
