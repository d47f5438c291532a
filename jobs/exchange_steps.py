"""The lifecycle's steps: create (Ongoing orders, hold), release, ship, collect, cancel.

Each step re-reads what it needs, checks before it acts (so running it twice does nothing twice),
records every outside call on the exchange's timeline and returns a short outcome.
"""
from __future__ import annotations

from datetime import date

from clients.ongoing import OngoingClient, OngoingValidationError
from clients.ongoing_accounts import client_for_shop
from jobs import exchange_shopify as shop_api
from jobs.exchange_fulfil import collect, ship
from jobs.exchange_shipping import Shipping, ship_like
from jobs.lifecycle import NeedsAttention
from models.exchange import Exchange, note, update
from models.settings import ShopSettings, settings_of
from models.types import utcnow

CANCELLED_STATUS = 1000  # Ongoing's default Cancelled: never a shipping status


def _context(exchange: Exchange) -> tuple[ShopSettings, OngoingClient]:
    settings = settings_of(exchange.shop_domain)
    if not (settings.password_set and settings.order_status_open):
        raise NeedsAttention("Swapline is not connected to Ongoing yet (Settings).")
    return settings, client_for_shop(settings)


def create(exchange: Exchange) -> str:
    """Stock check, the Ongoing exchange order at Open, the return order, Swapline's hold."""
    settings, client = _context(exchange)
    ret = shop_api.read_return(exchange.shop_domain, exchange.return_gid)
    if ret is None:
        raise NeedsAttention("Shopify no longer has this return.")
    announce = exchange.ongoing_return_order_id is None and bool(exchange.returned_items)
    if exchange.ongoing_order_id is None:
        _check_stock(exchange, client)
    # Read once, for both: the exchange ships like it, the return order refers to it.
    original = _original(exchange, client) \
        if exchange.ongoing_order_id is None or announce else None
    if exchange.ongoing_order_id is None:
        shipping = ship_like(original, settings)
        body = _order_body(exchange, settings, ret["order"], shipping)
        order_id = client.create_or_update_order(body)["orderId"]
        exchange.ongoing_order_id = order_id
        update(exchange.id, ongoing_order_id=order_id)
        note(exchange.id, "Ongoing PUT /orders", f"order {exchange.ongoing_order_number}",
              ongoing_order_id=order_id)
        note(exchange.id, "Shipping", shipping.source,
             kind="warning" if shipping.warning else "call")
    _ensure_status(exchange, client, settings.order_status_open)
    if announce:
        _create_return_order(exchange, client, settings, original)
    _hold(exchange, _processed(exchange, ret))
    return f"Ongoing order {exchange.ongoing_order_number} parked at {settings.order_status_open}"


def _processed(exchange: Exchange, ret: dict) -> dict:
    """2025-07 workflow: process the exchange items now, while the return is open (a closed
    return cannot be processed), so their fulfillment order exists and can be held."""
    if any(n["unprocessedQuantity"] > 0 for n in ret["exchangeLineItems"]["nodes"]):
        try:
            shop_api.process_exchange_items(exchange.shop_domain, ret)
        except NeedsAttention as exc:  # e.g. the return was closed first: ship tries again
            note(exchange.id, "Shopify returnProcess", f"not yet: {exc}", kind="warning")
            return ret
        note(exchange.id, "Shopify returnProcess", "exchange items processed")
        ret = shop_api.read_return(exchange.shop_domain, exchange.return_gid)
    update(exchange.id, line_item_gids=shop_api.exchange_line_item_ids(ret))
    return ret


def _check_stock(exchange: Exchange, client: OngoingClient) -> None:
    articles = {a["articleNumber"]: a for a in client.find_articles(exchange.skus)}
    for item in exchange.items:
        sellable = (articles.get(item["sku"], {}).get("inventoryInfo") or {}) \
            .get("sellableNumberOfItems", 0)
        if sellable < item["quantity"]:
            raise NeedsAttention(f"Out of stock: {item['sku']} has {sellable:g} sellable in "
                                 f"Ongoing, the exchange needs {item['quantity']}.")
    note(exchange.id, "Ongoing GET /articles", "stock ok", skus=exchange.skus)


def _order_body(exchange: Exchange, settings: ShopSettings, order: dict,
                shipping: Shipping) -> dict:
    address = order.get("shippingAddress") or {}
    consignee = {"customerNumber": shipping.customer_number} if shipping.customer_number else {}
    return {
        **shipping.fields,
        "orderNumber": exchange.ongoing_order_number,
        "deliveryDate": f"{date.today().isoformat()}T00:00:00Z",
        "goodsOwnerOrderId": exchange.return_gid, "referenceNumber": exchange.order_name,
        "warehouseId": settings.warehouse_id,
        "consignee": {**consignee, "name": address.get("name") or "Customer",
                      "address1": address.get("address1"), "address2": address.get("address2"),
                      "postCode": address.get("zip"), "city": address.get("city"),
                      "countryCode": address.get("countryCodeV2"),
                      "countryStateCode": address.get("provinceCode")},
        "emailNotification": {"toBeNotified": False, "value": order.get("email")},
        "orderLines": [{"rowNumber": str(n), "articleNumber": item["sku"],
                        "numberOfItems": item["quantity"]}
                       for n, item in enumerate(exchange.items, start=1)],
    }


