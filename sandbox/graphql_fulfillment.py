"""Mutations on fulfillment orders and returns: holds, releases, returnProcess, fulfillmentCreate.

Every check runs before anything changes, so a call with userErrors leaves the shop untouched.
- fulfillmentOrderHold: the requesting app's hold (heldByRequestingApp true); refused on a closed,
  cancelled or incomplete FO, for a handle the app already uses there, beyond 10 app holds, and
  for line-item holds (Shopify splits the FO; the sandbox does not).
- fulfillmentOrderReleaseHold: exactly the given holdIds (an unknown one is a userError; omitted
  or empty releases all, Shopify's dangerous default); no holds left -> the FO opens again.
- returnProcess: exchange quantities up to what is unprocessed -> order line items on a new FO.
- fulfillmentCreate: refused on FOs that are ON_HOLD, closed, assigned to another fulfillment
  service (no CREATE_FULFILLMENT) or short of the quantities; an FO with nothing left closes.
"""
from __future__ import annotations

from sandbox.graphql_views import fulfillment_order_view, fulfillment_view, hold_view, return_view
from sandbox.shopify_store import (
    Fulfillment,
    FulfillmentLine,
    Hold,
    Refused,
    next_id,
    parse_gid,
    process_exchanges,
)

MAX_APP_HOLDS = 10
HOLDABLE = ("OPEN", "IN_PROGRESS", "ON_HOLD", "SCHEDULED")


def user_error(message: str, field: list[str] | None, code: str | None = None) -> dict:
    return {"__typename": "UserError", "field": field, "message": message, "code": code}


def hold(store, shop, args: dict) -> dict:
    fo = shop.get("fulfillment_orders", args["id"], "FulfillmentOrder")
    given = args["fulfillmentHold"]
    handle = given.get("handle") or ""
    app_holds = [h for h in fo.holds if h.by_app] if fo else []
    problem = (
        ("Fulfillment order does not exist.", ["id"], "FULFILLMENT_ORDER_NOT_FOUND")
        if fo is None else
        (f"Fulfillment order is {fo.status.lower()} and cannot be held.", ["id"], None)
        if fo.status not in HOLDABLE else
        ("The fulfillment order is not splittable.", ["fulfillmentHold",
         "fulfillmentOrderLineItems"], "FULFILLMENT_ORDER_NOT_SPLITTABLE")
        if given.get("fulfillmentOrderLineItems") and fo.status == "ON_HOLD" else
        ("Handle is too long (maximum is 64 characters).", ["fulfillmentHold", "handle"], None)
        if len(handle) > 64 else
        (f"The handle {handle!r} is already used by this app's hold on this fulfillment order.",
         ["fulfillmentHold", "handle"], "DUPLICATE_FULFILLMENT_HOLD_HANDLE")
        if any(h.handle == handle for h in app_holds) else
        ("The maximum number of fulfillment holds for this fulfillment order has been reached "
         "for this app.", ["id"], "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED")
        if len(app_holds) >= MAX_APP_HOLDS else None)
    if not problem and given.get("fulfillmentOrderLineItems"):
        raise Refused("the sandbox does not split fulfillment orders (line-item holds)")
    if problem:
        return {"fulfillmentHold": None, "fulfillmentOrder": None,
                "remainingFulfillmentOrder": None, "userErrors": [user_error(*problem)]}
    new = Hold(next_id(), given["reason"], handle, by_app=True, notes=given.get("reasonNotes"))
    fo.holds.append(new)
    fo.status = "ON_HOLD"
    return {"fulfillmentHold": hold_view(new), "remainingFulfillmentOrder": None,
            "fulfillmentOrder": fulfillment_order_view(shop, fo), "userErrors": []}


def release_hold(store, shop, args: dict) -> dict:
    fo = shop.get("fulfillment_orders", args["id"], "FulfillmentOrder")
    if fo is None:
        return {"fulfillmentOrder": None, "userErrors": [user_error(
            "Fulfillment order does not exist.", ["id"], "FULFILLMENT_ORDER_NOT_FOUND")]}
    wanted = [parse_gid(value, "FulfillmentHold") for value in args.get("holdIds") or []]
    known = {h.id for h in fo.holds}
    for index, number in enumerate(wanted):
        if number not in known:
            return {"fulfillmentOrder": None, "userErrors": [user_error(
                f"Fulfillment hold {args['holdIds'][index]} does not exist on this fulfillment "
                "order.", ["holdIds", str(index)], None)]}
    fo.holds = [h for h in fo.holds if wanted and h.id not in wanted]
    fo.reopen_if_free()
    return {"fulfillmentOrder": fulfillment_order_view(shop, fo), "userErrors": []}


def return_process(store, shop, args: dict) -> dict:
    given = args["input"]
    if given.get("financialTransfer") or given.get("refundShipping") or given.get("refundDuties"):
        raise Refused("the sandbox's returnProcess does not refund (financialTransfer, "
                      "refundShipping, refundDuties)")
    ret = shop.get("returns", given["returnId"], "Return")
    problem = _process_problem(ret, given)
    if problem:
        return {"return": None, "userErrors": [user_error(*problem)]}
    for item in given.get("returnLineItems") or []:
        line = next(r for r in ret.lines if r.id == parse_gid(item["id"], "ReturnLineItem"))
        line.processed += item["quantity"]
    quantities = {parse_gid(i["id"], "ExchangeLineItem"): i["quantity"]
                  for i in given.get("exchangeLineItems") or []}
    if quantities:
        process_exchanges(shop, ret, quantities)
    ret.processed_by_api = True
    return {"return": return_view(shop, ret), "userErrors": []}


