"""tagsAdd on an order answers like live Shopify, driven with Swapline's TagsAdd document.

Recordings in airhorns/shopify-draft-proxy, fixtures/conformance/harry-test-heelo.myshopify.com/:
2025-01/products/tags-add-multi-resource.json (orderAdd, normalizationCases.order),
2025-01/admin-platform/admin-platform-tags-not-found.json, 2026-04/orders/
draftOrder-tag-validation.json and 2025-01/customers/customer-tag-note-limits-parity.json (the
limits, recorded on draft orders and customers). Where a recorded field is not in Swapline's
document (the order's tags), the same operation is sent selecting it.
"""
from __future__ import annotations

from tests import conformance

live = conformance.live  # the fixture
WITH_TAGS = """mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { __typename ... on Order { id name tags } }
    userErrors { field message }
  }
}"""


def _tags_add(live, order_id: str, tags) -> dict:
    body = live.post("TagsAdd", query=WITH_TAGS, id=order_id, tags=tags)
    assert "errors" not in body, body
    return body["data"]["tagsAdd"]


def test_swapline_document_tags_the_order_at_the_recorded_cost(live):
    """orderAdd: node with the order's id, no userErrors; requested and actual cost 10."""
    order = live.store.create_order(live.shop, items=[("TS-M", 1)])
    body = live.post("TagsAdd", id=order["id"], tags=["swapline-exchange"])
    assert body["data"] == {"tagsAdd": {"node": {"id": order["id"]}, "userErrors": []}}
    cost = body["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (10, 10)
    assert live.store.order_state(live.shop, order["id"])["tags"] == ["swapline-exchange"]


def test_tags_are_split_kept_once_and_sorted_as_recorded(live):
    """normalizationCases.order: a comma string and a comma inside one element both add two
    tags; "red" on an order tagged "Red" adds nothing; ["b", "A"] comes back A, b, Red."""
    order = live.store.create_order(live.shop, items=[("TS-M", 1)], tags=["Red"])
    done = _tags_add(live, order["id"], "blue-order, green-order")  # one string: a list of one
    assert done["node"]["tags"] == ["blue-order", "green-order", "Red"]
    assert done["node"]["__typename"] == "Order" and done["userErrors"] == []
    other = live.store.create_order(live.shop, items=[("TS-M", 1)], tags=["Red"])
    assert _tags_add(live, other["id"], ["blue-order,green-order"])["node"]["tags"] == \
        ["blue-order", "green-order", "Red"]
    third = live.store.create_order(live.shop, items=[("TS-M", 1)], tags=["Red"])
    assert _tags_add(live, third["id"], ["red"])["node"]["tags"] == ["Red"]
    assert _tags_add(live, third["id"], ["b", "A"])["node"]["tags"] == ["A", "b", "Red"]
    assert _tags_add(live, third["id"], ["b"])["node"]["tags"] == ["A", "b", "Red"]  # again


def test_refusals_change_nothing(live):
    """admin-platform-tags-not-found.json: an unknown id is a userError on ["id"] ("Product
    does not exist" / "Customer does not exist" recorded; an order's wording by analogy).
    Limits: a tag over 40 characters, more than 250 tags."""
    missing = live.post("TagsAdd", id="gid://shopify/Order/999999999999999", tags=["vip"])
    assert missing["data"]["tagsAdd"] == {
        "node": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
    order = live.store.create_order(live.shop, items=[("TS-M", 1)], tags=["Red"])
    long = _tags_add(live, order["id"], ["ok", "x" * 41])
    assert long == {"node": None, "userErrors": [{
        "field": ["tags", "1"],
        "message": "Title Tag exceeds the maximum length of 40 characters"}]}
    many = _tags_add(live, order["id"], [f"t{n}" for n in range(250)])
    assert many == {"node": None,
                    "userErrors": [{"field": ["tags"], "message": "Tags cannot be more than 250"}]}
    assert live.store.order_state(live.shop, order["id"])["tags"] == ["Red"]
    assert live.store.applied("TagsAdd", live.shop) == 0  # refusals changed nothing


def test_without_write_orders_access_is_denied(live):
    """A shop that did not grant write_orders: ACCESS_DENIED on tagsAdd, data null."""
    order = live.store.create_order(live.shop, items=[("TS-M", 1)])
    live.store.grant(live.shop, {"read_orders", "write_returns"})
    body = live.post("TagsAdd", id=order["id"], tags=["swapline-exchange"])
    assert body["data"] == {"tagsAdd": None}
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert "`write_orders` access scope" in body["errors"][0]["message"]
    assert live.store.order_state(live.shop, order["id"])["tags"] == []
