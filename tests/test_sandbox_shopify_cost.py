"""The sandbox Shopify prices, throttles, pages and caps inputs like Shopify (issue 10 §1)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

DOCUMENTS = Path(__file__).resolve().parent.parent / "clients" / "graphql"
NESTED_50_BY_50 = """query OrderFulfillmentOrders($id: ID!) { order(id: $id) {
  fulfillmentOrders(first: 50) { nodes { id lineItems(first: 50) { nodes { id } } } } } }"""


@pytest.fixture
def shop(sandbox):
    domain = f"c{uuid.uuid4().hex[:10]}.myshopify.com"
    sandbox.store.add_variant(domain, "TS-M", "25.00", "T-shirt - M")
    sandbox.store.add_variant(domain, "TS-L", "30.00", "T-shirt - L")
    yield domain
    sandbox.store.reset_faults()


@pytest.fixture
def post(sandbox, shop):
    """POST a document (a clients/graphql name, or `query=` text) as the app does: the JSON."""
    token = sandbox.store.issue_pair(shop)["access_token"]

    def call(name: str, *, query: str | None = None, **variables) -> dict:
        response = requests.post(
            f"{sandbox.origin}/admin/api/2026-10/graphql.json", timeout=5,
            json={"query": query or (DOCUMENTS / f"{name}.graphql").read_text(),
                  "variables": variables},
            headers={"X-Swapline-Shop": shop, "X-Shopify-Access-Token": token})
        assert response.status_code == 200, response.text
        return response.json()

    return call


def order(sandbox, shop, lines: int = 1, fulfillment_orders: int = 1) -> str:
    return sandbox.store.create_order(shop, items=[("TS-M", 1)] * lines,
                                      fulfillment_orders=fulfillment_orders)["id"]


def test_every_answer_reports_its_cost_and_the_bucket(post):
    cost = post("ShopDetails")["extensions"]["cost"]
    status = cost.pop("throttleStatus")
    assert cost == {"requestedQueryCost": 1, "actualQueryCost": 1}
    # the Standard plan; the point spent may already be back (100 points/s)
    assert status.pop("currentlyAvailable") in (1999, 2000)
    assert status == {"maximumAvailable": 2000, "restoreRate": 100}


def test_actual_cost_counts_what_was_returned_and_the_rest_is_refunded(sandbox, shop, post):
    sandbox.store.set_bucket(shop, maximum=1000, restore=0.001)
    cost = post("OrderFulfillmentOrders", id=order(sandbox, shop))["extensions"]["cost"]
    # order 1 + connection 2 + one closed FO (nodes 1, no actions, no holds, lineItems 2 + one
    # line: nodes 1 + lineItem 1); empty lists cost nothing
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (453, 8)
    assert cost["throttleStatus"]["currentlyAvailable"] == 992


def test_a_mutation_costs_10(sandbox, shop, post):
    cost = post("OrderInvoiceSend", id=order(sandbox, shop))["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (10, 10)


def test_a_query_over_1000_points_is_refused_unrun_and_uncharged(sandbox, shop, post):
    answer = post("OrderFulfillmentOrders", query=NESTED_50_BY_50, id=order(sandbox, shop))
    [error] = answer["errors"]
    assert error["message"].startswith(
        "Query cost is 2653, which exceeds the single query max cost limit (1000).")
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert (error["extensions"]["cost"], error["extensions"]["maxCost"]) == (2653, 1000)
    assert "data" not in answer
    assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000
    assert sandbox.store.count("OrderFulfillmentOrders", shop) == 0


def test_a_short_bucket_answers_throttled_until_it_refills(sandbox, shop, post):
    sandbox.store.set_bucket(shop, maximum=460, restore=0.001)
    order_id = order(sandbox, shop)
    assert "data" in post("OrderFulfillmentOrders", id=order_id)  # 453 asked, 8 spent
    answer = post("OrderFulfillmentOrders", id=order_id)  # 452 left < 453
    assert answer["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    assert "data" not in answer
    cost = answer["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (453, None)
    assert cost["throttleStatus"] == {"maximumAvailable": 460, "currentlyAvailable": 452,
                                      "restoreRate": 0.001}
    assert sandbox.store.throttled_answers[shop] == 1
    assert sandbox.store.count("OrderFulfillmentOrders", shop) == 1  # the throttled one never ran
    assert "data" in post("ShopDetails")  # a cheaper query still fits


def test_the_fault_hooks_report_the_real_bucket(sandbox, shop, post):
    sandbox.store.throttle_next = 1
    answer = post("ShopDetails")
    assert answer["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000
    assert "data" in post("ShopDetails")


def test_input_arrays_over_250_items_are_refused(sandbox, shop, post):
    variant = sandbox.store.add_variant(shop, "TS-M", "25.00", "T-shirt - M")["id"]
    assert "data" in post("VariantsForExchange", ids=[variant] * 250)
    answer = post("VariantsForExchange", ids=[variant] * 251)
    [error] = answer["errors"]
    assert error["message"] == "The input array size of 251 is greater than the maximum " \
                               "allowed of 250."
    assert (error["path"], error["extensions"]) == (["nodes", "ids"],
                                                    {"code": "MAX_INPUT_SIZE_EXCEEDED"})
    assert error["locations"] == [{"line": 3, "column": 3}]
    assert answer["extensions"]["cost"]["actualQueryCost"] is None


def test_nested_input_arrays_are_capped_too(sandbox, shop, post):
    lines = [{"id": f"gid://shopify/FulfillmentOrderLineItem/{n}", "quantity": 1}
             for n in range(1, 252)]
    answer = post("FulfillmentCreate", fulfillment={"lineItemsByFulfillmentOrder": [{
        "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1",
        "fulfillmentOrderLineItems": lines}]})
    assert answer["errors"][0]["path"] == ["fulfillmentCreate", "fulfillment",
                                           "lineItemsByFulfillmentOrder",
                                           "fulfillmentOrderLineItems"]
    assert sandbox.store.count("FulfillmentCreate", shop) == 0


def test_fulfillment_orders_page_with_cursors(sandbox, shop, post):
    order_id = order(sandbox, shop, lines=25, fulfillment_orders=25)
    seen, after, pages = [], None, 0
    while True:
        variables = {"id": order_id} | ({"after": after} if after else {})
        page = post("OrderFulfillmentOrders", **variables)["data"]["order"]["fulfillmentOrders"]
        seen += [fo["id"] for fo in page["nodes"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert (pages, len(seen), len(set(seen))) == (3, 25, 25)
    summary = sandbox.store.order_state(shop, order_id)
    assert seen == [fo["id"] for fo in summary["fulfillment_orders"]]


def test_line_items_of_one_fulfillment_order_page_on(sandbox, shop, post):
    order_id = order(sandbox, shop, lines=130)
    [fo] = post("OrderFulfillmentOrders", id=order_id)["data"]["order"]["fulfillmentOrders"][
        "nodes"]
    lines, info = fo["lineItems"]["nodes"], fo["lineItems"]["pageInfo"]
    assert (len(lines), info["hasNextPage"]) == (20, True)
    while info["hasNextPage"]:
        page = post("FulfillmentOrderLineItems", id=fo["id"], after=info["endCursor"])[
            "data"]["fulfillmentOrder"]["lineItems"]
        lines, info = lines + page["nodes"], page["pageInfo"]
    assert len({line["id"] for line in lines}) == 130
    assert info["endCursor"] is not None


def test_a_bad_cursor_and_a_connection_without_first_are_errors(sandbox, shop, post):
    order_id = order(sandbox, shop)
    answer = post("OrderFulfillmentOrders", id=order_id, after="not-a-cursor")
    assert "Invalid cursor" in answer["errors"][0]["message"]
    unsized = "query ReturnReturnLineItems($id: ID!) { return(id: $id) { id " \
              "returnLineItems { nodes { ... on ReturnLineItem { id } } } } }"
    ret = sandbox.store.create_return(shop, order_id, returned=[("TS-M", 1)])
    answer = post("ReturnReturnLineItems", query=unsized, id=ret["id"])
    assert answer["errors"][0]["message"] == "you must provide one of first or last"
