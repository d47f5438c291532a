"""Sandbox Ongoing: a local server speaking the Goods Owner REST API v1's real shapes.

Routes are /<server>/<warehouse>/api/v1/…, so ONGOING_API_URL_TEMPLATE is
http://127.0.0.1:<port>/{server}/{warehouse}/api/v1 (`SandboxOngoing.url_template`). Servers
`api` and `wms1` exist; only the endpoints clients/ongoing.py uses do; anything else is refused
loudly (404/405, logged).

Statuses (numbers matter; texts are Ongoing's default English ones):
- orders: 150 Error, 200 Open, 300 Released, 320 Allocated, 400 Picked, 450 Sent, 500 Collected,
  800 Returned, 1000 Cancelled; new orders start at `Account.initial_status` (200).
- return orders (Ongoing documents no default set; these follow DESIGN's example mapping):
  100 Notified (new ones), 200 Returned, 900 Cancelled.
Rules:
- PUT /orders updates an order only below 320 Allocated (then the warehouse is working on it);
  unknown article numbers are refused.
- PATCH …/orderStatus: the number must exist; Cancelled is final; from Allocated on an order
  cannot be cancelled; from Picked on it only moves forward.
- DELETE /orders/{id} cancels below 320; repeating it on a cancelled order answers 200 again.
- PUT /returnOrders updates a return order only while Notified; PATCH to Returned books the
  returned items on the return lines and on the original order's lines; Cancelled is final.
Test hooks (plain methods): add_account, Account.add_article, move_order / move_return_order
(the warehouse at work; move_order fires the registered webhook), fail_next / delay_next, calls.
"""
from __future__ import annotations

import copy
import itertools
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from flask import Blueprint, Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

SERVERS = ("api", "wms1")
ORDER_STATUSES = {150: "Error", 200: "Open", 300: "Released", 320: "Allocated", 400: "Picked",
                  450: "Sent", 500: "Collected", 800: "Returned", 1000: "Cancelled"}
RETURN_ORDER_STATUSES = {100: "Notified", 200: "Returned", 900: "Cancelled"}
ALLOCATED, PICKED, SENT, ORDER_RETURNED, CANCELLED = 320, 400, 450, 800, 1000
NOTIFIED, RETURNED, RETURN_CANCELLED = 100, 200, 900
API_PATH = re.compile(r"^/[^/]+/[^/]+/api/v1(/.*)$")
WAREHOUSES = [
    {"id": 1, "code": "MAIN", "name": "Main warehouse",
     "address": {"name": "Sandbox Logistics AB", "address1": "Lagergatan 1", "address2": None,
                 "address3": None, "postCode": "41101", "city": "Göteborg",
                 "countryCode": "SE", "countryStateCode": None}},
    {"id": 2, "code": "RET", "name": "Returns warehouse",
     "address": {"name": "Sandbox Logistics AB", "address1": "Returvägen 7", "address2": None,
                 "address3": None, "postCode": "41102", "city": "Göteborg",
                 "countryCode": "SE", "countryStateCode": None}},
]
DEFAULT_TRANSPORTER = {"transporterName": "PostNord", "name": "PostNord", "code": "PN",
                       "serviceCode": "19", "transporterContract": None, "serviceComment": None}
# Ids are unique across every sandbox in the process, like a real system's identity columns.
_ids = {kind: itertools.count(start) for kind, start in (
    ("article", 1001), ("order", 50001), ("line", 700001), ("return", 9001),
    ("return_line", 800001), ("parcel", 30001), ("event", 1), ("webhook", 1))}
log = logging.getLogger(__name__)


def _next_id(kind: str) -> int:
    return next(_ids[kind])


def _now() -> str:
    """Ongoing's response time format: UTC with Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Refused(Exception):
    """Answer the API call with `status` and Ongoing's `{"message": …}` body."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class Order:
    id: int
    number: str
    body: dict  # the last PUT body: consignee and references are echoed back from it
    lines: list[dict]  # {id, rowNumber, articleNumber, ordered, picked, returned, source}
    status: int
    created: str = field(default_factory=_now)
    shipped: str | None = None
    shipment_id: int | None = None
    transporter: dict | None = None
    tracking: list[dict] = field(default_factory=list)
    parcels: list[dict] = field(default_factory=list)


