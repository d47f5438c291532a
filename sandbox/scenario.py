"""The demo's customer and warehouse: a sample exchange on demand, then the return parcel arrives
and the warehouse picks and sends what Swapline released, all by themselves. The out-of-stock
sample asks for a size the warehouse has none of: the exchange needs attention and the merchant
is alerted (its parcel is not sent, so it waits there for the merchant).

The app asks for a sample over HTTP (POST /sandbox/sample-exchange on the sandbox Shopify, which
runs `run_sample` for the shop); the original order reaches the sandbox Ongoing over its REST API,
as the shop's own integration would send it. Nothing here imports the product.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

import requests

from sandbox.ongoing import SandboxOngoing
from sandbox.shopify import SandboxShopify

RETURNED = ("TSHIRT-M-BLUE", "19.00", "T-shirt - Blue / M")
EXCHANGED = ("TSHIRT-L-BLUE", "24.00", "T-shirt - Blue / L")
SOLD_OUT = ("TSHIRT-XL-BLUE", "24.00", "T-shirt - Blue / XL")  # none in the warehouse
SAMPLES = {"exchange": EXCHANGED, "out_of_stock": SOLD_OUT}  # kind -> the item sent instead
PARCEL_ARRIVES_AFTER = 4.0  # seconds from the sample's start until the customer's return arrives
# Shopify re-sends a webhook not answered 2xx within 5 s, 8 times over 4 hours, same webhook id
# (shopify.dev/changelog/updates-to-webhook-retry-mechanism; reference/shopify-returns-webhooks.md);
# the spacing is unpublished, so the demo's robot waits seconds, not an hour, between tries.
RESEND_WAITS = (0, 1, 2, 4, 8, 16, 32, 64, 128)
RELEASED, SENT = 300, 450
log = logging.getLogger(__name__)


class SampleScenario:
    """Creates sample returns in the sandbox Shopify and plays the customer and the warehouse."""

    def __init__(self, shopify: SandboxShopify, ongoing: SandboxOngoing, shop: str):
        self.shopify, self.ongoing, self.shop = shopify, ongoing, shop
        self.account = ongoing.accounts[0]
        self.lock = threading.Lock()
        self.pending: dict[str, float] = {}  # return id -> when its parcel arrives
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> SampleScenario:
        store = self.shopify.store
        for sku, price, title in (RETURNED, EXCHANGED, SOLD_OUT):
            store.add_variant(self.shop, sku, price, title)
        self.account.add_article(SOLD_OUT[0], "T-shirt, blue, XL", 0)
        store.samples[self.shop] = self.run_sample  # POST /sandbox/sample-exchange runs it
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shopify.store.samples.pop(self.shop, None)
        self._stop.set()

    def run_sample(self, kind: str = "exchange") -> dict:
        """A customer's paid order, its original shipped by the warehouse, a return with an
        exchange (one size up; two for "out_of_stock") approved: Shopify sends returns/approve
        to Swapline."""
        if kind not in SAMPLES:
            raise ValueError(f"no sample of kind {kind!r}; there are {', '.join(SAMPLES)}")
        store = self.shopify.store
        with self.lock:
            self.count += 1
            name = f"#{2000 + self.count + int(time.time()) % 1000 * 10}"
        order = store.create_order(self.shop, items=[(RETURNED[0], 1)], name=name)
        self._original_in_warehouse(name.lstrip("#"))
        ret = store.create_return(self.shop, order["id"], returned=[(RETURNED[0], 1)],
                                  exchange=[(SAMPLES[kind][0], 1)])
        if kind == "exchange":
            with self.lock:
                self.pending[ret["id"]] = time.monotonic() + PARCEL_ARRIVES_AFTER
        threading.Thread(target=self._deliver, args=("returns/approve", ret["id"]),
                         daemon=True).start()
        return {"order": order["name"], "return_id": ret["id"]}

    def _deliver(self, topic: str, return_id: str) -> None:
        """Shopify's delivery of a returns webhook: sent again, with the same webhook id, until
        the app answers 2xx within Shopify's 5 s (a busy machine may miss it once)."""
        webhook_id = str(uuid.uuid4())
        for wait in RESEND_WAITS:
            if self._stop.wait(wait):
                return
            try:
                answer = self.shopify.send_return_webhook(topic, self.shop, return_id,
                                                          webhook_id=webhook_id)
                if 200 <= answer.status_code < 300:
                    return
            except requests.RequestException as exc:
                log.warning("%s not delivered (%s); sending it again", topic, type(exc).__name__)
        log.error("%s for %s never answered 2xx; Shopify would stop here too", topic, return_id)

    def _original_in_warehouse(self, number: str) -> None:
        """The original order as the shop's integration sent it to Ongoing, long shipped."""
        a = self.account
        base = self.ongoing.url_template.format(server=a.server, warehouse=a.warehouse)
        response = requests.put(f"{base}/orders", auth=(a.username, a.password), timeout=10, json={
            "goodsOwnerId": a.goods_owner_id, "orderNumber": number,
            "deliveryDate": "2026-11-01T00:00:00Z",
            "consignee": {"name": "Alex Customer", "address1": "Storgatan 1", "postCode": "11122",
                          "city": "Stockholm", "countryCode": "SE"},
            "orderLines": [{"rowNumber": "1", "articleNumber": RETURNED[0],
                            "numberOfItems": 1}]})
        response.raise_for_status()
        self.ongoing.move_order(response.json()["orderId"], SENT)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._parcels_arrive()
                self._warehouse_sends()
            except Exception:  # the demo's robot must keep going; the app's log shows the rest
                log.exception("sample scenario step failed")

    def _parcels_arrive(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [r for r, at in self.pending.items() if at <= now]
            for return_id in due:
                del self.pending[return_id]
        for return_id in due:
            self.shopify.store.close_return(self.shop, return_id)
            threading.Thread(target=self._deliver, args=("returns/close", return_id),
                             daemon=True).start()

    def _warehouse_sends(self) -> None:
        with self.ongoing.lock:
            released = [o.id for o in self.account.orders.values() if o.status == RELEASED]
        for order_id in released:
            self.ongoing.move_order(order_id, 400)
            self.ongoing.move_order(order_id, SENT)
