"""A shop wired to both sandboxes; helpers play Shopify, the warehouse and the customer."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import jwt
from sqlmodel import select

from blueprints.return_events import signature
from clients.shopify_session import SessionToken
from clients.shopify_tokens import install
from models import db
from models.exchange import Exchange, ExchangeEvent
from models.settings import apply, settings_of
from sandbox.ongoing.store import THREE_PL_RETURNED, webhook_payload
from sandbox.shopify import mint_session_token, webhook_headers
from tests.conftest import API_KEY, API_SECRET

TOKEN = "ongoing-webhook-token-" + "w" * 30
EVENTS_SECRET = "return-events-secret-" + "e" * 30
RETURNED_SKU, EXCHANGE_SKU = "SHIRT-M", "SHIRT-L"


@dataclass
class World:
    client: object
    sandbox: object  # SandboxShopify
    ongoing: object  # SandboxOngoing
    account: object  # its goods owner account
    run_jobs: object
    domain: str = field(default_factory=lambda: f"shop-{uuid.uuid4().hex[:8]}.myshopify.com")
    order: dict | None = None
    ret: dict | None = None

    @property
    def store(self):
        return self.sandbox.store

    def setup(self, *, instant: bool = False, workflow: str = "processing",
              capture_mode: str = "authorization", stock: int = 5,
              returned_status: bool = False, original: bool = True,
              shipping_defaults: dict | None = None, lines: int = 1,
              fulfillment_orders: int = 1, granted=None, order_age_days: int = 0) -> World:
        """Install the shop (real token exchange), configure it, stock both systems. The
        warehouse has Ongoing's standard statuses; `returned_status` adds a 3PL's Returned;
        `original`: the original order is in Ongoing (shipped like Ongoing's example order).
        The order holds `lines` lines of one returned item, over `fulfillment_orders`
        fulfillment orders. `granted`: the scopes the shop grants (default the toml's);
        `order_age_days`: how long ago the order was placed."""
        if granted is not None:
            self.store.grant(self.domain, granted)
        if returned_status:
            self.account.add_order_status(*THREE_PL_RETURNED)
        token = mint_session_token(self.domain, API_KEY, API_SECRET)
        claims = jwt.decode(token, options={"verify_signature": False})
        install(SessionToken(self.domain, "42", token, claims))
        with db.session() as s:
            from models.settings import ShopSettings
            row = s.exec(select(ShopSettings).where(
                ShopSettings.id == settings_of(self.domain).id)).one()
            apply(row, {"ongoing_server": "api", "ongoing_warehouse": self.account.warehouse,
                        "goods_owner_id": self.account.goods_owner_id,
                        "ongoing_username": self.account.username,
                        "password": self.account.password, "warehouse_id": 1,
                        "order_status_open": 200,
                        "order_status_returned": THREE_PL_RETURNED[0] if returned_status
                        else None,
                        "order_status_released": 300, "order_status_sent": 450,
                        "return_status_notified": 100, "return_status_returned": 200,
                        "webhook_token": TOKEN, "events_secret": EVENTS_SECRET,
                        "instant_exchange": instant, "notify_customer": True,
                        **(shipping_defaults or {})})
        self.account.add_article(RETURNED_SKU, "Shirt M", 10)
        self.account.add_article(EXCHANGE_SKU, "Shirt L", stock)
        self.store.set_workflow(self.domain, workflow)
        self.store.add_variant(self.domain, RETURNED_SKU, "20.00", "Shirt - M")
        self.store.add_variant(self.domain, EXCHANGE_SKU, "25.00", "Shirt - L")
        self.order = self.store.create_order(self.domain, items=[(RETURNED_SKU, 1)] * lines,
                                             capture_mode=capture_mode, name="#1001",
                                             fulfillment_orders=fulfillment_orders,
                                             age_days=order_age_days)
        if original:
            self._original_in_ongoing()
        return self

    def _original_in_ongoing(self) -> None:
        """The original order, shipped by the warehouse long ago (another integration made it)."""
        from clients.ongoing_accounts import client_for_shop

        client = client_for_shop(settings_of(self.domain))
        order_id = client.create_or_update_order({
            "orderNumber": "1001", "deliveryDate": "2026-11-01T00:00:00Z",
            "consignee": {"customerNumber": "CN1", "name": "A Customer",
                          "address1": "Street 1", "postCode": "11122", "city": "Stockholm",
                          "countryCode": "SE"},
            "transporter": {"transporterCode": "PLAB", "transporterServiceCode": "P19"},
            "wayOfDelivery": {"code": "SHP1", "name": "Shipment way 1"},
            "servicePointCode": "3232323",
            "orderLines": [{"rowNumber": "1", "articleNumber": RETURNED_SKU,
                            "numberOfItems": 1}]})["orderId"]
        self.ongoing.move_order(order_id, 450)

    # --- Shopify ---------------------------------------------------------------------------
    def shopify_webhook(self, topic: str, payload: dict, webhook_id: str | None = None):
        body = json.dumps(payload).encode()
        headers = webhook_headers(topic, self.domain, body, API_SECRET, webhook_id=webhook_id)
        response = self.client.post("/webhooks/shopify", data=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    def approve(self, lines: int = 1, **kwargs) -> World:
        """The customer's return with an exchange is approved (returnCreate → returns/approve);
        `lines` items returned, each exchanged on its own line."""
        self.ret = self.store.create_return(self.domain, self.order["id"],
                                            returned=[(RETURNED_SKU, 1)] * lines,
                                            exchange=[(EXCHANGE_SKU, 1)] * lines)
        self.return_webhook("returns/approve", **kwargs)
        return self

    def parked(self, **setup) -> Exchange:
        """Set up, approve and run the jobs: the exchange parked in Ongoing (asserted)."""
        self.setup(**setup).approve()
        self.run_jobs()
        exchange = self.exchange()
        assert exchange.state == "parked", exchange.attention_reason
        return exchange

    def approve_while_locked(self, monkeypatch, quantity: int = 1) -> World:
        """The approve webhook processed while the exchange's lock is busy: the exchange is
        detected and its create waits for its own job (not run here); `quantity` exchanged."""
        from jobs import lifecycle
        from jobs.deliveries import process_delivery
        from models.delivery import WebhookDelivery

        self.ret = self.store.create_return(self.domain, self.order["id"],
                                            returned=[(RETURNED_SKU, 1)],
                                            exchange=[(EXCHANGE_SKU, quantity)])
        self.return_webhook("returns/approve")
        with db.session() as s:
            [delivery] = s.exec(select(WebhookDelivery)).all()
        with monkeypatch.context() as busy:
            busy.setattr(lifecycle, "_lock_now", lambda *args, **kwargs: None)
            process_delivery(delivery.id)
        return self

    def ret_for(self, order: dict, lines: int = 1) -> dict:
        """A further approved return with an exchange, on another order of the shop."""
        return self.store.create_return(self.domain, order["id"],
                                        returned=[(RETURNED_SKU, 1)] * lines,
                                        exchange=[(EXCHANGE_SKU, 1)] * lines)

    def return_webhook(self, topic: str, **kwargs):
        payload = self.store.return_payload(self.domain, self.ret["id"], topic)
        return self.shopify_webhook(topic, payload, **kwargs)

    def close(self) -> None:
        self.store.close_return(self.domain, self.ret["id"])
        self.return_webhook("returns/close")

    def in_transit(self, event_id: str = "evt-transit-1"):
        body = json.dumps({"id": event_id, "event": "shipment.event.in_transit",
                           "return_id": self.ret["id"], "occurred_at": "2026-11-27T10:00:00Z"})
        key = settings_of(self.domain).webhook_key
        return self.client.post(f"/webhooks/return-events/{key}", data=body, headers={
            "X-Swapline-Signature": signature(body.encode(), EVENTS_SECRET)})

    # --- the warehouse ---------------------------------------------------------------------
    def warehouse_moves(self, status: int, *, webhook: bool = True, **tracking):
        """The warehouse moves the exchange order; Ongoing's webhook reaches the app."""
        order_id = self.exchange().ongoing_order_id
        self.ongoing.move_order(order_id, status, tracking=tracking or None)
        if webhook:
            return self.ongoing_webhook(order_id)

    def ongoing_webhook(self, order_id: int):
        payload = webhook_payload(self.account, self.account.orders[order_id])
        key = settings_of(self.domain).webhook_key
        return self.client.post(f"/webhooks/ongoing/{key}", json=payload,
                                headers={"X-Auth-Token": TOKEN})

    # --- reading the result ----------------------------------------------------------------
    def exchange(self) -> Exchange:
        with db.session() as s:
            return s.exec(select(Exchange).where(Exchange.shop_domain == self.domain)).one()

    def timeline(self) -> list[ExchangeEvent]:
        from models.exchange import timeline

        with db.session() as s:
            return timeline(self.exchange().id, session=s)

    def ongoing_order(self) -> dict:
        from clients.ongoing_accounts import client_for_shop

        return client_for_shop(settings_of(self.domain)).get_order(
            self.exchange().ongoing_order_id)

    def shopify_order(self) -> dict:
        return self.store.order_state(self.domain, self.order["id"])

    def applied(self, operation: str) -> int:
        return self.store.applied(operation, self.domain)