@dataclass
class ReturnOrder:
    id: int
    number: str
    order_id: int
    body: dict
    lines: list[dict]  # {id, rowNumber, orderLineId, expected, returned, source}
    status: int = NOTIFIED
    created: str = field(default_factory=_now)
    arrived: str | None = None


@dataclass
class Account:
    """One goods owner's API user in one warehouse system, with everything it owns."""

    server: str
    warehouse: str
    goods_owner_id: int
    username: str
    password: str = field(repr=False)
    api_access: bool = True
    name: str = "Sandbox goods owner"
    initial_status: int = 200
    warehouses: list[dict] = field(default_factory=lambda: copy.deepcopy(WAREHOUSES))
    order_statuses: dict[int, str] = field(default_factory=lambda: dict(ORDER_STATUSES))
    return_order_statuses: dict[int, str] = field(
        default_factory=lambda: dict(RETURN_ORDER_STATUSES))
    articles: dict[str, dict] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    return_orders: dict[int, ReturnOrder] = field(default_factory=dict)
    webhook: tuple[str, str] | None = field(default=None, repr=False)  # (url, token)
    webhook_id: int = 0

    def add_article(self, article_number: str, name: str, sellable: int) -> dict:
        """Add (or restock) an article; returns its GetArticleModel."""
        article = {
            "articleSystemId": _next_id("article"), "articleNumber": article_number,
            "articleName": name, "productCode": article_number, "isActive": True,
            "isStockArticle": True, "barCodeInfo": {"barCode": None}, "weight": None,
            "inventoryInfo": {"numberOfItems": sellable, "sellableNumberOfItems": sellable,
                              "allocatedNumberOfItems": 0, "bookedNumberOfItems": 0,
                              "lockedForSaleNumberOfItems": 0, "toReceiveNumberOfItems": 0},
        }
        if article_number in self.articles:
            article["articleSystemId"] = self.articles[article_number]["articleSystemId"]
        self.articles[article_number] = article
        return article

    def order_by_number(self, number: str) -> Order | None:
        return next((o for o in self.orders.values() if o.number == number), None)

    def warehouse_info(self, warehouse_id: int | None) -> dict:
        found = next((w for w in self.warehouses if w["id"] == warehouse_id), self.warehouses[0])
        return {"id": found["id"], "code": found["code"], "name": found["name"]}


# --- request helpers --------------------------------------------------------------------------

def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused("The request body must be a JSON object.")
    return body


def _field(data: dict, name: str, kind: type | tuple, where: str = ""):
    value = data.get(name)
    if value is None or value == "":
        raise Refused(f"The {where}{name} field is required.")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Refused(f"The value {value!r} is not valid for {where}{name}.")
    return value


def _query_int(name: str, *, required: bool = False) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        if required:
            raise Refused(f"The {name} parameter is required.")
        return None
    try:
        return int(raw)
    except ValueError:
        raise Refused(f"The value '{raw}' is not valid for {name}.") from None


def _check_owner(value: int | None) -> None:
    if value is not None and value != g.account.goods_owner_id:
        raise Refused(f"goodsOwnerId {value} is not the goods owner of this API user.")


def _date(value: str, name: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"The value '{value}' is not valid for {name}.") from None
    parsed = parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _order(order_id: int) -> Order:
    order = g.account.orders.get(order_id)
    if order is None:
        raise Refused(f"Order {order_id} was not found.", 404)
    return order


def _return_order(return_order_id: int) -> ReturnOrder:
    found = g.account.return_orders.get(return_order_id)
    if found is None:
        raise Refused(f"Return order {return_order_id} was not found.", 404)
    return found


# --- shapes -----------------------------------------------------------------------------------

