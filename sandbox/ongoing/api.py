"""Sandbox Ongoing's HTTP side: the Goods Owner REST API v1 blueprint and the Flask app."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.ongoing import order_query
from sandbox.ongoing.fields import check_order_fields
from sandbox.ongoing.store import (
    ALLOCATED,
    API_PATH,
    CANCELLED,
    NOTIFIED,
    RETURN_CANCELLED,
    RETURNED,
    SERVERS,
    Order,
    Refused,
    ReturnOrder,
    _date,
    _field,
    _next_id,
    _order_lines,
    _return_lines,
    order_model,
    return_order_model,
    set_order_status,
    set_return_order_status,
    status_change_refusal,
)

if TYPE_CHECKING:
    from sandbox.ongoing.server import SandboxOngoing

log = logging.getLogger(__name__)


# --- request helpers --------------------------------------------------------------------------

def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused("The request body must be a JSON object.")
    return body


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
        check_order_fields(body)
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
        customer = f"with customer number '{consignee['customerNumber']}'" \
            if consignee.get("customerNumber") else consignee.get("name") or "customer"
        verb = "created" if created else "updated"
        message = (f"Customer {customer} {verb}. <br/> <br/>Order number {number} "
                   f"created/updated")
        return jsonify(orderId=order.id, message=message), 201 if created else 200

    @bp.get("/orders")
    def find_orders():
        _query_int("goodsOwnerId", required=True)
        with sandbox.lock:
            return jsonify([order_model(g.account, o)
                            for o in order_query.find_orders(g.account, request.args)])

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

    @bp.delete("/returnOrders/<int:return_order_id>")
    def cancel_return_order(return_order_id: int):
        with sandbox.lock:
            ret = _return_order(return_order_id)
            if ret.status >= RETURNED and ret.status != RETURN_CANCELLED:
                raise Refused(f"Return order {ret.number} cannot be cancelled: goods arrived.")
            ret.status = RETURN_CANCELLED
        return jsonify(returnOrderId=return_order_id, message=f"Return order {ret.number} "
                                                              "cancelled.")

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
