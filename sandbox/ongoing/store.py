"""Sandbox Ongoing's data and rules: accounts, orders, return orders and their response shapes.

Plain data and functions without Flask or requests, so the routes (sandbox/ongoing/api.py) and
the test hooks (sandbox/ongoing/server.py, whose docstring lists the statuses and rules) share them.
"""
from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

SERVERS = ("api", "wms1")
# Ongoing's standard order statuses, exactly as its example GET /orders/statuses answers.
ORDER_STATUSES = {150: "Error", 200: "Open", 300: "Released", 320: "Allocated", 400: "Picked",
                  450: "Sent", 500: "Collected", 1000: "Cancelled"}
THREE_PL_RETURNED = (800, "Returned")  # not standard: only some 3PLs add it (Account option)
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
# The transporter contracts of Ongoing's example GET /transporterContracts answer.
TRANSPORTER_CONTRACTS = {
    "SBTL": ("DB Schenker", {"BDI": "DB SCHENKERdirect", "BPA": "DB SCHENKERparcel",
                             "BCF": "DB SCHENKERsystem"}),
    "PLAB": ("PostNord Sweden AB", {"P83": "PostNord Groupage", "P19": "PostNord MyPack Collect",
                                    "P52": "PostNord Pallet", "P18": "PostNord Parcel (Nordic)",
                                    "P24": "PostNord Return Drop Off (within Sweden)"}),
}
DEFAULT_TRANSPORTER = ("PLAB", "P18")  # what the warehouse books when the order names none
# Ids are unique across every sandbox in the process, like a real system's identity columns.
_ids = {kind: itertools.count(start) for kind, start in (
    ("article", 1001), ("order", 50001), ("line", 700001), ("return", 9001),
    ("return_line", 800001), ("parcel", 30001), ("event", 1), ("webhook", 1))}


def _next_id(kind: str) -> int:
    return next(_ids[kind])


def reseed_ids(offset: int) -> None:
    """Shift every id sequence by `offset` (the demo: ids of earlier runs are never reused)."""
    for kind in list(_ids):
        _ids[kind] = itertools.count(next(_ids[kind]) + offset)


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

    def add_order_status(self, number: int, text: str) -> None:
        """A status the 3PL added to its system (e.g. THREE_PL_RETURNED)."""
        self.order_statuses = dict(sorted({**self.order_statuses, number: text}.items()))

    def order_by_number(self, number: str) -> Order | None:
        return next((o for o in self.orders.values() if o.number == number), None)

    def warehouse_info(self, warehouse_id: int | None) -> dict:
        found = next((w for w in self.warehouses if w["id"] == warehouse_id), self.warehouses[0])
        return {"id": found["id"], "code": found["code"], "name": found["name"]}


# --- field checks -----------------------------------------------------------------------------

def transporter_model(code: str | None, service: str | None) -> dict | None:
    """GetOrderModel.transporter for a booked transporter code and service."""
    if not code:
        return None
    name, services = TRANSPORTER_CONTRACTS.get(code, (None, {}))
    return {"transporterName": name, "name": services.get(service), "code": code,
            "serviceCode": service}


def _field(data: dict, name: str, kind: type | tuple, where: str = ""):
    value = data.get(name)
    if value is None or value == "":
        raise Refused(f"The {where}{name} field is required.")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Refused(f"The value {value!r} is not valid for {where}{name}.")
    return value


def _date(value: str, name: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"The value '{value}' is not valid for {name}.") from None
    parsed = parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


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
            "servicePointCode": body.get("servicePointCode"),
            "wayOfDelivery": body.get("wayOfDelivery"), "orderType": body.get("orderType"),
        },
        "consignee": body["consignee"],
        "orderLines": lines,
        "transporter": order.transporter or _booked_transporter(body),
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


def _booked_transporter(body: dict) -> dict | None:
    booked = body.get("transporter") or {}
    return transporter_model(booked.get("transporterCode"), booked.get("transporterServiceCode"))


def _ship(order: Order, tracking: dict) -> None:
    """Like Ongoing's example order: a waybill and a transporter; a URL only when given."""
    waybill = tracking.get("waybill") or f"SBX{order.id:010d}SE"
    url = tracking.get("trackingUrl")
    order.shipped, order.shipment_id = _now(), _next_id("parcel")
    order.transporter = tracking.get("transporter") or _booked_transporter(order.body) \
        or transporter_model(*DEFAULT_TRANSPORTER)
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