def _process_problem(ret, given: dict) -> tuple | None:
    if ret is None:
        return "Return does not exist.", ["input", "returnId"], "NOT_FOUND"
    if ret.status != "OPEN":
        return f"Return is {ret.status.lower()} and cannot be processed.", \
            ["input", "returnId"], "INVALID_STATE"
    exchange, returned = given.get("exchangeLineItems") or [], given.get("returnLineItems") or []
    if not exchange and not returned:
        return "Nothing to process.", ["input"], "BLANK"
    for key, kind, items, lines in (("exchangeLineItems", "ExchangeLineItem", exchange,
                                     ret.exchanges),
                                    ("returnLineItems", "ReturnLineItem", returned, ret.lines)):
        seen = set()
        for index, item in enumerate(items):
            path = ["input", key, str(index)]
            line = next((x for x in lines if x.id == parse_gid(item["id"], kind)), None)
            if line is None or line.id in seen:
                return f"{kind} {item['id']} is not on this return (or given twice).", \
                    path + ["id"], "NOT_FOUND"
            seen.add(line.id)
            if item["quantity"] <= 0:
                return "Quantity must be greater than 0.", path + ["quantity"], "GREATER_THAN"
            if item["quantity"] > line.unprocessed():
                return (f"Quantity {item['quantity']} exceeds the unprocessed quantity "
                        f"{line.unprocessed()}.", path + ["quantity"],
                        "LESS_THAN_OR_EQUAL_TO")
    return None


def fulfillment_create(store, shop, args: dict) -> dict:
    given = args["fulfillment"]
    plan, problem = _fulfillment_plan(shop, given.get("lineItemsByFulfillmentOrder") or [])
    tracking, tracking_problem = _tracking(given.get("trackingInfo") or {})
    if problem or tracking_problem:
        return {"fulfillment": None, "userErrors": [user_error(*(problem or tracking_problem))]}
    lines = []
    for fo, quantities in plan:
        for line, quantity in quantities:
            line.remaining -= quantity
            lines.append(FulfillmentLine(next_id(), line.line_item, quantity))
        fo.status = "CLOSED" if all(x.remaining == 0 for x in fo.lines) else "IN_PROGRESS"
    order = shop.orders[plan[0][0].order_id]
    fulfillment = Fulfillment(next_id(), order.id, lines, tracking,
                              notify_customer=bool(given.get("notifyCustomer")),
                              message=args.get("message"))
    order.fulfillments.append(fulfillment)
    return {"fulfillment": fulfillment_view(shop, fulfillment), "userErrors": []}


def _fulfillment_plan(shop, groups: list[dict]) -> tuple[list, tuple | None]:
    """[(fo, [(fo line, quantity)])] for the request, or the first userError."""
    plan, base = [], ["fulfillment", "lineItemsByFulfillmentOrder"]
    if not groups:
        return plan, ("At least one fulfillment order is required.", base)
    for index, group in enumerate(groups):
        path = base + [str(index)]
        fo = shop.get("fulfillment_orders", group["fulfillmentOrderId"], "FulfillmentOrder")
        if fo is None:
            return plan, ("Fulfillment order does not exist.", path + ["fulfillmentOrderId"])
        if "CREATE_FULFILLMENT" not in fo.actions():
            reason = ("is assigned to another fulfillment service's location; this app cannot "
                      "create fulfillments for it") if fo.status in ("OPEN", "IN_PROGRESS") else \
                f"has an unfulfillable status= {fo.status.lower()}"
            return plan, (f"Fulfillment order {group['fulfillmentOrderId']} {reason}.",
                          path + ["fulfillmentOrderId"])
        requested = group.get("fulfillmentOrderLineItems") or [
            {"id": line.id, "quantity": line.remaining} for line in fo.lines if line.remaining]
        quantities = []
        for j, item in enumerate(requested):
            number = parse_gid(item["id"], "FulfillmentOrderLineItem")
            line = next((x for x in fo.lines if x.id == number), None)
            if line is None or any(q[0] is line for q in quantities):
                return plan, ("Fulfillment order line item does not exist on this fulfillment "
                              "order (or is given twice).", path + ["fulfillmentOrderLineItems",
                                                                   str(j), "id"])
            if not 0 < item["quantity"] <= line.remaining:
                return plan, (f"Invalid quantity {item['quantity']}: {line.remaining} remain to "
                              "be fulfilled.", path + ["fulfillmentOrderLineItems", str(j),
                                                       "quantity"])
            quantities.append((line, item["quantity"]))
        plan.append((fo, quantities))
    if len({fo.order_id for fo, _ in plan}) > 1 or len({fo.id for fo, _ in plan}) < len(plan):
        return plan, ("All fulfillment orders must belong to the same order, once each.", base)
    if not any(quantities for _, quantities in plan):
        return plan, ("Nothing remains to be fulfilled.", base)
    return plan, None


def _tracking(info: dict) -> tuple[list[dict], tuple | None]:
    """trackingInfo as Shopify stores it, or the userError for mixed single/plural fields."""
    path = ["fulfillment", "trackingInfo"]
    if (info.get("number") and info.get("numbers")) or (info.get("url") and info.get("urls")):
        return [], ("Provide either number/url or numbers/urls, not both.", path)
    if info.get("urls") and len(info["urls"]) > len(info.get("numbers") or []):
        return [], ("Every tracking URL needs a tracking number.", path + ["urls"])
    company = info.get("company")
    if info.get("numbers"):
        urls = list(info.get("urls") or [])
        return [{"number": n, "url": urls[i] if i < len(urls) else None, "company": company}
                for i, n in enumerate(info["numbers"])], None
    if info.get("number") or info.get("url"):
        return [{"number": info.get("number"), "url": info.get("url"), "company": company}], None
    return [], None
