"""Test and demo hooks of the sandbox Shopify, mixed into sandbox.shopify.Store.

They set up shops, orders and returns as the merchant or customer would, read them back, and build
the returns/* webhook bodies Shopify would send.

Every hook takes the shop domain first (the shop is created on first use) and GIDs as strings;
each returns a plain summary dict (snake_case, money as "12.50"). Hooks raise ValueError for
what Shopify itself would refuse (e.g. declining an OPEN return): for the return mutations a
UserError carrying live Shopify's message, field and code.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sandbox.shopify import customer_data, return_edits
from sandbox.shopify import store as data
from sandbox.shopify.store import SandboxShop, gid, money

DEFAULT_ADDRESS = {"name": "Alva Svensson", "firstName": "Alva", "lastName": "Svensson",
                   "company": None, "address1": "Storgatan 1", "address2": "lgh 1102",
                   "city": "Stockholm", "zip": "11122", "province": None, "provinceCode": None,
                   "country": "Sweden", "countryCodeV2": "SE", "phone": "+46701234567"}
RETURN_TOPIC_STATUS = {"returns/request": "requested", "returns/approve": "open",
                       "returns/decline": "declined", "returns/close": "closed",
                       "returns/cancel": "canceled", "returns/reopen": "open"}


class ShopData:
    """The hooks; the host class provides `lock` and `add_shop(domain)`."""

    def _find(self, domain: str, table: str, value: str, kind: str,
              field: tuple[str, ...] = ("id",)):
        found = self.add_shop(domain).get(table, value, kind)
        if found is None and kind == "Return":  # Shopify's answer to returnClose & co.
            raise data.UserError("Return not found.", list(field), "NOT_FOUND")
        if found is None:
            raise ValueError(f"{domain} has no {kind} {value}")
        return found

    def set_workflow(self, shop: str, workflow: str) -> None:
        """Workflow "legacy" or "processing" (default): when exchanges get fulfillment orders."""
        if workflow not in data.WORKFLOWS:
            raise ValueError(f"workflow must be one of {data.WORKFLOWS}")
        with self.lock:
            self.add_shop(shop).workflow = workflow

    def set_fulfillment_service(self, shop: str, fo_id: str | None = None, *,
                                other: bool = True) -> None:
        """Assign an FO (or, without fo_id, every FO made from now on) to another service."""
        with self.lock:
            if fo_id is None:
                self.add_shop(shop).other_service_default = other
            else:
                self._find(shop, "fulfillment_orders", fo_id, "FulfillmentOrder").other_service \
                    = other

    def reset_shop(self, shop: str) -> None:
        """Forget a shop's variants, orders, returns and settings (its tokens stay)."""
        with self.lock:
            old = self.add_shop(shop)
            self.shops[shop] = SandboxShop(old.domain, old.name, old.currency)

    def set_plus(self, shop: str, plus: bool) -> None:
        """Shopify Plus or not: only Plus shops may pass `amount` to orderCreateMandatePayment."""
        with self.lock:
            self.add_shop(shop).plus = plus

    def set_old_order_answer(self, shop: str, answer: str) -> None:
        """How an order past the 60-day window is answered without read_all_orders: "null"
        (`order` null, no error) or "error" (a top-level "Not Found" error, `order` null)."""
        if answer not in ("null", "error"):
            raise ValueError("answer must be 'null' or 'error'")
        with self.lock:
            self.add_shop(shop).old_order_answer = answer

    def set_customer_data(self, shop: str, mode: str) -> None:
        """Whether the app may read Level 2 protected customer data, and if not, which of the
        possible answers Shopify gives (modes in sandbox/shopify/customer_data.py)."""
        if mode not in customer_data.MODES:
            raise ValueError(f"mode must be one of {', '.join(customer_data.MODES)}")
        with self.lock:
            self.add_shop(shop).customer_data = mode

    def set_awaiting_payment_lifts(self, shop: str, lifts: bool) -> None:
        """Whether Shopify lifts its AWAITING_PAYMENT holds once the order is paid (both are
        possible: no source says which it does)."""
        with self.lock:
            self.add_shop(shop).awaiting_payment_lifts_on_payment = lifts

    def add_variant(self, shop: str, sku: str, price: str | Decimal, title: str) -> dict:
        """A product variant (the SKU is unique per shop; adding it again updates it)."""
        with self.lock:
            sandbox_shop = self.add_shop(shop)
            variant = next((v for v in sandbox_shop.variants.values() if v.sku == sku), None)
            if variant is None:
                variant = data.Variant(data.next_id(), sku, Decimal(str(price)), title)
                sandbox_shop.variants[variant.id] = variant
            variant.price, variant.title = Decimal(str(price)), title
            return {"id": gid("ProductVariant", variant.id), "sku": sku,
                    "price": money(variant.price), "title": title}

    def create_order(self, shop: str, *, items: list[tuple[str, int]],
                     email: str | None = "customer@example.com",
                     capture_mode: str = "authorization", name: str | None = None,
                     shipping_address: dict | None = None,
                     unfulfilled: list[tuple[str, int]] = (), fulfillment_orders: int = 1,
                     age_days: int = 0, tags: list[str] = ()) -> dict:
        """A paid order with every item fulfilled; capture_mode: authorization|vaulted|none.

        `unfulfilled` items wait on an OPEN fulfillment order (e.g. a pre-order).
        `fulfillment_orders` spreads the items over that many (closed) fulfillment orders, as
        an order shipped from several locations or in several goes has. `age_days`: placed
        that many days ago (past 60, Shopify hides it from an app without read_all_orders).
        `tags`: the order's tags already (e.g. 250 of them, Shopify's limit).
        """
        with self.lock:
            sandbox_shop = self.add_shop(shop)
            order = create_order(sandbox_shop, items, email=email, capture_mode=capture_mode,
                                 name=name, address={**DEFAULT_ADDRESS,
                                                     **(shipping_address or {})},
                                 fulfillment_orders=fulfillment_orders)
            order.created_at = data.now_iso(timedelta(days=-age_days))
            order.tags = list(tags)
            waiting = [data.add_line_item(order, sandbox_shop.variant_by_sku(sku), quantity)
                       for sku, quantity in unfulfilled]
            if waiting:
                data.add_fulfillment_order(sandbox_shop, order, waiting).other_service = False
            return order_summary(sandbox_shop, order)

    def create_return(self, shop: str, order_id: str, *, returned: list[tuple[str, int]],
                      exchange: list[tuple[str, int]] = (), requested: bool = False) -> dict:
        """Like returnCreate (OPEN, the shop's workflow applied), or returnRequest (REQUESTED)."""
        with self.lock:
            sandbox_shop = self.add_shop(shop)
            order = self._find(shop, "orders", order_id, "Order")
            ret = data.create_return(sandbox_shop, order, list(returned), list(exchange),
                                     requested=requested)
            return return_summary(sandbox_shop, ret)

    def approve_return(self, shop: str, return_id: str) -> dict:
        """returnApproveRequest: REQUESTED -> OPEN, the workflow applied."""
        with self.lock:
            ret = self._find(shop, "returns", return_id, "Return", ("input", "id"))
            if ret.status != "REQUESTED":
                raise data.UserError("Return is not approvable. Only returns with status "
                                     "REQUESTED can be approved.", ["input", "id"],
                                     "INVALID_STATE")
            data.open_return(self.shops[shop], ret)
            return return_summary(self.shops[shop], ret)

    def _move_return(self, shop: str, return_id: str, status: str) -> dict:
        field = ("input", "id") if status == "DECLINED" else ("id",)
        with self.lock:
            ret = self._find(shop, "returns", return_id, "Return", field)
            data.set_return_status(self.shops[shop], ret, status)
            return return_summary(self.shops[shop], ret)

    def close_return(self, shop: str, return_id: str) -> dict:
        """returnClose: OPEN -> CLOSED (holds on the exchange FO stay, as in Shopify)."""
        return self._move_return(shop, return_id, "CLOSED")

    def reopen_return(self, shop: str, return_id: str) -> dict:
        """returnReopen: CLOSED -> OPEN."""
        return self._move_return(shop, return_id, "OPEN")

    def cancel_return(self, shop: str, return_id: str) -> dict:
        """returnCancel: before any work only; the exchange FOs are cancelled, balance undone."""
        return self._move_return(shop, return_id, "CANCELED")

    def decline_return(self, shop: str, return_id: str, reason: str = "RETURN_PERIOD_ENDED",
                       note: str | None = None) -> dict:
        """returnDeclineRequest: REQUESTED -> DECLINED (Shopify declines only requested ones)."""
        with self.lock:
            summary = self._move_return(shop, return_id, "DECLINED")
            self._find(shop, "returns", return_id, "Return").decline = (reason, note)
            return summary

    def set_zero_price_exchange_unreleased(self, shop: str, on: bool = True) -> None:
        """As merchants report: returnProcess makes no fulfillment order for exchange items
        priced 0 (2025-07 workflow); they wait for admin's "Process return"."""
        with self.lock:
            self.add_shop(shop).zero_price_exchange_unreleased = on

    def process_return_in_admin(self, shop: str, return_id: str) -> dict:
        """The merchant clicks "Process return" in admin for unreleased exchange items: their
        line items and fulfillment order appear."""
        with self.lock:
            ret = self._find(shop, "returns", return_id, "Return")
            data.release_unreleased(self.shops[shop], ret)
            return return_summary(self.shops[shop], ret)

    def remove_from_return(self, shop: str, return_id: str, *,
                           exchange: list[tuple[str, int]] = (),
                           returned: list[tuple[str, int]] = ()) -> dict:
        """removeFromReturn by the merchant or another app: (line item GID, quantity) pairs;
        raises return_edits.UserErrors (a ValueError) where Shopify answers userErrors."""
        with self.lock:
            ret = return_edits.remove_from_return(self.add_shop(shop), return_id,
                                                  list(returned), list(exchange))
            return return_summary(self.shops[shop], ret)

    def pay_outstanding(self, shop: str, order_id: str) -> dict:
        """The customer pays the invoice: a SALE for the outstanding balance."""
        with self.lock:
            order = self._find(shop, "orders", order_id, "Order")
            if order.outstanding > 0:
                order.transactions.append(data.Transaction(data.next_id(), "SALE",
                                                           order.outstanding))
                data.settle(self.shops[shop], order, order.outstanding)
            return order_summary(self.shops[shop], order)

    def expire_authorizations(self, shop: str, order_id: str) -> None:
        """Make the order's open authorizations expired (the 7-day window passed)."""
        with self.lock:
            for txn in self._find(shop, "orders", order_id, "Order").transactions:
                if txn.expires_at:
                    txn.expires_at = data.now_iso(timedelta(seconds=-1))

    def order_state(self, shop: str, order_id: str) -> dict:
        """Everything the sandbox knows about an order: money, FOs, holds, fulfillments."""
        with self.lock:
            return order_summary(self.shops[shop], self._find(shop, "orders", order_id, "Order"))

    def return_state(self, shop: str, return_id: str) -> dict:
        """A return's status, items and balance."""
        with self.lock:
            return return_summary(self.shops[shop],
                                  self._find(shop, "returns", return_id, "Return"))

    def return_payload(self, shop: str, return_id: str, topic: str) -> dict:
        """The body Shopify sends for `topic` (returns/*) about this return (reference §1)."""
        with self.lock:
            return return_payload(self.shops[shop],
                                  self._find(shop, "returns", return_id, "Return"), topic)


