"""The demo's customer and warehouse: a sample exchange on demand, then the return parcel arrives
and the warehouse picks and sends what Swapline released, all by themselves."""
from __future__ import annotations

import logging
import threading
import time

from clients.ongoing import OngoingClient, OngoingCredentials
from sandbox.ongoing import SandboxOngoing
from sandbox.shopify import SandboxShopify

RETURNED = ("TSHIRT-M-BLUE", "19.00", "T-shirt - Blue / M")
EXCHANGED = ("TSHIRT-L-BLUE", "24.00", "T-shirt - Blue / L")
PARCEL_ARRIVES_AFTER = 4.0  # seconds from the sample's start until the customer's return arrives
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
        for sku, price, title in (RETURNED, EXCHANGED):
            store.add_variant(self.shop, sku, price, title)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run_sample(self) -> dict:
        """A customer's paid order, its original shipped by the warehouse, a return with an
        exchange (one size up) approved: Shopify sends returns/approve to Swapline."""
        store = self.shopify.store
        with self.lock:
            self.count += 1
            name = f"#{2000 + self.count + int(time.time()) % 1000 * 10}"
        order = store.create_order(self.shop, items=[(RETURNED[0], 1)], name=name)
        self._original_in_warehouse(name.lstrip("#"))
        ret = store.create_return(self.shop, order["id"], returned=[(RETURNED[0], 1)],
                                  exchange=[(EXCHANGED[0], 1)])
        with self.lock:
            self.pending[ret["id"]] = time.monotonic() + PARCEL_ARRIVES_AFTER
        threading.Thread(target=self.shopify.send_return_webhook,
                         args=("returns/approve", self.shop, ret["id"]), daemon=True).start()
        return {"order": order["name"], "return_id": ret["id"]}

    def _original_in_warehouse(self, number: str) -> None:
        """The original order as the shop's integration sent it to Ongoing, long shipped."""
        a = self.account
        client = OngoingClient(OngoingCredentials(a.server, a.warehouse, a.goods_owner_id,
                                                  a.username, a.password),
                               url_template=self.ongoing.url_template)
        order_id = client.create_or_update_order({
            "orderNumber": number, "deliveryDate": "2026-11-01T00:00:00Z",
            "consignee": {"name": "Alex Customer", "address1": "Storgatan 1", "postCode": "11122",
                          "city": "Stockholm", "countryCode": "SE"},
            "orderLines": [{"rowNumber": "1", "articleNumber": RETURNED[0],
                            "numberOfItems": 1}]})["orderId"]
        self.ongoing.move_order(order_id, SENT)

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
            self.shopify.send_return_webhook("returns/close", self.shop, return_id)

    def _warehouse_sends(self) -> None:
        with self.ongoing.lock:
            released = [o.id for o in self.account.orders.values() if o.status == RELEASED]
        for order_id in released:
            self.ongoing.move_order(order_id, 400)
            self.ongoing.move_order(order_id, SENT)
