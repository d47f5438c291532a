"""Mutations on fulfillment orders and returns: holds, releases, returnProcess, fulfillmentCreate.

Every check runs before anything changes, so a call with userErrors leaves the shop untouched.
Messages, fields and codes are those of live Shopify 2026-04 (recordings named in
tests/test_conformance_*.py); an unknown FO id is a top-level RESOURCE_NOT_FOUND, not a userError.
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

from sandbox.shopify.graphql_views import (
    fulfillment_order_view,
    fulfillment_view,
    hold_view,
    return_view,
)
from sandbox.shopify.store import (
    Fulfillment,
    FulfillmentLine,
    Hold,
    Refused,
    ResourceNotFound,
    next_id,
    parse_gid,
    process_exchanges,
)

MAX_APP_HOLDS = 10
HOLDABLE = ("OPEN", "IN_PROGRESS", "ON_HOLD", "SCHEDULED")


def user_error(message: str, field: list[str] | None, code: str | None = None) -> dict:
    return {"__typename": "UserError", "field": field, "message": message, "code": code}


def hold(store, shop, args: dict) -> dict:
    fo = _fulfillment_order(shop, args["id"])
    given = args["fulfillmentHold"]
    handle = given.get("handle") or ""
    problem = _hold_problem(fo, given, handle)
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


def _hold_problem(fo, given: dict, handle: str) -> tuple | None:
    """The first userError, in the order live Shopify checks them (line items before limits)."""
    lines = given.get("fulfillmentOrderLineItems") or []
    path = ["fulfillmentHold", "fulfillmentOrderLineItems"]
    app_holds = [h for h in fo.holds if h.by_app]
    for index, line in enumerate(lines):
        if line["quantity"] <= 0:
            return ("You must select at least one item to place on partial hold.",
                    path + [str(index), "quantity"], "GREATER_THAN_ZERO")
    if len({line["id"] for line in lines}) < len(lines):
        return "must contain unique line item ids", path, "DUPLICATED_FULFILLMENT_ORDER_LINE_ITEMS"
    if fo.status not in HOLDABLE:
        return f"Fulfillment order is {fo.status.lower()} and cannot be held.", ["id"], None
    if lines and fo.status == "ON_HOLD":
        return ("The fulfillment order is not in a splittable state.", path,
                "FULFILLMENT_ORDER_NOT_SPLITTABLE")
    if len(handle) > 64:
        return "Handle is too long (maximum is 64 characters).", ["fulfillmentHold", "handle"], None
    if any(h.handle == handle for h in app_holds):
        return ("The handle provided for the fulfillment hold is already in use by this app for "
                "another hold on this fulfillment order.", ["fulfillmentHold", "handle"],
                "DUPLICATE_FULFILLMENT_HOLD_HANDLE")
    if len(app_holds) >= MAX_APP_HOLDS:
        return ("The maximum number of fulfillment holds for this fulfillment order has been "
                "reached for this app. An app can only have up to 10 holds on a single "
                "fulfillment order at any one time.", ["id"],
                "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED")
    return None


def _fulfillment_order(shop, value: str):
    """The FO behind `id`; an unknown one is a top-level RESOURCE_NOT_FOUND, as in Shopify."""
    fo = shop.get("fulfillment_orders", value, "FulfillmentOrder")
    if fo is None:
        raise ResourceNotFound(value)
    return fo


def release_hold(store, shop, args: dict) -> dict:
    fo = _fulfillment_order(shop, args["id"])
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
        return "Return not found.", ["input", "returnId"], "NOT_FOUND"
    if ret.status != "OPEN":
        return f"Return is {ret.status.lower()} and cannot be processed.", \
            ["input", "returnId"], "INVALID_STATE"
    exchange, returned = given.get("exchangeLineItems") or [], given.get("returnLineItems") or []
    if not exchange and not returned:
        return "Nothing to process.", ["input"], "BLANK"
    # "Return line item was not found." is live; the exchange wording follows it by analogy.
    for key, kind, label, items, lines in (
            ("exchangeLineItems", "ExchangeLineItem", "Exchange", exchange, ret.exchanges),
            ("returnLineItems", "ReturnLineItem", "Return", returned, ret.lines)):
        seen = set()
        for index, item in enumerate(items):
            path = ["input", key, str(index)]
            line = next((x for x in lines if x.id == parse_gid(item["id"], kind)), None)
            if line is None or line.id in seen:
                return f"{label} line item was not found.", path + ["id"], "NOT_FOUND"
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
    """[(fo, [(fo line, quantity)])] for the request, or the first userError (live wording)."""
    plan, base = [], ["fulfillment", "lineItemsByFulfillmentOrder"]
    if not groups:
        return plan, ("At least one fulfillment order is required.", base)
    for index, group in enumerate(groups):
        fo = shop.get("fulfillment_orders", group["fulfillmentOrderId"], "FulfillmentOrder")
        problem = _fulfillable_problem(fo)
        if problem:
            return plan, problem
        quantities, problem = _quantities(fo, group, base + [str(index)])
        if problem:
            return plan, problem
        plan.append((fo, quantities))
    if len({fo.order_id for fo, _ in plan}) > 1 or len({fo.id for fo, _ in plan}) < len(plan):
        return plan, ("All fulfillment orders must belong to the same order, once each.", base)
    if not any(quantities for _, quantities in plan):
        return plan, ("Nothing remains to be fulfilled.", base)
    return plan, None


def _fulfillable_problem(fo) -> tuple | None:
    if fo is None:
        return "Fulfillment order does not exist.", ["fulfillment"]
    if "CREATE_FULFILLMENT" in fo.actions():
        return None
    if fo.status in ("OPEN", "IN_PROGRESS"):
        return (f"Fulfillment order {fo.id} is assigned to another fulfillment service's "
                "location; this app cannot create fulfillments for it.", ["fulfillment"])
    # Shopify names the FO by its number (not its GID): "... unfulfillable status= closed."
    return f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.", \
        ["fulfillment"]


def _quantities(fo, group: dict, path: list[str]) -> tuple[list, tuple | None]:
    requested = group.get("fulfillmentOrderLineItems") or [
        {"id": line.id, "quantity": line.remaining} for line in fo.lines if line.remaining]
    quantities = []
    for j, item in enumerate(requested):
        number = parse_gid(item["id"], "FulfillmentOrderLineItem")
        line = next((x for x in fo.lines if x.id == number), None)
        if line is None or any(q[0] is line for q in quantities):
            return quantities, ("Fulfillment order line item does not exist on this fulfillment "
                                "order (or is given twice).", path + [
                                    "fulfillmentOrderLineItems", str(j), "id"])
        if item["quantity"] <= 0:
            return quantities, ("Quantity must be greater than 0", path + [
                "fulfillmentOrderLineItems", str(j), "quantity"])
        if item["quantity"] > line.remaining:
            return quantities, ("Invalid fulfillment order line item quantity requested.",
                                ["fulfillment"])
        quantities.append((line, item["quantity"]))
    return quantities, None


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