def create_order(shop: SandboxShop, items: list[tuple[str, int]], *, email: str | None,
                 capture_mode: str, name: str | None, address: dict,
                 fulfillment_orders: int = 1) -> data.Order:
    """A paid order, every item fulfilled (closed fulfillment orders, one fulfillment)."""
    if capture_mode not in data.CAPTURE_MODES:
        raise ValueError(f"capture_mode must be one of {data.CAPTURE_MODES}")
    if not 1 <= fulfillment_orders <= len(items):
        raise ValueError("fulfillment_orders must be between 1 and the number of items")
    number = next(shop.order_numbers)
    order = data.Order(data.next_id(), name or f"#{number}", email, address, shop.currency,
                       capture_mode)
    for sku, quantity in items:
        data.add_line_item(order, shop.variant_by_sku(sku), quantity)
    total = sum((i.price * i.quantity for i in order.line_items), Decimal(0))
    if capture_mode == "authorization":  # a manual-capture store: authorized, then captured
        auth = data.Transaction(data.next_id(), "AUTHORIZATION", total, closed=True)
        capture = data.Transaction(data.next_id(), "CAPTURE", total, parent_id=auth.id)
        order.transactions += [auth, capture]
    else:
        order.transactions.append(data.Transaction(data.next_id(), "SALE", total))
    if capture_mode == "vaulted":
        order.mandate_ids.append(data.next_id())
    for part in range(fulfillment_orders):
        fo = data.add_fulfillment_order(shop, order, order.line_items[part::fulfillment_orders])
        fo.other_service, fo.status = False, "CLOSED"
        for line in fo.lines:
            line.remaining = 0
    order.fulfillments.append(data.Fulfillment(data.next_id(), order.id, [
        data.FulfillmentLine(data.next_id(), i, i.quantity) for i in order.line_items], []))
    shop.orders[order.id] = order
    return order