def order_model(account: Account, order: Order) -> dict:
    """GetOrderModel for one order."""
    body = order.body
    lines = [_order_line_model(account, order, line) for line in order.lines]
    return {
        "goodsOwner": {"id": account.goods_owner_id, "name": account.name},
        "orderInfo": {
            "orderId": order.id, "orderNumber": order.number,
            "goodsOwnerOrderId": body.get("goodsOwnerOrderId"),
            "referenceNumber": body.get("referenceNumber"),
            "consigneeOrderNumber": body.get("consigneeOrderNumber"),
            "orderRemark": body.get("orderRemark"),
            "orderStatus": {"number": order.status,
                            "text": account.order_statuses.get(order.status, "")},
            "createdDate": order.created, "deliveryDate": _date(body["deliveryDate"], ""),
            "shippedTime": order.shipped,
            "wayBill": order.tracking[0]["waybill"] if order.tracking else None,
            "returnWayBill": None,
            "orderedNumberOfItems": sum(x["orderedNumberOfItems"] for x in lines),
            "allocatedNumberOfItems": sum(x["allocatedNumberOfItems"] for x in lines),
            "pickedNumberOfItems": sum(x["pickedNumberOfItems"] for x in lines),
            "warehouse": account.warehouse_info(body.get("warehouseId")),
            "wayOfDelivery": body.get("wayOfDelivery"), "orderType": body.get("orderType"),
        },
        "consignee": body["consignee"],
        "orderLines": lines,
        "transporter": order.transporter,
        "returnTransporter": None,
        "tracking": order.tracking,
        "returnTracking": [],
        "parcels": order.parcels,
        "classes": body.get("classes") or [],
    }


def _order_line_model(account: Account, order: Order, line: dict) -> dict:
    article = account.articles[line["articleNumber"]]
    allocated = line["ordered"] if ALLOCATED <= order.status < CANCELLED else 0
    return {
        "id": line["id"], "rowNumber": line["rowNumber"],
        "article": {"articleSystemId": article["articleSystemId"],
                    "articleNumber": article["articleNumber"],
                    "articleName": article["articleName"], "productCode": article["productCode"]},
        "orderedNumberOfItems": line["ordered"], "allocatedNumberOfItems": allocated,
        "pickedNumberOfItems": line["picked"], "packedNumberOfItems": line["picked"],
        "reportedNumberOfItems": 0, "returnedNumberOfItems": line["returned"],
        "reportedReturnedNumberOfItems": 0, "pickedArticleItems": [],
        "externalId": line["source"].get("externalId"), "comment": line["source"].get("comment"),
        "prices": line["source"].get("prices"),
    }


def return_order_model(account: Account, ret: ReturnOrder) -> dict:
    """GetReturnOrderModel for one return order."""
    order = account.orders[ret.order_id]
    rows = {line["id"]: line for line in order.lines}
    return {
        "goodsOwner": {"id": account.goods_owner_id, "name": account.name},
        "returnOrderInfo": {
            "returnOrderId": ret.id, "returnOrderNumber": ret.number,
            "returnOrderStatus": {"number": ret.status,
                                  "text": account.return_order_statuses.get(ret.status, "")},
            "inDate": ret.body.get("inDate"), "createdDate": ret.created,
            "returnOrderArrivalTime": ret.arrived, "comment": ret.body.get("comment"),
            "returnOrderHandlingComment": ret.body.get("returnOrderHandlingComment"),
            "warehouse": account.warehouse_info(ret.body.get("warehouseId")),
        },
        "customerOrderInfo": {"orderId": order.id, "orderNumber": order.number},
        "returnOrderLines": [_return_line_model(account, rows, line) for line in ret.lines],
        "tracking": ret.body.get("tracking") or [],
    }


