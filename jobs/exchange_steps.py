"""The lifecycle's steps before the parcel leaves: create (Ongoing orders, tag, hold), release
(after the connector check), cancel, amend, withdraw (fulfil and collect have their own modules).

Each step re-reads what it needs, checks before it acts (so running it twice does nothing twice),
records every outside call on the exchange's timeline and returns a short outcome. A step's
consecutive Ongoing calls run in one `serial` block: the goods owner's lock is taken once for
them, and never held across a Shopify call.
"""
from __future__ import annotations

from datetime import date

from clients import shopify_admin as shop_api
from clients.ongoing import OngoingClient, OngoingValidationError
from clients.ongoing_accounts import client_for_shop, serial
from clients.shopify_errors import ShopifyUserError
from jobs.exchange_address import Consignee, consignee_for
from jobs.exchange_fulfil import no_fulfillment_order
from jobs.exchange_guard import check_before_release, tag_order
from jobs.exchange_items import changed, current_items, describe, order_lines
from jobs.exchange_rules import EXCHANGE_REMOVED, NeedsAttention, Then
from jobs.exchange_shipping import Shipping, ship_like
from models.exchange import Exchange
from models.exchange_writes import note, stage, together, update
from models.settings import ShopSettings, settings_of
from models.types import utcnow


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
    with serial(client):  # up to six Ongoing calls in a row, local writes between
        _park(exchange, client, settings, ret)
    # Tagged before returnProcess makes the exchange's fulfillment order: a connector polling
    # Shopify should see the tag no later than the new lines.
    tag_order(exchange, settings)
    _hold(exchange, _processed(exchange, ret))
    return f"Ongoing order {exchange.ongoing_order_number} parked at {settings.order_status_open}"


def _park(exchange: Exchange, client: OngoingClient, settings: ShopSettings, ret: dict) -> None:
    """The Ongoing side of create: stock check, the exchange order at Open, the return order."""
    announce = exchange.ongoing_return_order_id is None and bool(exchange.returned_items)
    if exchange.ongoing_order_id is None:
        _refresh_items(exchange, ret)
        _check_stock(exchange, client)
    # Read once, for both: the exchange ships like it, the return order refers to it.
    original = _original(exchange, client) \
        if exchange.ongoing_order_id is None or announce else None
    if exchange.ongoing_order_id is None:
        shipping = ship_like(original, settings)
        to = consignee_for(ret["order"], original, exchange.order_name)
        body = _order_body(exchange, settings, to, ret["order"].get("email"), shipping)
        order_id = client.create_or_update_order(body)["orderId"]
        exchange.ongoing_order_id = order_id
        with together(exchange.id):  # the order's id, and how it ships, in one write
            note(exchange.id, "Ongoing PUT /orders", f"order {exchange.ongoing_order_number}",
                 saving={"ongoing_order_id": order_id}, ongoing_order_id=order_id)
            note(exchange.id, "Shipping", shipping.source,
                 kind="warning" if shipping.warning else "call")
            if to.source:
                note(exchange.id, "Consignee", to.source, kind="warning")
    _ensure_status(exchange, client, settings.order_status_open)
    if announce:
        _create_return_order(exchange, client, settings, original)


def _processed(exchange: Exchange, ret: dict) -> dict:
    """2025-07 workflow: process the exchange items now, while the return is open (a closed
    return cannot be processed), so their fulfillment order exists and can be held."""
    if any(n["unprocessedQuantity"] > 0 for n in ret["exchangeLineItems"]["nodes"]):
        try:
            ret = shop_api.process_exchange_items(exchange.shop_domain, ret)
        except ShopifyUserError as exc:  # e.g. the return was closed first: fulfil tries again
            note(exchange.id, "Shopify returnProcess", f"not yet: {exc}", kind="warning")
            return ret
        note(exchange.id, "Shopify returnProcess", "exchange items processed", now=True)
    stage(exchange.id, line_item_gids=shop_api.exchange_line_item_ids(ret))
    return ret


