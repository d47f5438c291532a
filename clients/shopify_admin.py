"""The Admin API's business calls for an exchange: read the return, find and hold its
fulfillment order, process, fulfil, and collect the balance.

Every mutation's `userErrors` raise ShopifyUserError; an order Shopify will not give raises
ShopifyOrderUnavailable. Both are ShopifyRefusal: the lifecycle (jobs/) shows their message as
the reason an exchange needs attention."""
from __future__ import annotations

import threading
from decimal import Decimal

from clients.deps import job_run
from clients.shopify import shopify
from clients.shopify_errors import (
    ShopifyGraphQLError,
    ShopifyOrderUnavailable,
    ShopifyProtectedData,
    ShopifyUserError,
)
from clients.shopify_pages import chunks, read_on
from models import db
from models.shop import shop_grants

HOLD_HANDLE = "swapline-exchange"
DONE_FO_STATUSES = ("CLOSED", "CANCELLED", "INCOMPLETE")
OLD_ORDER = ("Shopify lets Swapline read only the last 60 days of orders, and this exchange's "
             "order is older. Approve 'All orders' access (read_all_orders) for Swapline by "
             "opening Swapline in Shopify admin, then press Retry.")
MISSING_ORDER = ("Shopify did not give Swapline this exchange's order although Swapline may read "
                 "all orders (it may have been deleted); check the order in Shopify admin, then "
                 "press Retry.")

WITHHELD = ("Shopify withholds the customer's address from Swapline: the app needs Protected "
            "customer data (Level 2: name, address, email, phone) approved in the Partner "
            "Dashboard (API access requests → Protected customer data access)")
WITHHELD_ORDER = (f"{WITHHELD}, and without it Shopify refuses this return's order altogether. "
                  "Once it is approved, press Retry.")


def _mutate(domain: str, document: str, variables: dict, field: str) -> dict:
    data = shopify().graphql(domain, document, variables)[field] or {}
    errors = data.get("userErrors") or []
    if errors:
        raise ShopifyUserError(field, [e["message"] for e in errors])
    return data


def _order(domain: str, document: str, variables: dict) -> dict:
    """`data.order` of an order read. An order Shopify withholds is unavailable: past the
    60-day window without read_all_orders Shopify answers either `order: null` or an error on
    `order` (both reported, neither documented), so both mean the same here."""
    try:
        order = shopify().graphql(domain, document, variables)["order"]
    except ShopifyGraphQLError as exc:
        if ("order",) not in exc.paths:
            raise
        raise order_unreadable(domain) from exc
    if order is None:
        raise order_unreadable(domain)
    return order


def order_unreadable(domain: str) -> ShopifyOrderUnavailable:
    """Why Shopify gave no order: the 60-day window unless the shop grants read_all_orders."""
    with db.session() as s:
        every_order = shop_grants(domain, "read_all_orders", session=s)
    return ShopifyOrderUnavailable(MISSING_ORDER if every_order else OLD_ORDER)


def read_return(domain: str, return_gid: str, *, hand_over: bool = False) -> dict | None:
    """The return as Shopify has it now (status, order, every exchange and returned item).

    `hand_over` (detection): the next read of the same return in the same job run gets this
    read instead of a second call, once. Detection applies the create step it records in its
    own job, milliseconds later and under the exchange's lock; any other read, a later job or a
    retry (a new run) asks Shopify."""
    kept, _HANDED.read = getattr(_HANDED, "read", None), None
    run = job_run()
    if kept is not None and run is not None and kept[0] == (run, domain, return_gid):
        return kept[1]
    ret = _read_return(domain, return_gid)
    if hand_over and run is not None and ret is not None:
        _HANDED.read = ((run, domain, return_gid), ret)
    return ret


# The read detection hands to the next read of its return in the same job run (one per thread).
_HANDED = threading.local()


def _read_return(domain: str, return_gid: str) -> dict | None:
    try:
        ret = shopify().graphql(domain, "ReturnForExchange", {"id": return_gid})["return"]
    except ShopifyProtectedData as exc:
        ret = _without_customer_data(exc)
    except ShopifyGraphQLError as exc:  # should Shopify hide an old order here too (Return.order
        if ("return", "order") not in exc.paths:  # is non-null, so the whole return goes)
            raise
        raise order_unreadable(domain) from exc
    for field, document in (("exchangeLineItems", "ReturnExchangeLineItems"),
                            ("returnLineItems", "ReturnReturnLineItems")):
        if ret is not None:
            ret[field] = read_on(domain, document, {"id": return_gid},
                                 lambda data, f=field: data["return"][f], ret[field])
    return ret


def _without_customer_data(exc: ShopifyProtectedData) -> dict:
    """The return with the customer's fields Shopify withheld left null, flagged for create;
    unavailable when Shopify refused its whole order (the return goes with it)."""
    ret = exc.data.get("return")
    if not ret or not ret.get("order"):
        raise ShopifyOrderUnavailable(WITHHELD_ORDER, code="PROTECTED_CUSTOMER_DATA") from exc
    ret["order"]["customerDataWithheld"] = True
    return ret