def _return_line_model(account: Account, rows: dict, line: dict) -> dict:
    row = rows.get(line["orderLineId"], {"rowNumber": None, "articleNumber": None})
    article = account.articles.get(row["articleNumber"]) or {}
    return {
        "returnOrderLineId": line["id"], "returnOrderRowNumber": line["rowNumber"],
        "customerOrderLine": {"orderLineId": line["orderLineId"],
                              "customerOrderRowNumber": row["rowNumber"]},
        "article": {"articleSystemId": article.get("articleSystemId"),
                    "articleNumber": article.get("articleNumber"),
                    "articleName": article.get("articleName")},
        "toBeReturnedNumberOfItems": line["expected"], "returnedNumberOfItems": line["returned"],
        "returnCause": line["source"].get("returnCause"),
        "returnOrderLineComment": line["source"].get("returnOrderLineComment"),
        "returnedArticleItems": [],
    }


def webhook_payload(account: Account, order: Order) -> dict:
    """The *Order status is changed* webhook body (ongoing-api.md §3.3)."""
    return {
        "webhookOrdersId": account.webhook_id, "webhookEventId": _next_id("event"),
        "system": account.warehouse,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0",  # 7 digits, no zone
        "orderId": order.id, "orderNumber": order.number, "goodsOwnerId": account.goods_owner_id,
        "goodsOwnerOrderId": order.body.get("goodsOwnerOrderId"),
        "consigneeOrderNumber": order.body.get("consigneeOrderNumber"),
        "path": f"/api/v1/orders/{order.id}",
        "byUser": {"userId": 1}, "byComputer": {"computerId": 1, "computerName": "SANDBOX-WMS"},
        "orderStatus": {"number": order.status},
        "currentShipmentId": order.shipment_id,
        "webhookTemplate": "Order status is changed",
        "goodsOwnerName": account.name, "goodsOwnerClasses": [],
        "tracking": [{"trackingUrl": t["trackingUrl"], "waybill": t["waybill"], "isReturn": False}
                     for t in order.tracking],
        "parcels": [{"id": p["id"], "parcelNumber": p["parcelNumber"],
                     "isReturnParcel": p["isReturnParcel"],
                     "tracking": {"trackingUrl": p["tracking"]["trackingUrl"]}}
                    for p in order.parcels],
    }


# --- rules ------------------------------------------------------------------------------------

def _order_lines(account: Account, raw, existing: list[dict]) -> list[dict]:
    if not isinstance(raw, list):
        raise Refused(f"The value {raw!r} is not valid for orderLines.")
    ids = {line["rowNumber"]: line["id"] for line in existing}
    lines: list[dict] = []
    for i, item in enumerate(raw):
        where = f"orderLines[{i}]."
        if not isinstance(item, dict):
            raise Refused(f"The value {item!r} is not valid for orderLines[{i}].")
        row = _field(item, "rowNumber", str, where)
        article = _field(item, "articleNumber", str, where)
        count = item.get("numberOfItems", 0)
        if isinstance(count, bool) or not isinstance(count, int | float) or count < 0:
            raise Refused(f"The value {count!r} is not valid for {where}numberOfItems.")
        if any(line["rowNumber"] == row for line in lines):
            raise Refused(f"Row number {row} occurs more than once in the order.")
        if article not in account.articles:
            raise Refused(f"Article {article} does not exist.")
        lines.append({"id": ids.get(row) or _next_id("line"), "rowNumber": row,
                      "articleNumber": article, "ordered": count, "picked": 0, "returned": 0,
                      "source": item})
    return lines


def status_change_refusal(account: Account, order: Order, number: int) -> str | None:
    """Why an order may not move to `number` through the API (None when it may)."""
    if number not in account.order_statuses:
        return f"Order status {number} does not exist."
    if order.status == CANCELLED:
        return f"Order {order.number} is cancelled; its status cannot be changed."
    if number == CANCELLED and order.status >= ALLOCATED:
        return f"Order {order.number} cannot be cancelled: the warehouse has started on it."
    if order.status >= PICKED and number <= order.status:
        return f"Order {order.number} is picked; its status can only move forward."
    return None