def order_summary(shop: SandboxShop, order: data.Order) -> dict:
    fos = [shop.fulfillment_orders[i] for i in order.fulfillment_order_ids]
    return {
        "id": gid("Order", order.id), "name": order.name, "email": order.email,
        "currency": order.currency, "capture_mode": order.capture_mode, "tags": list(order.tags),
        "total_outstanding": money(order.outstanding),
        "line_items": [{"id": gid("LineItem", i.id), "sku": i.variant.sku,
                        "quantity": i.quantity, "price": money(i.price)}
                       for i in order.line_items],
        "transactions": [{"id": gid("OrderTransaction", t.id), "kind": t.kind,
                          "status": t.status, "amount": money(t.amount),
                          "parent_id": gid("OrderTransaction", t.parent_id)
                          if t.parent_id else None, "unsettled": money(order.unsettled(t))}
                         for t in order.transactions],
        "mandate_ids": [gid("PaymentMandate", m) for m in order.mandate_ids],
        "fulfillment_orders": [{
            "id": gid("FulfillmentOrder", fo.id), "status": fo.status,
            "other_service": fo.other_service, "supported_actions": fo.actions(),
            "holds": [{"id": gid("FulfillmentHold", h.id), "reason": h.reason,
                       "handle": h.handle, "held_by_requesting_app": h.by_app}
                      for h in fo.holds],
            "line_items": [{"id": gid("FulfillmentOrderLineItem", line.id),
                            "line_item_id": gid("LineItem", line.line_item.id),
                            "sku": line.line_item.variant.sku, "total": line.total,
                            "remaining": line.remaining} for line in fo.lines]}
            for fo in fos],
        "fulfillments": [{"id": gid("Fulfillment", f.id), "tracking": f.tracking,
                          "notify_customer": f.notify_customer,
                          "line_items": [{"line_item_id": gid("LineItem", line.line_item.id),
                                          "sku": line.line_item.variant.sku,
                                          "quantity": line.quantity} for line in f.lines]}
                         for f in order.fulfillments],
        "invoices": list(order.invoices),
        "mandate_payments": [{"idempotency_key": key, "amount": p["_amount"],
                              "transaction_id": p["_transaction"],
                              "payment_reference_id": p["paymentReferenceId"]}
                             for key, p in order.mandate_payments.items()],
        "return_ids": [gid("Return", r) for r in order.return_ids],
    }


