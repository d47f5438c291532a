"""GraphQL-shaped views of the sandbox's objects, and the query resolvers that return them.

A view is a superset of what a document may select: a dict per object with `__typename`, nested
objects and connections as callables (evaluated only when selected, called with the field's
arguments, so `first:` is honoured). graphql_ops.py projects it onto the selection set.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox.shopify.store import (
    ExchangeLine,
    Fulfillment,
    FulfillmentOrder,
    Hold,
    InvalidId,
    LineItem,
    Order,
    OutOfWindow,
    Refused,
    Return,
    SandboxShop,
    Transaction,
    Variant,
    decimal_text,
    gid,
    money,
)

DISPLAY_REASONS = {"AWAITING_PAYMENT": "Awaiting payment",  # AWAITING_RETURN_ITEMS, OTHER: live
                   "AWAITING_RETURN_ITEMS": "Exchange items awaiting return delivery",
                   "OTHER": "Other"}
ORDER_WINDOW = timedelta(days=60)


def connection(typename: str, items: list) -> callable:
    """A connection field: `{"nodes": [...]}` plus edges and pageInfo, paged by `first`/`after`.

    Shopify refuses a connection without `first` or `last`; the sandbox pages forward only and
    refuses `last`/`before` loudly. Cursors are opaque strings naming the position.
    """
    def resolve(first: int | None = None, after: str | None = None, last=None, before=None,
                **_):
        if last is not None or before is not None:
            raise Refused(f"the sandbox pages {typename} connections forward only")
        if first is None:
            raise InvalidId("you must provide one of first or last")
        start = _cursor_position(typename, after) + 1 if after else 0
        nodes = items[start:start + first]
        cursors = [_cursor(typename, start + i) for i in range(len(nodes))]
        return {"__typename": f"{typename}Connection", "nodes": nodes,
                "edges": [{"__typename": f"{typename}Edge", "node": n, "cursor": c}
                          for n, c in zip(nodes, cursors, strict=True)],
                "pageInfo": {"__typename": "PageInfo",
                             "hasNextPage": start + len(nodes) < len(items),
                             "hasPreviousPage": start > 0,
                             "startCursor": cursors[0] if cursors else None,
                             "endCursor": cursors[-1] if cursors else None}}
    return resolve


def _cursor(typename: str, position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"t": typename, "p": position}).encode()).decode()


def _cursor_position(typename: str, cursor: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if value["t"] == typename and isinstance(value["p"], int) and value["p"] >= 0:
            return value["p"]
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidId(f"Invalid cursor for {typename} connection: {cursor!r}")


def listing(items: list) -> callable:
    """A plain list field that takes `first` (Order.transactions, trackingInfo)."""
    return lambda first=None, **_: items[:first] if first is not None else items


def money_bag(amount: Decimal, currency: str) -> dict:
    value = {"__typename": "MoneyV2", "amount": decimal_text(amount), "currencyCode": currency}
    return {"__typename": "MoneyBag", "presentmentMoney": value, "shopMoney": value}


def variant_view(variant: Variant) -> dict:
    return {"__typename": "ProductVariant", "id": gid("ProductVariant", variant.id),
            "legacyResourceId": str(variant.id), "sku": variant.sku,
            "price": money(variant.price), "title": variant.title, "displayName": variant.title}


def line_item_view(item: LineItem, currency: str) -> dict:
    return {"__typename": "LineItem", "id": gid("LineItem", item.id), "sku": item.variant.sku,
            "name": item.variant.title, "title": item.variant.title, "quantity": item.quantity,
            "variant": lambda **_: variant_view(item.variant),
            "originalUnitPriceSet": money_bag(item.price, currency)}


def hold_view(hold: Hold) -> dict:
    return {"__typename": "FulfillmentHold", "id": gid("FulfillmentHold", hold.id),
            "reason": hold.reason, "handle": hold.handle, "reasonNotes": hold.notes,
            "heldByRequestingApp": hold.by_app,
            "displayReason": DISPLAY_REASONS.get(hold.reason, hold.reason.capitalize())}


def fulfillment_order_view(shop: SandboxShop, fo: FulfillmentOrder) -> dict:
    lines = [{"__typename": "FulfillmentOrderLineItem",
              "id": gid("FulfillmentOrderLineItem", line.id),
              "remainingQuantity": line.remaining, "totalQuantity": line.total,
              "sku": line.line_item.variant.sku,
              "lineItem": line_item_view(line.line_item, shop.currency)} for line in fo.lines]
    location = {"__typename": "Location", "id": gid("Location", 2 if fo.other_service else 1),
                "name": "Fulfillment service" if fo.other_service else "Shop location",
                "isFulfillmentService": fo.other_service}
    return {"__typename": "FulfillmentOrder", "id": gid("FulfillmentOrder", fo.id),
            "status": fo.status, "requestStatus": "UNSUBMITTED",
            "supportedActions": [{"__typename": "FulfillmentOrderSupportedAction",
                                  "action": a, "externalUrl": None} for a in fo.actions()],
            "fulfillmentHolds": [hold_view(h) for h in fo.holds],
            "lineItems": connection("FulfillmentOrderLineItem", lines),
            "assignedLocation": {"__typename": "FulfillmentOrderAssignedLocation",
                                 "name": location["name"], "location": location},
            "orderId": gid("Order", fo.order_id), "orderName": shop.orders[fo.order_id].name,
            "order": lambda **_: order_view(shop, shop.orders[fo.order_id])}


def transaction_view(order: Order, txn: Transaction) -> dict:
    unsettled = order.unsettled(txn)
    return {"__typename": "OrderTransaction", "id": gid("OrderTransaction", txn.id),
            "kind": txn.kind, "status": txn.status, "gateway": txn.gateway,
            "createdAt": txn.created_at, "processedAt": txn.created_at,
            "authorizationExpiresAt": txn.expires_at, "multiCapturable": False,
            "amountSet": money_bag(txn.amount, order.currency),
            "totalUnsettledSet": money_bag(unsettled, order.currency)
            if txn.kind == "AUTHORIZATION" else None,
            "parentTransaction": lambda **_: next(
                (transaction_view(order, t) for t in order.transactions if t.id == txn.parent_id),
                None)}


def order_view(shop: SandboxShop, order: Order) -> dict:
    def fulfillment_orders():
        return [fulfillment_order_view(shop, shop.fulfillment_orders[i])
                for i in order.fulfillment_order_ids]

    return {"__typename": "Order", "id": gid("Order", order.id), "name": order.name,
            "email": order.email, "currencyCode": order.currency, "createdAt": order.created_at,
            "tags": list(order.tags),
            "shippingAddress": {"__typename": "MailingAddress", **order.address},
            "totalOutstandingSet": money_bag(order.outstanding, order.currency),
            "capturable": any(order.unsettled(t) > 0 for t in order.transactions),
            "transactions": listing([transaction_view(order, t) for t in order.transactions]),
            "paymentCollectionDetails": {
                "__typename": "OrderPaymentCollectionDetails",
                "additionalPaymentCollectionUrl": f"https://{shop.domain}/pay/{order.id}"
                if order.outstanding > 0 else None,
                "vaultedPaymentMethods": [{"__typename": "PaymentMandate",
                                           "id": gid("PaymentMandate", m)}
                                          for m in order.mandate_ids]},
            "lineItems": connection("LineItem", [line_item_view(i, order.currency)
                                                 for i in order.line_items]),
            "fulfillmentOrders": lambda **args: connection(
                "FulfillmentOrder", fulfillment_orders())(**args),
            "fulfillments": listing([fulfillment_view(shop, f) for f in order.fulfillments])}


def fulfillment_view(shop: SandboxShop, fulfillment: Fulfillment) -> dict:
    tracking = [{"__typename": "FulfillmentTrackingInfo", **t} for t in fulfillment.tracking]
    return {"__typename": "Fulfillment", "id": gid("Fulfillment", fulfillment.id),
            "status": fulfillment.status, "createdAt": fulfillment.created_at,
            "trackingInfo": listing(tracking),
            "totalQuantity": sum(line.quantity for line in fulfillment.lines),
            "order": lambda **_: order_view(shop, shop.orders[fulfillment.order_id])}


def exchange_line_view(line: ExchangeLine, currency: str) -> dict:
    items = [line_item_view(i, currency) for i in line.line_items]
    unprocessed = line.unprocessed()
    return {"__typename": "ExchangeLineItem", "id": gid("ExchangeLineItem", line.id),
            "variantId": gid("ProductVariant", line.variant.id), "quantity": line.quantity,
            "processedQuantity": line.processed, "unprocessedQuantity": unprocessed,
            "processableQuantity": unprocessed,
            "lineItems": items, "lineItem": items[0] if items else None}


def return_view(shop: SandboxShop, ret: Return) -> dict:
    returned = [{"__typename": "ReturnLineItem", "id": gid("ReturnLineItem", r.id),
                 "quantity": r.quantity - r.removed, "processedQuantity": r.processed,
                 "unprocessedQuantity": r.unprocessed(),
                 "fulfillmentLineItem": {
                     "__typename": "FulfillmentLineItem",
                     "id": gid("FulfillmentLineItem", r.fulfillment_line.id),
                     "quantity": r.fulfillment_line.quantity,
                     "lineItem": line_item_view(r.fulfillment_line.line_item, shop.currency)}}
                for r in ret.lines if r.removed < r.quantity]  # removed lines disappear
    decline = None if ret.decline is None else {
        "__typename": "ReturnDecline", "reason": ret.decline[0], "note": ret.decline[1]}
    return {"__typename": "Return", "id": gid("Return", ret.id), "name": ret.name,
            "status": ret.status, "decline": decline,
            "totalQuantity": sum(r.quantity - r.removed for r in ret.lines),
            # An order past the 60-day window stays readable here (decision in the README,
            # "Orders older than 60 days"): only the `order` lookup by id hides it.
            "order": lambda **_: order_view(shop, shop.orders[ret.order_id]),
            "returnLineItems": connection("ReturnLineItemType", returned),
            "exchangeLineItems": connection("ExchangeLineItem", [
                exchange_line_view(e, shop.currency) for e in ret.exchanges
                if e.removed < e.quantity])}  # includeRemovedItems: false, the default


def node_view(shop: SandboxShop, value: str) -> dict | None:
    """`node(id)` / `nodes(ids)`: any object the sandbox keeps, None for an unknown id."""
    for kind, table, view in (
            ("ProductVariant", "variants", lambda o: variant_view(o)),
            ("Order", "orders", lambda o: order_view(shop, o)),
            ("Return", "returns", lambda o: return_view(shop, o)),
            ("FulfillmentOrder", "fulfillment_orders", lambda o: fulfillment_order_view(shop, o))):
        obj = shop.get(table, value, kind)
        if obj is not None:
            return view(obj)
    return None  # (a malformed id raised InvalidId above: a GraphQL error, as in Shopify)


def shop_details(store, shop: SandboxShop, args: dict) -> dict:
    number = int(hashlib.sha256(shop.domain.encode()).hexdigest()[:10], 16)
    return {"__typename": "Shop", "id": f"gid://shopify/Shop/{number}", "name": shop.name,
            "myshopifyDomain": shop.domain, "currencyCode": shop.currency,
            "ianaTimezone": "Europe/Stockholm",
            "plan": {"__typename": "ShopPlan", "shopifyPlus": shop.plus,
                     "displayName": "Shopify Plus" if shop.plus else "Basic",
                     "partnerDevelopment": False}}


def return_by_id(store, shop: SandboxShop, args: dict) -> dict | None:
    ret = shop.get("returns", args["id"], "Return")
    return return_view(shop, ret) if ret else None


def order_by_id(store, shop: SandboxShop, args: dict) -> dict | None:
    order = shop.get("orders", args["id"], "Order")
    if order is None:
        return None
    if out_of_window(store, shop, order):
        if shop.old_order_answer == "error":
            raise OutOfWindow("Not Found")
        return None
    return order_view(shop, order)


def out_of_window(store, shop: SandboxShop, order) -> bool:
    """"Only the last 60 days' worth of orders from a store are accessible from the Order object
    by default" (shopify.dev, queries/order); read_all_orders lifts the limit."""
    if "read_all_orders" in store.scopes(shop.domain):
        return False
    placed = datetime.fromisoformat(order.created_at.replace("Z", "+00:00"))
    return datetime.now(UTC) - placed > ORDER_WINDOW


def fulfillment_order_by_id(store, shop: SandboxShop, args: dict) -> dict | None:
    fo = shop.get("fulfillment_orders", args["id"], "FulfillmentOrder")
    return fulfillment_order_view(shop, fo) if fo else None


def nodes(store, shop: SandboxShop, args: dict) -> list:
    return [node_view(shop, value) for value in args["ids"]]