def set_order_status(order: Order, number: int, tracking: dict | None = None) -> None:
    """Move an order, doing what the warehouse would: pick, ship with tracking, take back."""
    order.status = number
    if PICKED <= number < CANCELLED:
        for line in order.lines:
            line["picked"] = line["ordered"]
    if SENT <= number < ORDER_RETURNED and not order.tracking:
        _ship(order, tracking or {})
    if number == ORDER_RETURNED:
        for line in order.lines:
            line["returned"] = line["picked"]


def _ship(order: Order, tracking: dict) -> None:
    waybill = tracking.get("waybill") or f"SBX{order.id:010d}SE"
    url = tracking.get("trackingUrl") or f"https://tracking.example.com/?id={waybill}"
    order.shipped, order.shipment_id = _now(), _next_id("parcel")
    order.transporter = tracking.get("transporter") or dict(DEFAULT_TRANSPORTER)
    order.tracking = [{"waybill": waybill, "trackingUrl": url, "created": order.shipped,
                       "freightPrice": None}]
    order.parcels = [{"id": _next_id("parcel"), "parcelNumber": f"{waybill}-1",
                      "isReturnParcel": False,
                      "tracking": {"trackingUrl": url, "freightPrice": None},
                      "advanced": {"weight": 0.5, "length": None, "width": None, "height": None,
                                   "parcelSerialNumber": None}}]


def _return_lines(order: Order, raw, existing: list[dict]) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise Refused("The returnOrderLines field is required.")
    ids = {line["rowNumber"]: line["id"] for line in existing}
    order_lines = {line["id"]: line for line in order.lines}
    lines: list[dict] = []
    for i, item in enumerate(raw):
        where = f"returnOrderLines[{i}]."
        if not isinstance(item, dict):
            raise Refused(f"The value {item!r} is not valid for returnOrderLines[{i}].")
        row = _field(item, "returnOrderRowNumber", str, where)
        ref = _field(item, "customerOrderLine", dict, where)
        line_id = _field(ref, "orderLineId", int, where + "customerOrderLine.")
        count = _field(item, "toBeReturnedNumberOfItems", int | float, where)
        if any(line["rowNumber"] == row for line in lines):
            raise Refused(f"Return order row number {row} occurs more than once.")
        if line_id not in order_lines:
            raise Refused(f"Order line {line_id} is not a line of order {order.number}.")
        if not 0 < count <= order_lines[line_id]["ordered"]:
            raise Refused(f"{where}toBeReturnedNumberOfItems must be between 1 and the number "
                          f"ordered on order line {line_id}.")
        lines.append({"id": ids.get(row) or _next_id("return_line"), "rowNumber": row,
                      "orderLineId": line_id, "expected": count, "returned": 0, "source": item})
    return lines


def set_return_order_status(account: Account, ret: ReturnOrder, number: int) -> None:
    """Move a return order; reaching Returned books the items on the original order once."""
    if ret.status < RETURNED <= number < RETURN_CANCELLED:
        order_lines = {line["id"]: line for line in account.orders[ret.order_id].lines}
        for line in ret.lines:
            line["returned"] = line["expected"]
            order_lines[line["orderLineId"]]["returned"] += line["expected"]
        ret.arrived = _now()
    ret.status = number


# --- the HTTP API -----------------------------------------------------------------------------