def _refresh_items(exchange: Exchange, ret: dict) -> None:
    """Send Ongoing what the return asks for now (it may have been edited since detection)."""
    items = current_items(exchange.items, ret)
    if not items:
        raise NeedsAttention("The return has no exchange items any more (removed in Shopify).")
    if changed(exchange.items, items):
        note(exchange.id, "Shopify return edited", f"exchange items now {describe(items)}",
             saving={"items": items})
    exchange.items = items


def _check_stock(exchange: Exchange, client: OngoingClient) -> None:
    articles = {a["articleNumber"]: a for a in client.find_articles(exchange.skus)}
    needed: dict[str, int] = {}  # one variant may be on several exchange lines
    for item in exchange.items:
        needed[item["sku"]] = needed.get(item["sku"], 0) + item["quantity"]
    for sku, quantity in needed.items():
        sellable = (articles.get(sku, {}).get("inventoryInfo") or {}) \
            .get("sellableNumberOfItems", 0)
        if sellable < quantity:
            raise NeedsAttention(f"Out of stock: {sku} has {sellable:g} sellable in "
                                 f"Ongoing, the exchange needs {quantity}.")
    note(exchange.id, "Ongoing GET /articles", "stock ok", skus=exchange.skus)


def _order_body(exchange: Exchange, settings: ShopSettings, to: Consignee, email: str | None,
                shipping: Shipping, before: list[dict] = ()) -> dict:
    consignee = {"customerNumber": shipping.customer_number} if shipping.customer_number else {}
    # Without Level 2 approval Shopify gives no email: the order simply carries no notification.
    notify = {"emailNotification": {"toBeNotified": False, "value": email}} if email else {}
    return {
        **shipping.fields,
        "orderNumber": exchange.ongoing_order_number,
        "deliveryDate": f"{date.today().isoformat()}T00:00:00Z",
        "goodsOwnerOrderId": exchange.return_gid, "referenceNumber": exchange.order_name,
        "warehouseId": settings.warehouse_id,
        "consignee": {**consignee, **to.fields}, **notify,
        "orderLines": order_lines(exchange.items, before),
    }


def _ensure_status(exchange: Exchange, client: OngoingClient, number: int) -> None:
    current = client.get_order(exchange.ongoing_order_id)["orderInfo"]["orderStatus"]["number"]
    if current != number:
        client.set_order_status(exchange.ongoing_order_id, number)
        note(exchange.id, "Ongoing PATCH orderStatus", f"{current} → {number}",
             saving={"ongoing_status": number})
    else:
        stage(exchange.id, ongoing_status=number)


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
    note(exchange.id, "Ongoing PUT /returnOrders", "announced", now=True,
         return_order_id=response["returnOrderId"])


def _hold(exchange: Exchange, ret: dict) -> None:
    fos = shop_api.fulfillment_orders(exchange.shop_domain, exchange.order_gid,
                                      shop_api.exchange_line_item_ids(ret))
    fo = shop_api.open_fulfillment_order(fos)
    if fo is None:
        nodes = ret["exchangeLineItems"]["nodes"]
        if not fos and nodes and all(n["unprocessedQuantity"] == 0 for n in nodes):
            raise no_fulfillment_order(exchange)  # processed, yet Shopify made none
        return
    hold_id = shop_api.hold(exchange.shop_domain, fo, f"Swapline exchange {exchange.return_name}")
    note(exchange.id, "Shopify fulfillmentOrderHold", "held", fulfillment_order=fo["id"],
         saving={"fulfillment_order_gid": fo["id"], "hold_gid": hold_id})


def release(exchange: Exchange) -> str:
    """PATCH the Ongoing order to the merchant's Released code: the warehouse may pick; not
    while Ongoing holds another open order of the same customer and item (exchange_guard)."""
    settings, client = _context(exchange)
    with serial(client):  # the check's calls, then the PATCH
        check_before_release(exchange, client, settings)
        client.set_order_status(exchange.ongoing_order_id, settings.order_status_released)
    note(exchange.id, "Ongoing PATCH orderStatus", f"→ {settings.order_status_released}",
         saving={"released_at": utcnow(), "ongoing_status": settings.order_status_released})
    return f"Ongoing order at {settings.order_status_released}"