def variants(domain: str, ids: list[str]) -> dict[str, dict]:
    """SKU, price and name of the exchange variants, by id."""
    found = {}
    for part in chunks(list(dict.fromkeys(ids))):
        nodes = shopify().graphql(domain, "VariantsForExchange", {"ids": part})["nodes"]
        found.update({node["id"]: node for node in nodes if node})
    return found


def exchange_line_item_ids(ret: dict) -> list[str]:
    """Order line items the exchange items became (empty until processed, 2025-07 workflow)."""
    return [li["id"] for node in ret["exchangeLineItems"]["nodes"] for li in node["lineItems"]]


def fulfillment_orders(domain: str, order_gid: str, line_item_ids: list[str]) -> list[dict]:
    """The order's fulfillment orders that hold any of these line items."""
    wanted = set(line_item_ids)
    return [fo for fo in _all_fulfillment_orders(domain, order_gid)
            if any(n["lineItem"]["id"] in wanted for n in fo["lineItems"]["nodes"])]


def _all_fulfillment_orders(domain: str, order_gid: str) -> list[dict]:
    """Every fulfillment order of the order with every line item, page by page."""
    variables: dict = {"id": order_gid}
    found = []
    while True:
        page = _order(domain, "OrderFulfillmentOrders", variables)["fulfillmentOrders"]
        found += [_with_every_line(domain, fo) for fo in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        variables = {"id": order_gid, "after": page["pageInfo"]["endCursor"]}


def _with_every_line(domain: str, fo: dict) -> dict:
    lines = read_on(domain, "FulfillmentOrderLineItems", {"id": fo["id"]},
                    lambda data: data["fulfillmentOrder"]["lineItems"], fo["lineItems"])
    return {**fo, "lineItems": lines}


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
    for part in chunks(hold_ids):  # never an empty list: Shopify would release every hold
        data = _mutate(domain, "FulfillmentOrderReleaseHold", {"id": fo["id"], "holdIds": part},
                       "fulfillmentOrderReleaseHold")
        fo = {**fo, **data["fulfillmentOrder"]}
    return fo


def process_exchange_items(domain: str, ret: dict) -> dict:
    """Process the unprocessed exchange items (2025-07 workflow): their FO appears. Returns `ret`
    with its exchange items as the last returnProcess left them (every page), order line items
    included: no second read of the return."""
    items = [{"id": n["id"], "quantity": n["unprocessedQuantity"]}
             for n in ret["exchangeLineItems"]["nodes"] if n["unprocessedQuantity"] > 0]
    if not items:
        return ret
    for part in chunks(items):
        processed = _mutate(domain, "ReturnProcessExchange", {"input": {
            "returnId": ret["id"], "exchangeLineItems": part, "notifyCustomer": False}},
            "returnProcess").get("return")
    if processed is None:  # a null returnProcess without userErrors: ask for the return
        return _read_return(domain, ret["id"]) or ret
    return {**ret, "exchangeLineItems": read_on(
        domain, "ReturnExchangeLineItems", {"id": ret["id"]},
        lambda data: data["return"]["exchangeLineItems"], processed["exchangeLineItems"])}


def fulfil(domain: str, fo: dict, line_item_ids: list[str], tracking: dict,
           notify: bool) -> dict:
    """fulfillmentCreate for the exchange lines of one fulfillment order, with tracking.

    Over 250 lines it takes one fulfillment per 250 (Shopify's input cap); the first is returned.
    """
    wanted = set(line_item_ids)
    lines = [{"id": n["id"], "quantity": n["remainingQuantity"]} for n in fo["lineItems"]["nodes"]
             if n["lineItem"]["id"] in wanted and n["remainingQuantity"] > 0]
    info = {k: v for k, v in tracking.items() if v}
    made = [_mutate(domain, "FulfillmentCreate", {"fulfillment": {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"],
                                         "fulfillmentOrderLineItems": part}],
        "trackingInfo": info, "notifyCustomer": notify}}, "fulfillmentCreate")["fulfillment"]
        for part in list(chunks(lines)) or [lines]]
    return made[0]


def order_payment(domain: str, order_gid: str) -> dict:
    return _order(domain, "OrderPayment", {"id": order_gid})


def vaulted_cards(domain: str, order_gid: str) -> list[str]:
    """Ids of the order's vaulted payment methods (needs read_payment_mandate)."""
    order = _order(domain, "OrderVaultedPaymentMethods", {"id": order_gid})
    details = order.get("paymentCollectionDetails") or {}
    return [m["id"] for m in details.get("vaultedPaymentMethods") or []]


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


def add_tags(domain: str, order_gid: str, tags: list[str]) -> None:
    """tagsAdd on the order (Shopify keeps a tag once, whatever its case: safe to repeat)."""
    _mutate(domain, "TagsAdd", {"id": order_gid, "tags": tags}, "tagsAdd")