def create_api(sandbox: SandboxOngoing) -> Blueprint:
    """The Goods Owner REST API v1 endpoints the client uses, under /<server>/<warehouse>."""
    bp = Blueprint("ongoing_api", __name__, url_prefix="/<server>/<warehouse>/api/v1")

    @bp.url_value_preprocessor
    def pull_location(endpoint, values):
        g.server, g.warehouse = values.pop("server"), values.pop("warehouse")

    @bp.before_request
    def authenticate():
        if g.server not in SERVERS:  # stands in for a host name that does not resolve
            return f"sandbox: no Ongoing server '{g.server}'", 502, {"Content-Type": "text/plain"}
        accounts = sandbox.accounts_at(g.server, g.warehouse)
        if not accounts:
            raise Refused(f"No warehouse system '{g.warehouse}' on {g.server}.", 404)
        auth = request.authorization
        account = next((a for a in accounts if auth and auth.type == "basic"
                        and a.username == auth.username and a.password == auth.password), None)
        if account is None:
            raise Refused("Authorization has been denied for this request.", 401)
        if not account.api_access:
            raise Refused("The API user has no access to the goods owner REST API.", 403)
        g.account = account
        _check_owner(_query_int("goodsOwnerId"))

    @bp.get("/warehouses")
    def warehouses():
        return jsonify(g.account.warehouses)

    @bp.get("/orders/statuses")
    def order_statuses():
        statuses = sorted(g.account.order_statuses.items())
        return jsonify(orderStatuses=[{"number": n, "text": t} for n, t in statuses])

    @bp.get("/returnOrders/statuses")
    def return_order_statuses():
        statuses = sorted(g.account.return_order_statuses.items())
        return jsonify(returnOrderStatuses=[{"number": n, "text": t} for n, t in statuses])

    @bp.get("/articles")
    def articles():
        _query_int("goodsOwnerId", required=True)
        wanted = set(request.args.getlist("articleNumbers") + request.args.getlist("articleNumber"))
        with sandbox.lock:
            found = [a for n, a in g.account.articles.items() if not wanted or n in wanted]
            return jsonify(sorted(found, key=lambda a: a["articleSystemId"]))

    @bp.put("/orders")
    def put_order():
        body, account = _body(), g.account
        _check_owner(_field(body, "goodsOwnerId", int))
        number = _field(body, "orderNumber", str)
        _date(_field(body, "deliveryDate", str), "deliveryDate")
        consignee = _field(body, "consignee", dict)
        warehouse_id = body.get("warehouseId")
        if warehouse_id is not None and all(w["id"] != warehouse_id for w in account.warehouses):
            raise Refused(f"Warehouse {warehouse_id} does not exist.")
        with sandbox.lock:
            order = account.order_by_number(number)
            if order is not None and order.status >= ALLOCATED:
                text = account.order_statuses.get(order.status, order.status)
                raise Refused(f"Order {number} cannot be updated: it has status {text}.")
            lines = _order_lines(account, body.get("orderLines") or [],
                                 order.lines if order else [])
            created = order is None
            if created:
                order = Order(_next_id("order"), number, body, lines, account.initial_status)
                account.orders[order.id] = order
            else:
                order.body, order.lines = body, lines
        customer = consignee.get("name") or consignee.get("customerNumber") or "customer"
        verb = "created" if created else "updated"
        message = (f"Customer {customer} {verb}. <br/> <br/>Order number {number} "
                   f"created/updated")
        return jsonify(orderId=order.id, message=message), 201 if created else 200

    @bp.get("/orders")
    def find_orders():
        _query_int("goodsOwnerId", required=True)
        number = request.args.get("orderNumber")
        with sandbox.lock:
            found = [order_model(g.account, o) for o in g.account.orders.values()
                     if number is None or o.number == number]
            return jsonify(found)

    @bp.get("/orders/<int:order_id>")
    def get_order(order_id: int):
        with sandbox.lock:
            return jsonify(order_model(g.account, _order(order_id)))

    @bp.patch("/orders/<int:order_id>/orderStatus")
    def patch_order_status(order_id: int):
        number = _field(_body(), "orderStatusNumber", int)
        with sandbox.lock:
            order = _order(order_id)
            refusal = status_change_refusal(g.account, order, number)
            if refusal:
                raise Refused(refusal)
            set_order_status(order, number)
        text = g.account.order_statuses[number]
        return jsonify(orderId=order_id, message=f"Order status changed to {text}.")

    @bp.delete("/orders/<int:order_id>")
    def cancel_order(order_id: int):
        with sandbox.lock:
            order = _order(order_id)
            if order.status == CANCELLED:
                return jsonify(orderId=order_id, message=f"Order {order.number} is cancelled.")
            if order.status >= ALLOCATED:
                raise Refused(f"Order {order.number} cannot be cancelled: the warehouse has "
                              f"started on it.")
            order.status = CANCELLED
        return jsonify(orderId=order_id, message=f"Order {order.number} cancelled.")

    @bp.put("/returnOrders")
    def put_return_order():
        body, account = _body(), g.account
        _check_owner(_field(body, "goodsOwnerId", int))
        number = _field(body, "returnOrderNumber", str)
        customer_order = _field(body, "customerOrder", dict)
        order_id = _field(customer_order, "orderId", int, "customerOrder.")
        with sandbox.lock:
            order = account.orders.get(order_id)
            if order is None:
                raise Refused(f"Customer order {order_id} does not exist.")
            ret = next((r for r in account.return_orders.values() if r.number == number), None)
            if ret is not None and ret.status != NOTIFIED:
                raise Refused(f"Return order {number} cannot be updated: it is no longer "
                              f"notified.")
            lines = _return_lines(order, body.get("returnOrderLines"), ret.lines if ret else [])
            created = ret is None
            if created:
                ret = ReturnOrder(_next_id("return"), number, order_id, body, lines)
                account.return_orders[ret.id] = ret
            else:
                ret.order_id, ret.body, ret.lines = order_id, body, lines
        message = f"Return order {number} {'created' if created else 'updated'}."
        return jsonify(returnOrderId=ret.id, message=message), 201 if created else 200

    @bp.get("/returnOrders")
    def find_return_orders():
        _query_int("goodsOwnerId", required=True)
        numbers = set(request.args.getlist("returnOrderNumbers"))
        low = _query_int("returnOrderStatusFrom")
        high = _query_int("returnOrderStatusTo")
        with sandbox.lock:
            found = [return_order_model(g.account, r) for r in g.account.return_orders.values()
                     if (not numbers or r.number in numbers)
                     and (low is None or r.status >= low) and (high is None or r.status <= high)]
            return jsonify(found)

    @bp.get("/returnOrders/<int:return_order_id>")
    def get_return_order(return_order_id: int):
        with sandbox.lock:
            return jsonify(return_order_model(g.account, _return_order(return_order_id)))

    @bp.patch("/returnOrders/<int:return_order_id>/returnOrderStatus")
    def patch_return_order_status(return_order_id: int):
        number = _field(_body(), "returnOrderStatusNumber", int)
        with sandbox.lock:
            ret = _return_order(return_order_id)
            if number not in g.account.return_order_statuses:
                raise Refused(f"Return order status {number} does not exist.")
            if ret.status == RETURN_CANCELLED and number != RETURN_CANCELLED:
                raise Refused(f"Return order {ret.number} is cancelled.")
            set_return_order_status(g.account, ret, number)
        text = g.account.return_order_statuses[number]
        return jsonify(returnOrderId=return_order_id,
                       message=f"Return order status changed to {text}.")

    return bp


