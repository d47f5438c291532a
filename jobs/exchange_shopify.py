"""The Shopify side of an exchange: read the return, find and hold its fulfillment order,
process, fulfil, and collect the balance. Every mutation's userErrors become NeedsAttention."""
from __future__ import annotations

from decimal import Decimal

from clients.shopify import shopify
from jobs.lifecycle import NeedsAttention

HOLD_HANDLE = "swapline-exchange"
DONE_FO_STATUSES = ("CLOSED", "CANCELLED", "INCOMPLETE")


def _mutate(domain: str, document: str, variables: dict, field: str) -> dict:
    data = shopify().graphql(domain, document, variables)[field] or {}
    errors = data.get("userErrors") or []
    if errors:
        raise NeedsAttention(f"Shopify {field}: " + "; ".join(e["message"] for e in errors))
    return data


def read_return(domain: str, return_gid: str) -> dict | None:
    """The return as Shopify has it now (status, order, exchange and returned items)."""
    return shopify().graphql(domain, "ReturnForExchange", {"id": return_gid})["return"]


def variants(domain: str, ids: list[str]) -> dict[str, dict]:
    """SKU, price and name of the exchange variants, by id."""
    nodes = shopify().graphql(domain, "VariantsForExchange", {"ids": ids})["nodes"]
    return {node["id"]: node for node in nodes if node}


def exchange_line_item_ids(ret: dict) -> list[str]:
    """Order line items the exchange items became (empty until processed, 2025-07 workflow)."""
    return [li["id"] for node in ret["exchangeLineItems"]["nodes"] for li in node["lineItems"]]


def fulfillment_orders(domain: str, order_gid: str, line_item_ids: list[str]) -> list[dict]:
    """The order's fulfillment orders that hold any of these line items."""
    order = shopify().graphql(domain, "OrderFulfillmentOrders", {"id": order_gid})["order"]
    wanted = set(line_item_ids)
    return [fo for fo in (order or {}).get("fulfillmentOrders", {}).get("nodes", [])
            if any(n["lineItem"]["id"] in wanted for n in fo["lineItems"]["nodes"])]


def open_fulfillment_order(fos: list[dict]) -> dict | None:
    """The one still to fulfil (not closed, something remaining)."""
    for fo in fos:
        if fo["status"] not in DONE_FO_STATUSES and \
                any(n["remainingQuantity"] > 0 for n in fo["lineItems"]["nodes"]):
            return fo
    return None


def own_holds(fo: dict) -> list[dict]:
    return [h for h in fo["fulfillmentHolds"]
            if h["heldByRequestingApp"] and h.get("handle") == HOLD_HANDLE]


def hold(domain: str, fo: dict, note: str) -> str:
    """Put Swapline's hold on the fulfillment order (once); its hold id."""
    existing = own_holds(fo)
    if existing:
        return existing[0]["id"]
    data = _mutate(domain, "FulfillmentOrderHold", {"id": fo["id"], "hold": {
        "reason": "OTHER", "reasonNotes": note, "handle": HOLD_HANDLE, "notifyMerchant": False}},
        "fulfillmentOrderHold")
    return data["fulfillmentHold"]["id"]


def release_holds(domain: str, fo: dict, hold_ids: list[str]) -> dict:
    """Release exactly these holds (never all of them); the FO as it is afterwards."""
    data = _mutate(domain, "FulfillmentOrderReleaseHold", {"id": fo["id"], "holdIds": hold_ids},
                   "fulfillmentOrderReleaseHold")
    return {**fo, **data["fulfillmentOrder"]}


def process_exchange_items(domain: str, ret: dict) -> None:
    """Process the unprocessed exchange items (2025-07 workflow): their FO appears."""
    items = [{"id": n["id"], "quantity": n["unprocessedQuantity"]}
             for n in ret["exchangeLineItems"]["nodes"] if n["unprocessedQuantity"] > 0]
    if items:
        _mutate(domain, "ReturnProcessExchange", {"input": {
            "returnId": ret["id"], "exchangeLineItems": items, "notifyCustomer": False}},
            "returnProcess")


def fulfil(domain: str, fo: dict, line_item_ids: list[str], tracking: dict,
           notify: bool) -> dict:
    """fulfillmentCreate for the exchange lines of one fulfillment order, with tracking."""
    wanted = set(line_item_ids)
    lines = [{"id": n["id"], "quantity": n["remainingQuantity"]} for n in fo["lineItems"]["nodes"]
             if n["lineItem"]["id"] in wanted and n["remainingQuantity"] > 0]
    info = {k: v for k, v in tracking.items() if v}
    data = _mutate(domain, "FulfillmentCreate", {"fulfillment": {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"],
                                         "fulfillmentOrderLineItems": lines}],
        "trackingInfo": info, "notifyCustomer": notify}}, "fulfillmentCreate")
    return data["fulfillment"]


def order_payment(domain: str, order_gid: str) -> dict:
    return shopify().graphql(domain, "OrderPayment", {"id": order_gid})["order"]


def outstanding(payment: dict) -> tuple[Decimal, str]:
    money = payment["totalOutstandingSet"]["presentmentMoney"]
    return Decimal(money["amount"]), money["currencyCode"]


def open_authorization(payment: dict) -> tuple[dict, Decimal] | None:
    """An authorization with money left to capture."""
    for tx in payment["transactions"]:
        unsettled = Decimal(((tx.get("totalUnsettledSet") or {}).get("presentmentMoney")
                             or {}).get("amount") or "0")
        if tx["kind"] == "AUTHORIZATION" and tx["status"] == "SUCCESS" and unsettled > 0:
            return tx, unsettled
    return None


def capture(domain: str, order_gid: str, parent_id: str, amount: Decimal, currency: str) -> dict:
    data = _mutate(domain, "OrderCapture", {"input": {
        "id": order_gid, "parentTransactionId": parent_id, "amount": str(amount),
        "currency": currency}}, "orderCapture")
    return data["transaction"]


def charge_mandate(domain: str, order_gid: str, mandate_id: str, key: str, amount: Decimal,
                   currency: str) -> dict:
    return _mutate(domain, "OrderCreateMandatePayment", {
        "id": order_gid, "mandateId": mandate_id, "idempotencyKey": key,
        "amount": {"amount": str(amount), "currencyCode": currency}}, "orderCreateMandatePayment")


def send_invoice(domain: str, order_gid: str) -> None:
    _mutate(domain, "OrderInvoiceSend", {"id": order_gid}, "orderInvoiceSend")