def _ensure_status(exchange: Exchange, client: OngoingClient, number: int) -> None:
    current = client.get_order(exchange.ongoing_order_id)["orderInfo"]["orderStatus"]["number"]
    if current != number:
        client.set_order_status(exchange.ongoing_order_id, number)
        note(exchange.id, "Ongoing PATCH orderStatus", f"{current} → {number}")
    update(exchange.id, ongoing_status=number)


def _original(exchange: Exchange, client: OngoingClient) -> dict | None:
    """The original order in Ongoing, by the Shopify order name with or without its '#'."""
    number = exchange.order_name.lstrip("#")  # how shop integrations usually number orders
    return client.find_order_by_number(number) or \
        (client.find_order_by_number(exchange.order_name) if number != exchange.order_name
         else None)


def _create_return_order(exchange: Exchange, client: OngoingClient, settings,
                         original: dict | None) -> None:
    if original is None:
        note(exchange.id, "Ongoing return order", f"original order {exchange.order_name} not "
              "found in Ongoing; no return order announced", kind="warning")
        return
    free = {}  # sku -> [line ids], each original line consumed once
    for line in original["orderLines"]:
        free.setdefault(line["article"]["articleNumber"], []).append(line["id"])
    lines = [{"returnOrderRowNumber": str(n),
              "customerOrderLine": {"orderLineId": free[item["sku"]].pop(0)},
              "toBeReturnedNumberOfItems": item["quantity"]}
             for n, item in enumerate(exchange.returned_items, start=1)
             if free.get(item["sku"])]
    response = client.create_or_update_return_order({
        "returnOrderNumber": f"{exchange.ongoing_order_number}-R",
        "customerOrder": {"orderId": original["orderInfo"]["orderId"]},
        "warehouseId": settings.warehouse_id, "returnOrderLines": lines})
    exchange.ongoing_return_order_id = response["returnOrderId"]
    update(exchange.id, ongoing_return_order_id=response["returnOrderId"])
    status = client.get_return_order(response["returnOrderId"])["returnOrderInfo"] \
        ["returnOrderStatus"]["number"]
    if status != settings.return_status_notified:
        client.set_return_order_status(response["returnOrderId"], settings.return_status_notified)
    note(exchange.id, "Ongoing PUT /returnOrders", "announced",
          return_order_id=response["returnOrderId"])


def _hold(exchange: Exchange, ret: dict) -> None:
    fo = shop_api.open_fulfillment_order(shop_api.fulfillment_orders(
        exchange.shop_domain, exchange.order_gid, shop_api.exchange_line_item_ids(ret)))
    if fo is None:
        return
    hold_id = shop_api.hold(exchange.shop_domain, fo, f"Swapline exchange {exchange.return_name}")
    update(exchange.id, fulfillment_order_gid=fo["id"], hold_gid=hold_id)
    note(exchange.id, "Shopify fulfillmentOrderHold", "held", fulfillment_order=fo["id"])


def release(exchange: Exchange) -> str:
    """PATCH the Ongoing order to the merchant's Released code: the warehouse may pick."""
    settings, client = _context(exchange)
    client.set_order_status(exchange.ongoing_order_id, settings.order_status_released)
    note(exchange.id, "Ongoing PATCH orderStatus", f"→ {settings.order_status_released}")
    update(exchange.id, released_at=utcnow(), ongoing_status=settings.order_status_released)
    return f"Ongoing order at {settings.order_status_released}"


def cancel(exchange: Exchange) -> str:
    """Cancel the Ongoing exchange order and return order, unless picking started."""
    _, client = _context(exchange)
    try:
        if exchange.ongoing_order_id:
            client.cancel_order(exchange.ongoing_order_id)
        if exchange.ongoing_return_order_id:
            client.cancel_return_order(exchange.ongoing_return_order_id)
    except OngoingValidationError as exc:
        raise NeedsAttention(f"Ongoing refused the cancellation: {exc.message}") from None
    return "Ongoing orders cancelled"


def shipped_status(settings: ShopSettings, number: int | None) -> bool:
    """The merchant's Sent code or any later shipping status (never Cancelled)."""
    return number is not None and settings.order_status_sent is not None and \
        settings.order_status_sent <= number < CANCELLED_STATUS

STEPS = {"create": create, "release": release, "ship": ship, "collect": collect,
         "cancel": cancel}
