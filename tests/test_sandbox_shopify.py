"""The sandbox Shopify answers the app's real GraphQL documents like Shopify (returns, holds,
fulfilment, payments), fails on demand, and builds the documented returns/* webhook bodies."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from sandbox.shopify.graphql_ops import OPERATIONS, admin_schema

DOCUMENTS = Path(__file__).resolve().parent.parent / "clients" / "graphql"
PROCESS = "ReturnProcessExchange"


@pytest.fixture
def shop(sandbox):
    """A fresh shop with four variants; faults are dropped afterwards."""
    domain = f"t{uuid.uuid4().hex[:10]}.myshopify.com"
    for sku, price, title in (("TS-M", "25.00", "T-shirt - M"), ("TS-L", "30.00", "T-shirt - L"),
                              ("TS-S", "20.00", "T-shirt - S"), ("SOCK", "10.00", "Socks")):
        sandbox.store.add_variant(domain, sku, price, title)
    yield domain
    sandbox.store.reset_faults()


@pytest.fixture
def gql(sandbox, shop):
    """POST one of clients/graphql/*.graphql to the sandbox as the app does."""
    token = sandbox.store.issue_pair(shop)["access_token"]

    def call(name: str, *, query: str | None = None, as_shop: str | None = None, **variables):
        body = {"query": query or (DOCUMENTS / f"{name}.graphql").read_text(),
                "variables": variables}
        if as_shop:
            token_for = sandbox.store.issue_pair(as_shop)["access_token"]
        return requests.post(f"{sandbox.origin}/admin/api/2026-10/graphql.json", json=body,
                             headers={"X-Swapline-Shop": as_shop or shop,
                                      "X-Shopify-Access-Token": token_for if as_shop else token},
                             timeout=5)

    def data(name: str, **variables) -> dict:
        response = call(name, **variables)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.json()
        return response.json()["data"]

    call.data = data
    return call


@pytest.fixture
def exchange(sandbox, shop):
    """An order for TS-M (25.00) and a return exchanging it: (order, return) summaries."""

    def make(new_sku: str = "TS-L", quantity: int = 1, **order_options):
        order = sandbox.store.create_order(shop, items=[("TS-M", 1)], **order_options)
        ret = sandbox.store.create_return(shop, order["id"], returned=[("TS-M", 1)],
                                          exchange=[(new_sku, quantity)])
        return order, ret

    return make


def fulfillment_orders(gql, order_id: str) -> list[dict]:
    return gql.data("OrderFulfillmentOrders", id=order_id)["order"]["fulfillmentOrders"]["nodes"]


def process(gql, ret: dict, quantity: int = 1) -> dict:
    item = ret["exchange_line_items"][0]["id"]
    return gql.data(PROCESS, input={"returnId": ret["id"], "exchangeLineItems": [
        {"id": item, "quantity": quantity}]})["returnProcess"]


def hold(gql, fo_id: str, handle: str = "swapline-exchange") -> dict:
    return gql.data("FulfillmentOrderHold", id=fo_id, hold={
        "reason": "OTHER", "reasonNotes": "parked", "handle": handle})["fulfillmentOrderHold"]


def release(gql, fo_id: str, *hold_ids: str) -> dict:
    return gql.data("FulfillmentOrderReleaseHold", id=fo_id,
                    holdIds=list(hold_ids))["fulfillmentOrderReleaseHold"]


def fulfil(gql, fo_id: str, lines: list[dict] | None = None) -> dict:
    group = {"fulfillmentOrderId": fo_id}
    if lines is not None:
        group["fulfillmentOrderLineItems"] = lines
    return gql.data("FulfillmentCreate", fulfillment={
        "lineItemsByFulfillmentOrder": [group], "notifyCustomer": True,
        "trackingInfo": {"number": "PN123", "url": "https://track.example/PN123",
                         "company": "PostNord"}})["fulfillmentCreate"]


def outstanding(gql, order_id: str) -> str:
    return gql.data("OrderPayment", id=order_id)["order"]["totalOutstandingSet"][
        "presentmentMoney"]["amount"]


def test_every_contract_document_has_a_resolver():
    assert set(OPERATIONS) == {path.stem for path in DOCUMENTS.glob("*.graphql")}


def test_return_answers_exactly_the_selected_fields(gql, exchange):
    order, ret = exchange()
    got = gql.data("ReturnForExchange", id=ret["id"])["return"]
    for connection in ("exchangeLineItems", "returnLineItems"):
        page = got[connection].pop("pageInfo")
        assert page["hasNextPage"] is False and isinstance(page["endCursor"], str)
    assert got == {
        "id": ret["id"], "name": "#1001-R1", "status": "OPEN",
        "order": {"id": order["id"], "name": "#1001", "email": "customer@example.com",
                  "shippingAddress": {"name": "Alva Svensson", "company": None,
                                      "address1": "Storgatan 1", "address2": "lgh 1102",
                                      "city": "Stockholm", "zip": "11122", "provinceCode": None,
                                      "countryCodeV2": "SE", "phone": "+46701234567"}},
        "exchangeLineItems": {"nodes": [{
            "id": ret["exchange_line_items"][0]["id"],
            "variantId": ret["exchange_line_items"][0]["variant_id"], "quantity": 1,
            "processedQuantity": 0, "unprocessedQuantity": 1, "lineItems": []}]},
        "returnLineItems": {"nodes": [{
            "id": ret["return_line_items"][0]["id"], "quantity": 1,
            "fulfillmentLineItem": {"lineItem": {"id": order["line_items"][0]["id"],
                                                 "sku": "TS-M"}}}]}}
    variants = gql.data("VariantsForExchange", ids=[
        ret["exchange_line_items"][0]["variant_id"], "gid://shopify/ProductVariant/1", order["id"]])
    assert variants["nodes"] == [{"id": ret["exchange_line_items"][0]["variant_id"],
                                  "sku": "TS-L", "price": "30.00", "displayName": "T-shirt - L"},
                                 None, {}]


def test_processing_workflow_makes_the_fo_only_when_processed(gql, exchange):
    order, ret = exchange()
    assert [fo["status"] for fo in fulfillment_orders(gql, order["id"])] == ["CLOSED"]
    assert outstanding(gql, order["id"]) == "0.0"
    processed = process(gql, ret)
    assert processed["userErrors"] == [] and processed["return"]["id"] == ret["id"]
    original, new = fulfillment_orders(gql, order["id"])
    item = gql.data("ReturnForExchange", id=ret["id"])["return"]["exchangeLineItems"]["nodes"][0]
    assert processed["return"]["exchangeLineItems"]["nodes"] == [item]  # the payload: after
    assert (item["processedQuantity"], item["unprocessedQuantity"]) == (1, 0)
    assert new["lineItems"]["nodes"][0]["lineItem"] == item["lineItems"][0] == {
        "id": item["lineItems"][0]["id"], "sku": "TS-L"}
    assert new["status"] == "ON_HOLD" and [a["action"] for a in new["supportedActions"]] == \
        ["RELEASE_HOLD", "HOLD", "MOVE"]
    assert [(h["reason"], h["heldByRequestingApp"]) for h in new["fulfillmentHolds"]] == \
        [("AWAITING_PAYMENT", False)]
    assert outstanding(gql, order["id"]) == "5.0"
    again = process(gql, ret)
    assert again["return"] is None and again["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert again["userErrors"][0]["field"] == ["input", "exchangeLineItems", "0", "quantity"]


def test_processing_workflow_even_exchange_is_not_held(gql, exchange):
    order, ret = exchange("TS-S")
    process(gql, ret)
    new = fulfillment_orders(gql, order["id"])[1]
    assert new["status"] == "OPEN" and new["fulfillmentHolds"] == []
    assert "CREATE_FULFILLMENT" in [a["action"] for a in new["supportedActions"]]
    assert outstanding(gql, order["id"]) == "0.0"


def test_legacy_workflow_holds_the_fo_at_creation(sandbox, gql, shop, exchange):
    sandbox.store.set_workflow(shop, "legacy")
    order, ret = exchange()
    assert ret["exchange_line_items"][0]["processed_quantity"] == 1
    new = fulfillment_orders(gql, order["id"])[1]
    assert new["status"] == "ON_HOLD" and new["lineItems"]["nodes"][0]["remainingQuantity"] == 1
    assert [(h["reason"], h["heldByRequestingApp"], h["handle"])
            for h in new["fulfillmentHolds"]] == [("AWAITING_RETURN_ITEMS", False, "")]
    assert outstanding(gql, order["id"]) == "5.0"
    assert process(gql, ret)["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    sandbox.store.close_return(shop, ret["id"])
    assert fulfillment_orders(gql, order["id"])[1]["status"] == "ON_HOLD"  # close keeps it held


def test_release_hold_releases_only_the_given_ids(sandbox, gql, shop, exchange):
    sandbox.store.set_workflow(shop, "legacy")
    order, ret = exchange()
    fo_id = ret["fulfillment_order_ids"][0]
    ours = hold(gql, fo_id)
    assert ours["userErrors"] == [] and ours["fulfillmentHold"]["handle"] == "swapline-exchange"
    assert ours["fulfillmentOrder"] == {"id": fo_id, "status": "ON_HOLD"}
    assert hold(gql, fo_id)["userErrors"][0]["code"] == "DUPLICATE_FULFILLMENT_HOLD_HANDLE"
    shopify_hold = next(h for h in fulfillment_orders(gql, order["id"])[1]["fulfillmentHolds"]
                        if not h["heldByRequestingApp"])
    unknown = release(gql, fo_id, ours["fulfillmentHold"]["id"], "gid://shopify/FulfillmentHold/1")
    assert unknown["fulfillmentOrder"] is None and unknown["userErrors"][0]["field"] == \
        ["holdIds", "1"]
    after = release(gql, fo_id, ours["fulfillmentHold"]["id"])
    assert after["userErrors"] == [] and after["fulfillmentOrder"]["status"] == "ON_HOLD"
    assert [h["reason"] for h in after["fulfillmentOrder"]["fulfillmentHolds"]] == \
        ["AWAITING_RETURN_ITEMS"]
    held = fulfillment_orders(gql, order["id"])[1]["fulfillmentHolds"]
    assert held == [shopify_hold]
    assert release(gql, fo_id, shopify_hold["id"])["fulfillmentOrder"]["status"] == "OPEN"
    assert sandbox.store.applied("FulfillmentOrderReleaseHold", shop) == 2


def test_hold_limits_closed_and_unknown_fulfillment_orders(gql, exchange):
    order, ret = exchange("TS-S")
    process(gql, ret)
    original, new = fulfillment_orders(gql, order["id"])
    for n in range(10):
        assert hold(gql, new["id"], f"h{n}")["userErrors"] == []
    assert hold(gql, new["id"], "h10")["userErrors"][0]["code"] == \
        "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED"
    closed = hold(gql, original["id"])
    assert closed["fulfillmentHold"] is None and "closed" in closed["userErrors"][0]["message"]
    unknown = gql("FulfillmentOrderHold", id="gid://shopify/FulfillmentOrder/1",
                  hold={"reason": "OTHER"}).json()
    assert unknown["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"


def test_fulfillment_waits_for_holds_then_closes_the_fo(sandbox, gql, shop, exchange):
    order, ret = exchange("TS-S")
    process(gql, ret)
    fo_id = fulfillment_orders(gql, order["id"])[1]["id"]
    ours = hold(gql, fo_id)["fulfillmentHold"]["id"]
    refused = fulfil(gql, fo_id)
    assert refused["fulfillment"] is None and "on_hold" in refused["userErrors"][0]["message"]
    release(gql, fo_id, ours)
    done = fulfil(gql, fo_id)
    assert done["userErrors"] == [] and done["fulfillment"]["status"] == "SUCCESS"
    assert done["fulfillment"]["trackingInfo"] == [
        {"number": "PN123", "url": "https://track.example/PN123", "company": "PostNord"}]
    new = fulfillment_orders(gql, order["id"])[1]
    assert new["status"] == "CLOSED" and new["supportedActions"] == []
    assert new["lineItems"]["nodes"][0]["remainingQuantity"] == 0
    assert fulfil(gql, fo_id)["userErrors"][0]["message"].endswith("status= closed.")
    assert sandbox.store.applied("FulfillmentCreate", shop) == 1
    assert sandbox.store.count("FulfillmentCreate", shop) == 3
    latest = sandbox.store.order_state(shop, order["id"])["fulfillments"][-1]
    assert latest["notify_customer"] is True and latest["line_items"][0]["sku"] == "TS-S"


def test_fulfillment_refused_for_another_fulfillment_service(sandbox, gql, shop, exchange):
    sandbox.store.set_fulfillment_service(shop)  # FOs made from now on
    order, ret = exchange("TS-S")
    process(gql, ret)
    new = fulfillment_orders(gql, order["id"])[1]
    assert new["status"] == "OPEN"
    assert [a["action"] for a in new["supportedActions"]] == ["REQUEST_FULFILLMENT", "HOLD", "MOVE"]
    refused = fulfil(gql, new["id"])
    assert refused["fulfillment"] is None
    assert "another fulfillment service" in refused["userErrors"][0]["message"]
    sandbox.store.set_fulfillment_service(shop, new["id"], other=False)
    assert fulfil(gql, new["id"])["userErrors"] == []


def test_fulfillment_quantities(gql, exchange):
    order, ret = exchange("SOCK", quantity=2)  # 2 x 10.00 for 25.00: nothing owed
    process(gql, ret, quantity=2)
    fo = fulfillment_orders(gql, order["id"])[1]
    line = fo["lineItems"]["nodes"][0]["id"]
    over = fulfil(gql, fo["id"], [{"id": line, "quantity": 3}])
    assert over["fulfillment"] is None and over["userErrors"][0]["message"] == \
        "Invalid fulfillment order line item quantity requested."
    assert fulfil(gql, fo["id"], [{"id": line, "quantity": 1}])["userErrors"] == []
    fo = fulfillment_orders(gql, order["id"])[1]
    assert (fo["status"], fo["lineItems"]["nodes"][0]["remainingQuantity"]) == ("IN_PROGRESS", 1)
    assert fulfil(gql, fo["id"])["userErrors"] == []
    assert fulfillment_orders(gql, order["id"])[1]["status"] == "CLOSED"


def test_capture_never_above_the_authorization(sandbox, gql, shop, exchange):
    order, ret = exchange()
    process(gql, ret)
    payment = gql.data("OrderPayment", id=order["id"])["order"]
    old, _, auth = payment["transactions"]
    assert (auth["kind"], auth["totalUnsettledSet"]["presentmentMoney"]["amount"]) == \
        ("AUTHORIZATION", "5.0") and auth["authorizationExpiresAt"]
    assert old["totalUnsettledSet"]["presentmentMoney"]["amount"] == "0.0"

    def capture(parent: str, amount: str) -> dict:
        return gql.data("OrderCapture", input={"id": order["id"], "parentTransactionId": parent,
                                               "amount": amount, "currency": "EUR"})["orderCapture"]

    assert "authorized 5.00 " in capture(auth["id"], "6.00")["userErrors"][0]["message"]
    assert capture(old["id"], "5.00")["userErrors"][0]["message"].startswith("Cannot capture")
    done = capture(auth["id"], "5.00")
    assert done["userErrors"] == [] and done["transaction"]["kind"] == "CAPTURE"
    assert done["transaction"]["amountSet"]["presentmentMoney"] == {"amount": "5.0",
                                                                   "currencyCode": "EUR"}
    assert capture(auth["id"], "1.00")["transaction"] is None  # captured once: nothing left
    assert outstanding(gql, order["id"]) == "0.0"
    assert sandbox.store.applied("OrderCapture", shop) == 1
    assert fulfillment_orders(gql, order["id"])[1]["status"] == "OPEN"  # paid: hold released


def test_capture_of_an_expired_authorization_is_refused(sandbox, gql, shop, exchange):
    order, ret = exchange()
    sandbox.store.expire_authorizations(shop, order["id"])
    auth = gql.data("OrderPayment", id=order["id"])["order"]["transactions"][-1]
    result = gql.data("OrderCapture", input={"id": order["id"], "parentTransactionId": auth["id"],
                                             "amount": "5.00"})["orderCapture"]
    assert result["userErrors"][0]["message"] == "The authorization has expired."


def test_mandate_payment_is_idempotent_per_key(sandbox, gql, shop, exchange):
    order, ret = exchange(capture_mode="vaulted")
    process(gql, ret)
    payment = gql.data("OrderPayment", id=order["id"])["order"]
    mandate = gql.data("OrderVaultedPaymentMethods", id=order["id"])["order"][
        "paymentCollectionDetails"]["vaultedPaymentMethods"][0]["id"]
    assert [t["kind"] for t in payment["transactions"]] == ["SALE"]

    def charge(key: str, mandate_id: str = mandate, amount=None) -> dict:
        return gql.data("OrderCreateMandatePayment", id=order["id"], mandateId=mandate_id,
                        idempotencyKey=key, amount=amount)["orderCreateMandatePayment"]

    unknown = charge("k0", "gid://shopify/PaymentMandate/1")
    assert unknown["userErrors"][0]["code"] == "ORDER_MANDATE_PAYMENT_ERROR_CODE"
    first = charge("exchange-1")
    assert first["userErrors"] == [] and first["job"]["id"].startswith("gid://shopify/Job/")
    assert charge("exchange-1") == first
    assert outstanding(gql, order["id"]) == "0.0"
    state = sandbox.store.order_state(shop, order["id"])
    assert [(t["kind"], t["amount"]) for t in state["transactions"]] == \
        [("SALE", "25.00"), ("SALE", "5.00")]
    assert charge("exchange-2")["userErrors"][0]["field"] == ["amount"]  # nothing left to charge
    assert sandbox.store.applied("OrderCreateMandatePayment", shop) == 1


def test_invoice_send_and_the_customer_paying_it(sandbox, gql, shop, exchange):
    order, ret = exchange(capture_mode="none")
    process(gql, ret)
    sent = gql.data("OrderInvoiceSend", id=order["id"])["orderInvoiceSend"]
    assert sent == {"order": {"id": order["id"]}, "userErrors": []}
    assert sandbox.store.order_state(shop, order["id"])["invoices"][0]["amount"] == "5.00"
    paid = sandbox.store.pay_outstanding(shop, order["id"])
    assert paid["total_outstanding"] == "0.00"
    assert paid["fulfillment_orders"][1]["status"] == "OPEN"
    silent = sandbox.store.create_order(shop, items=[("TS-M", 1)], email=None, capture_mode="none")
    refused = gql.data("OrderInvoiceSend", id=silent["id"])["orderInvoiceSend"]
    assert refused["order"] is None and "No recipient" in refused["userErrors"][0]["message"]


def test_unknown_and_foreign_ids(gql, exchange):
    order, ret = exchange()
    assert gql.data("ReturnForExchange", id="gid://shopify/Return/1") == {"return": None}
    assert gql.data("OrderPayment", id="gid://shopify/Order/1") == {"order": None}
    assert gql.data("VariantsForExchange", ids=["gid://shopify/ProductVariant/1"]) == \
        {"nodes": [None]}
    stranger = f"x{uuid.uuid4().hex[:8]}.myshopify.com"
    foreign = gql("ReturnForExchange", id=ret["id"], as_shop=stranger)
    assert foreign.json()["data"] == {"return": None}
    malformed = gql("ReturnForExchange", id="1001")
    assert malformed.status_code == 200 and malformed.json()["errors"][0]["message"] == \
        "Invalid global id '1001'"
    for name, variables in (("OrderCapture", {"input": {"id": "gid://shopify/Order/1",
                                                        "parentTransactionId": "gid://shopify/"
                                                        "OrderTransaction/1", "amount": "1"}}),
                            ("OrderInvoiceSend", {"id": "gid://shopify/Order/1"}),
                            (PROCESS, {"input": {"returnId": "gid://shopify/Return/1",
                                                 "exchangeLineItems": []}})):
        payload = next(iter(gql.data(name, **variables).values()))
        assert payload["userErrors"], name


@pytest.mark.skipif(admin_schema() is None, reason="needs the Admin schema copy")
def test_bad_variables_and_unmodelled_fields(gql, exchange):
    bad = gql("FulfillmentOrderHold", id="gid://shopify/FulfillmentOrder/1",
              hold={"reason": "BECAUSE"})
    assert bad.status_code == 200 and "FulfillmentHoldReason" in bad.json()["errors"][0]["message"]
    _, ret = exchange()
    unmodelled = gql("ReturnForExchange", id=ret["id"],
                     query="query ReturnForExchange($id: ID!) { return(id: $id) { createdAt } }")
    assert unmodelled.status_code == 400
    # The scope table (sandbox/shopify/scopes.py) is asked first; it does not know the field either
    assert "Return.createdAt" in unmodelled.json()["errors"][0]["message"]


def test_throttled_and_http_faults(sandbox, gql, shop):
    sandbox.store.throttle_next = 1
    throttled = gql("ShopDetails")
    assert throttled.status_code == 200
    assert throttled.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    sandbox.store.http_fail_next(2, status=429, retry_after=2)
    sandbox.store.http_fail_next(1, status=503, retry_after=None)
    first, second, third = gql("ShopDetails"), gql("ShopDetails"), gql("ShopDetails")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert second.status_code == 429 and "Exceeded" in second.json()["errors"]
    assert third.status_code == 503 and "Retry-After" not in third.headers
    assert gql.data("ShopDetails")["shop"]["myshopifyDomain"] == shop
    assert sandbox.store.count("ShopDetails", shop) == 1


def test_webhook_payloads_have_the_documented_shapes(sandbox, shop, exchange):
    store = sandbox.store
    store.set_workflow(shop, "legacy")
    order, ret = exchange()
    number = int(ret["id"].rsplit("/", 1)[1])
    approve = store.return_payload(shop, ret["id"], "returns/approve")
    assert set(approve) == {"id", "admin_graphql_api_id", "status", "order", "name",
                            "total_return_line_items", "return_line_items",
                            "return_shipping_fees", "exchange_line_items",
                            "total_exchange_line_items"}
    assert (approve["id"], approve["admin_graphql_api_id"], approve["status"]) == \
        (number, ret["id"], "open")
    assert approve["order"]["admin_graphql_api_id"] == order["id"]
    assert approve["exchange_line_items"][0]["admin_graphql_api_id"] == \
        ret["exchange_line_items"][0]["id"]
    assert approve["exchange_line_items"][0]["line_item"]["admin_graphql_api_id"] == \
        ret["exchange_line_items"][0]["line_item_ids"][0]
    assert approve["return_line_items"][0]["fulfillment_line_item"]["line_item"][
        "admin_graphql_api_id"] == ret["return_line_items"][0]["line_item_id"]
    order_number = int(order["id"].rsplit("/", 1)[1])
    for topic, status in (("returns/close", "closed"), ("returns/cancel", "canceled"),
                          ("returns/reopen", "open")):
        assert store.return_payload(shop, ret["id"], topic) == {
            "id": number, "admin_graphql_api_id": ret["id"], "order_id": order_number,
            "status": status}
    assert store.return_payload(shop, ret["id"], "returns/update") == {
        "admin_graphql_api_id": ret["id"], "return_line_items": {"removals": []},
        "restocking_fees": {"updates": [], "removals": []},
        "return_shipping_fees": {"updates": [], "removals": []}}
    assert store.return_payload(shop, ret["id"], "returns/process") == {}
    with pytest.raises(ValueError, match="REQUESTED"):
        store.decline_return(shop, ret["id"])


def test_requested_returns_decline_and_cancel(sandbox, gql, shop):
    store = sandbox.store
    store.set_workflow(shop, "legacy")
    order = store.create_order(shop, items=[("TS-M", 2)])
    requested = store.create_return(shop, order["id"], returned=[("TS-M", 1)],
                                    exchange=[("TS-L", 1)], requested=True)
    assert requested["status"] == "REQUESTED" and requested["fulfillment_order_ids"] == []
    store.decline_return(shop, requested["id"], "FINAL_SALE", "worn")
    assert store.return_payload(shop, requested["id"], "returns/decline") == {
        "id": int(requested["id"].rsplit("/", 1)[1]), "admin_graphql_api_id": requested["id"],
        "status": "declined", "order": {"id": int(order["id"].rsplit("/", 1)[1]),
                                        "admin_graphql_api_id": order["id"]},
        "decline": {"reason": "final_sale", "note": "worn"}}
    ret = store.create_return(shop, order["id"], returned=[("TS-M", 1)], exchange=[("TS-L", 1)])
    assert ret["name"] == "#1001-R2" and outstanding(gql, order["id"]) == "5.0"
    cancelled = store.cancel_return(shop, ret["id"])
    assert cancelled["status"] == "CANCELED" and outstanding(gql, order["id"]) == "0.0"
    assert fulfillment_orders(gql, order["id"])[-1]["status"] == "CANCELLED"


def test_cancel_is_refused_once_the_return_was_processed(sandbox, gql, shop, exchange):
    _, ret = exchange()
    process(gql, ret)
    with pytest.raises(ValueError, match="not cancelable"):
        sandbox.store.cancel_return(shop, ret["id"])
    assert sandbox.store.close_return(shop, ret["id"])["status"] == "CLOSED"
    assert sandbox.store.reopen_return(shop, ret["id"])["status"] == "OPEN"


def test_mandate_amount_needs_shopify_plus(sandbox, gql, shop, exchange):
    sandbox.store.set_plus(shop, False)
    order, ret = exchange(capture_mode="vaulted")
    process(gql, ret)
    mandate = sandbox.store.order_state(shop, order["id"])["mandate_ids"][0]
    result = gql.data("OrderCreateMandatePayment", id=order["id"], mandateId=mandate,
                      idempotencyKey="k1", amount={"amount": "5.00", "currencyCode": "EUR"})
    assert "Shopify Plus" in result["orderCreateMandatePayment"]["userErrors"][0]["message"]
    assert outstanding(gql, order["id"]) == "5.0"


def test_release_without_hold_ids_releases_every_hold(sandbox, gql, shop, exchange):
    sandbox.store.set_workflow(shop, "legacy")
    order, ret = exchange()
    fo_id = ret["fulfillment_order_ids"][0]
    hold(gql, fo_id)
    released = release(gql, fo_id)["fulfillmentOrder"]
    assert (released["status"], released["fulfillmentHolds"]) == ("OPEN", [])


def test_clearing_calls_resets_the_per_test_state(sandbox, gql, shop, exchange):
    order, ret = exchange()
    process(gql, ret)
    assert sandbox.store.variables(PROCESS, shop)[0]["input"]["returnId"] == ret["id"]
    sandbox.store.http_fail_next(1)
    sandbox.store.calls.clear()  # what conftest's app fixture does between tests
    assert sandbox.store.applied(PROCESS, shop) == 0 and sandbox.store.variables(PROCESS) == []
    assert gql("ShopDetails").status_code == 200
    sandbox.store.reset_shop(shop)
    assert gql.data("OrderPayment", id=order["id"]) == {"order": None}


def test_sample_exchange_is_asked_for_with_the_shops_token_and_needs_a_running_scenario(
        sandbox, shop):
    url = f"{sandbox.origin}/sandbox/sample-exchange"
    token = sandbox.store.issue_pair(shop)["access_token"]
    as_shop = {"X-Swapline-Shop": shop, "X-Shopify-Access-Token": token}
    assert requests.post(url, headers={"X-Swapline-Shop": shop}, timeout=5).status_code == 401
    assert requests.post(url, headers=as_shop, timeout=5).status_code == 404  # no scenario
    kinds = []

    def run(kind: str) -> dict:
        if kind not in ("exchange", "out_of_stock"):
            raise ValueError(f"no sample of kind {kind!r}")
        kinds.append(kind)
        return {"order": "#2001", "return_id": "gid://shopify/Return/1"}

    sandbox.store.samples[shop] = run
    try:
        started = requests.post(url, headers=as_shop, timeout=5)
        out_of_stock = requests.post(url, headers=as_shop, json={"kind": "out_of_stock"},
                                     timeout=5)
        unknown = requests.post(url, headers=as_shop, json={"kind": "flood"}, timeout=5)
    finally:
        sandbox.store.samples.pop(shop)
    assert started.status_code == 201 and started.json()["order"] == "#2001"
    assert out_of_stock.status_code == 201 and kinds == ["exchange", "out_of_stock"]
    assert unknown.status_code == 400 and unknown.json() == {"error": "no sample of kind 'flood'"}