def return_summary(shop: SandboxShop, ret: data.Return) -> dict:
    return {
        "id": gid("Return", ret.id), "name": ret.name, "status": ret.status,
        "order_id": gid("Order", ret.order_id), "balance": money(ret.balance(False)),
        "return_line_items": [{
            "id": gid("ReturnLineItem", r.id), "sku": r.fulfillment_line.line_item.variant.sku,
            "quantity": r.quantity, "processed_quantity": r.processed,
            "fulfillment_line_item_id": gid("FulfillmentLineItem", r.fulfillment_line.id),
            "line_item_id": gid("LineItem", r.fulfillment_line.line_item.id)} for r in ret.lines],
        "exchange_line_items": [{
            "id": gid("ExchangeLineItem", e.id), "variant_id": gid("ProductVariant", e.variant.id),
            "sku": e.variant.sku, "quantity": e.quantity, "processed_quantity": e.processed,
            "removed_quantity": e.removed, "unreleased_quantity": e.unreleased,
            "line_item_ids": [gid("LineItem", i.id) for i in e.line_items]}
            for e in ret.exchanges],
        "fulfillment_order_ids": [gid("FulfillmentOrder", fo.id)
                                  for fo in data.exchange_fulfillment_orders(shop, ret)],
    }


def return_payload(shop: SandboxShop, ret: data.Return, topic: str) -> dict:
    """REST-style body with the status the topic implies (a late delivery keeps its old status)."""
    ref = {"id": ret.id, "admin_graphql_api_id": gid("Return", ret.id)}
    order = {"id": ret.order_id, "admin_graphql_api_id": gid("Order", ret.order_id)}
    if topic in ("returns/close", "returns/cancel", "returns/reopen"):
        return {**ref, "order_id": ret.order_id, "status": RETURN_TOPIC_STATUS[topic]}
    if topic == "returns/decline":
        reason, note = ret.decline or ("RETURN_PERIOD_ENDED", None)
        return {**ref, "status": "declined", "order": order,
                "decline": {"reason": reason.lower(), "note": note}}
    if topic == "returns/update":
        return {"admin_graphql_api_id": ref["admin_graphql_api_id"],
                "return_line_items": {"removals": [
                    {"admin_graphql_api_id": gid("ReturnLineItem", line_id), "delta": delta}
                    for line_id, delta in ret.removals]},
                "restocking_fees": {"updates": [], "removals": []},
                "return_shipping_fees": {"updates": [], "removals": []}}
    if topic == "returns/process":
        return {}  # Shopify's documented sample body for this topic is empty
    if topic not in ("returns/request", "returns/approve"):
        raise ValueError(f"no returns payload for topic {topic!r}")
    return {**ref, "status": RETURN_TOPIC_STATUS[topic], "order": order, "name": ret.name,
            "total_return_line_items": len(ret.lines), "return_line_items": [{
                "id": r.id, "admin_graphql_api_id": gid("ReturnLineItem", r.id),
                "fulfillment_line_item": {
                    "id": r.fulfillment_line.id,
                    "admin_graphql_api_id": gid("FulfillmentLineItem", r.fulfillment_line.id),
                    "line_item": {"id": r.fulfillment_line.line_item.id,
                                  "admin_graphql_api_id": gid("LineItem",
                                                              r.fulfillment_line.line_item.id)}},
                "quantity": r.quantity, "return_reason": "unwanted", "return_reason_note": "",
                "customer_note": None} for r in ret.lines],
            "return_shipping_fees": [], "total_exchange_line_items": len(ret.exchanges),
            "exchange_line_items": [{
                "id": e.id, "admin_graphql_api_id": gid("ExchangeLineItem", e.id),
                "line_item": {"id": e.line_items[0].id,
                              "admin_graphql_api_id": gid("LineItem", e.line_items[0].id)}
                if e.line_items else None} for e in ret.exchanges]}
