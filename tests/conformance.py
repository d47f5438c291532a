"""Shared setup of the conformance tests: the sandbox Shopify driven with Swapline's own documents.

Each tests/test_conformance_*.py replays the sequence of one live Shopify 2026-04 recording from
the public repository airhorns/shopify-draft-proxy (fixtures/conformance/<store>/2026-04/...) and
asserts the outcome that recording shows. The facts are written into the tests; no recording is
copied here.
"""
from __future__ import annotations

import uuid

import pytest
import requests

from clients.shopify import load_document

RECORDINGS = ("airhorns/shopify-draft-proxy "
              "fixtures/conformance/harry-test-heelo.myshopify.com/2026-04")


class Live:
    """One fresh sandbox shop and a caller that posts clients/graphql documents as the app does."""

    def __init__(self, sandbox, domain: str):
        self.store, self.shop, self.origin = sandbox.store, domain, sandbox.origin
        self.token = self.store.issue_pair(domain)["access_token"]

    def post(self, name: str, *, query: str | None = None, **variables) -> dict:
        """The whole JSON answer (data and/or errors) to one document."""
        response = requests.post(
            f"{self.origin}/admin/api/2026-04/graphql.json",
            json={"query": query or load_document(name), "variables": variables},
            headers={"X-Swapline-Shop": self.shop, "X-Shopify-Access-Token": self.token},
            timeout=5)
        assert response.status_code in (200, 400), response.text
        return response.json()

    def data(self, name: str, **variables) -> dict:
        """The root field's payload of a document that must not fail at the GraphQL level."""
        body = self.post(name, **variables)
        assert "errors" not in body, body
        return next(iter(body["data"].values()))

    def order_fos(self, order_id: str) -> list[dict]:
        """The order's fulfillment orders through OrderFulfillmentOrders."""
        return self.data("OrderFulfillmentOrders", id=order_id)["fulfillmentOrders"]["nodes"]

    def exchange(self, new_sku: str = "TS-S", quantity: int = 1, **options) -> tuple[dict, dict]:
        """An order for TS-M (25.00) and an OPEN return exchanging it: (order, return)."""
        order = self.store.create_order(self.shop, items=[("TS-M", 1)], **options)
        ret = self.store.create_return(self.shop, order["id"], returned=[("TS-M", 1)],
                                       exchange=[(new_sku, quantity)])
        return order, ret

    def process(self, ret: dict, **extra) -> dict:
        """returnProcess of every exchange item with Swapline's document."""
        items = [{"id": e["id"], "quantity": e["quantity"]} for e in ret["exchange_line_items"]]
        return self.data("ReturnProcessExchange", input={
            "returnId": ret["id"], "exchangeLineItems": items, "notifyCustomer": False, **extra})

    def open_fo(self, new_sku: str = "TS-S", quantity: int = 1) -> tuple[dict, dict]:
        """A processed exchange whose new fulfillment order is OPEN: (order, that FO)."""
        order, ret = self.exchange(new_sku, quantity)
        assert self.process(ret)["userErrors"] == []
        return order, self.order_fos(order["id"])[-1]

    def hold(self, fo_id: str, handle: str, reason: str = "OTHER", **extra) -> dict:
        return self.data("FulfillmentOrderHold", id=fo_id, hold={
            "reason": reason, "reasonNotes": f"conformance {handle}", "handle": handle,
            "notifyMerchant": False, **extra})

    def fulfil(self, fo_id: str, lines: list[dict] | None = None) -> dict:
        group = {"fulfillmentOrderId": fo_id}
        if lines is not None:
            group["fulfillmentOrderLineItems"] = lines
        return self.data("FulfillmentCreate", fulfillment={
            "lineItemsByFulfillmentOrder": [group], "notifyCustomer": False,
            "trackingInfo": {"number": "FCP-1", "url": "https://example.com/track/FCP-1",
                             "company": "Hermes"}})


@pytest.fixture
def live(sandbox):
    """A fresh shop with four variants; faults are dropped afterwards."""
    domain = f"c{uuid.uuid4().hex[:10]}.myshopify.com"
    for sku, price, title in (("TS-M", "25.00", "T-shirt - M"), ("TS-L", "30.00", "T-shirt - L"),
                              ("TS-S", "20.00", "T-shirt - S"), ("SOCK", "10.00", "Socks")):
        sandbox.store.add_variant(domain, sku, price, title)
    yield Live(sandbox, domain)
    sandbox.store.reset_faults()


def actions(fo: dict) -> list[str]:
    return [a["action"] for a in fo["supportedActions"]]


def number(gid: str) -> str:
    """The numeric tail of a GID, as Shopify prints it in some messages."""
    return gid.rsplit("/", 1)[1]