def cancel(exchange: Exchange) -> str:
    """Cancel the Ongoing exchange order and return order, unless picking started."""
    _, client = _context(exchange)
    try:
        with serial(client):
            if exchange.ongoing_order_id:
                client.cancel_order(exchange.ongoing_order_id)
            if exchange.ongoing_return_order_id:
                client.cancel_return_order(exchange.ongoing_return_order_id)
    except OngoingValidationError as exc:
        raise NeedsAttention(f"Ongoing refused the cancellation: {exc.message}") from None
    return "Ongoing orders cancelled"


def amend(exchange: Exchange) -> str | Then:
    """The return was edited (returns/update): change the Ongoing order to its exchange items."""
    ret = shop_api.read_return(exchange.shop_domain, exchange.return_gid)
    if ret is None:
        raise NeedsAttention("Shopify no longer has this return.")
    items = current_items(exchange.items, ret)
    if not changed(exchange.items, items):
        return "exchange items unchanged"
    if not items:  # its own event, so the table says where it leads (cancelled)
        return Then("no exchange items left on the return", EXCHANGE_REMOVED)
    if exchange.ongoing_order_id is not None:
        _change_order(exchange, ret, items)
    note(exchange.id, "Shopify return edited", f"exchange items now {describe(items)}",
         saving={"items": items})
    return f"exchange items now {describe(items)}"


def _change_order(exchange: Exchange, ret: dict, items: list[dict]) -> None:
    """PUT the same orderNumber with the new lines (Ongoing updates it), status kept."""
    settings, client = _context(exchange)
    with serial(client):  # reads, the PUT and the status check in a row
        status = _not_started(exchange, client, settings, f"now {describe(items)}")
        # A PUT replaces the order: send the carrier, pickup point and customer number it has.
        current = client.get_order(exchange.ongoing_order_id)
        shipping = ship_like(current, settings)
        # ... and the address it ships to now, should Shopify withhold the customer's.
        to = consignee_for(ret["order"], current, exchange.order_name)
        before, exchange.items = exchange.items, items
        try:
            client.create_or_update_order(_order_body(
                exchange, settings, to, ret["order"].get("email"), shipping, before))
        except OngoingValidationError as exc:
            raise NeedsAttention(
                f"The exchange items changed in Shopify (now {describe(items)}) but Ongoing "
                f"refused to change order {exchange.ongoing_order_number}: {exc.message}"
            ) from None
        note(exchange.id, "Ongoing PUT /orders", f"lines now {describe(items)}")
        _ensure_status(exchange, client, status)  # an update must not move the order


def _not_started(exchange: Exchange, client: OngoingClient, settings: ShopSettings,
                 change: str) -> int:
    """The Ongoing order's status, if the warehouse has not started on it (above Released it
    may be picked: Ongoing refuses changes then, and a change would miss the parcel anyway)."""
    status = client.get_order(exchange.ongoing_order_id)["orderInfo"]["orderStatus"]["number"]
    if status > (settings.order_status_released or settings.order_status_open):
        raise NeedsAttention(f"The exchange items changed in Shopify ({change}) after the "
                             f"warehouse started on order {exchange.ongoing_order_number} (Ongoing "
                             f"status {status}): change or stop it in Ongoing, then Retry.")
    return status


def withdraw(exchange: Exchange) -> str:
    """No exchange item is left on the return: cancel the Ongoing exchange order. The return
    order stays: the customer still sends the parcel back."""
    if exchange.ongoing_order_id is None:
        return "nothing in Ongoing yet"
    settings, client = _context(exchange)
    with serial(client):  # the status read, then the DELETE
        _not_started(exchange, client, settings, "none left")
        try:
            client.cancel_order(exchange.ongoing_order_id)
        except OngoingValidationError as exc:
            raise NeedsAttention(f"The exchange items were removed in Shopify but Ongoing "
                                 f"refused the cancellation: {exc.message}") from None
    note(exchange.id, "Ongoing DELETE /orders", f"order {exchange.ongoing_order_number} cancelled",
         now=True)  # a change in Ongoing a re-run does not repeat: its line is written at once
    return "Ongoing exchange order cancelled; the return order stays"