def create_sandbox_app(sandbox: SandboxOngoing) -> Flask:
    """The sandbox's Flask app: call recording and faults first, then the API."""
    app = Flask("sandbox_ongoing")
    app.register_blueprint(create_api(sandbox))

    @app.before_request
    def record_and_inject():
        match = API_PATH.match(request.path)
        return sandbox.intake(request.method, match.group(1) if match else request.path)

    @app.errorhandler(Refused)
    def refused(exc: Refused):
        return jsonify(message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def unknown(exc: HTTPException):
        log.error("sandbox ongoing refused %s %s: %s", request.method, request.path, exc.name)
        return jsonify(message=f"sandbox: {exc.name} for {request.method} {request.path}"), \
            exc.code

    return app


class SandboxOngoing:
    """Runs the sandbox on a port in a background thread; holds accounts, calls and faults."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.RLock()
        self.accounts: list[Account] = []
        self.calls: list[tuple[str, str]] = []  # (method, path below /api/v1), for tests
        self._failures: deque[tuple[int, float | None]] = deque()
        self._delays: deque[float] = deque()
        self.server = make_server(host, port, create_sandbox_app(self), threaded=True)
        self.origin = f"http://{host}:{self.server.server_port}"
        self.url_template = f"{self.origin}/{{server}}/{{warehouse}}/api/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SandboxOngoing:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_account(self, warehouse: str, goods_owner_id: int, username: str, password: str, *,
                    api_access: bool = True, server: str = "api", **options) -> Account:
        """Create a goods owner's API user in `warehouse` on `server` (api or wms1)."""
        if server not in SERVERS:
            raise ValueError(f"the sandbox knows servers {SERVERS}, not {server!r}")
        account = Account(server, warehouse, goods_owner_id, username, password,
                          api_access=api_access, **options)
        with self.lock:
            self.accounts.append(account)
        return account

    def accounts_at(self, server: str, warehouse: str) -> list[Account]:
        with self.lock:
            return [a for a in self.accounts if (a.server, a.warehouse) == (server, warehouse)]

    def register_webhook(self, account: Account, url: str, token: str) -> None:
        """Point the account's *Order status is changed* webhook at `url` with X-Auth-Token."""
        with self.lock:
            account.webhook, account.webhook_id = (url, token), _next_id("webhook")

    def move_order(self, order_id: int, status_number: int, *,
                   tracking: dict | None = None) -> requests.Response | None:
        """The warehouse moves an order (tracking: waybill, trackingUrl, transporter at Sent).

        Fires the account's webhook when one is registered and returns its response.
        """
        with self.lock:
            account, order = self._find_order(order_id)
            if status_number not in account.order_statuses:
                raise ValueError(f"order status {status_number} does not exist")
            set_order_status(order, status_number, tracking)
            hook = account.webhook
            payload = webhook_payload(account, order) if hook else None
        if hook is None:
            return None
        url, token = hook
        return requests.post(url, json=payload, headers={"X-Auth-Token": token}, timeout=10)

    def move_return_order(self, return_order_id: int, status_number: int) -> None:
        """The warehouse moves a return order (to Returned: the parcel arrived)."""
        with self.lock:
            for account in self.accounts:
                if return_order_id in account.return_orders:
                    if status_number not in account.return_order_statuses:
                        raise ValueError(f"return order status {status_number} does not exist")
                    ret = account.return_orders[return_order_id]
                    return set_return_order_status(account, ret, status_number)
        raise KeyError(f"no sandbox return order {return_order_id}")

    def _find_order(self, order_id: int) -> tuple[Account, Order]:
        for account in self.accounts:
            if order_id in account.orders:
                return account, account.orders[order_id]
        raise KeyError(f"no sandbox order {order_id}")

    def fail_next(self, n: int, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next n API calls with `status` (and Retry-After when given)."""
        with self.lock:
            self._failures.extend([(status, retry_after)] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        """Make the next n API calls wait `seconds` before answering (for timeouts)."""
        with self.lock:
            self._delays.extend([seconds] * n)

    def reset(self) -> None:
        """Forget recorded calls and pending faults (accounts and their data stay)."""
        with self.lock:
            self.calls.clear()
            self._failures.clear()
            self._delays.clear()

    def count(self, method: str, path: str) -> int:
        """How many recorded calls were `method path` (path below /api/v1)."""
        with self.lock:
            return self.calls.count((method, path))

    def intake(self, method: str, path: str):
        """Record a call, then apply the next pending delay and failure, if any."""
        with self.lock:
            self.calls.append((method, path))
            delay = self._delays.popleft() if self._delays else 0
            failure = self._failures.popleft() if self._failures else None
        if delay:
            time.sleep(delay)
        if failure is None:
            return None
        status, retry_after = failure
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        if status in (502, 503, 504):
            page = f"<html><body><h1>{status} Service unavailable</h1><p>IIS</p></body></html>"
            return page, status, {**headers, "Content-Type": "text/html"}
        if status >= 500:
            return jsonify(Message="An error has occurred."), status, headers
        return jsonify(message=f"sandbox: injected {status}"), status, headers
