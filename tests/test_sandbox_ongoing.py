"""The sandbox Ongoing itself: wire details the client tests do not reach, and the webhook hook."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server

AUTH = ("WSI-ongoing", "pw-ongoing")


@pytest.fixture(scope="module")
def account(ongoing):
    account = ongoing.add_account("sbx", 5, *AUTH, server="wms1")
    account.add_article("SKU-1", "Socks", 3)
    return account


@pytest.fixture
def api(ongoing, account):
    """Call the account's API directly: api("PUT", "/orders", json=...)."""
    base = f"{ongoing.origin}/wms1/{account.warehouse}/api/v1"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("auth", AUTH)
        return requests.request(method, base + path, timeout=5, **kwargs)

    return call


@pytest.fixture
def receiver():
    """A stand-in for Swapline's webhook endpoint that remembers what it was sent."""
    received: list[tuple[dict, dict]] = []
    app = Flask("receiver")

    @app.post("/hook")
    def hook():
        received.append((dict(request.headers), request.get_json()))
        return "", 200

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def put_order(api, number: str, **overrides) -> requests.Response:
    body = {"goodsOwnerId": 5, "orderNumber": number, "deliveryDate": "2026-02-01",
            "consignee": {"name": "Bo"}, "goodsOwnerOrderId": "gid://shopify/Return/1",
            "orderLines": [{"rowNumber": "1", "articleNumber": "SKU-1", "numberOfItems": 2}]}
    return api("PUT", "/orders", json={**body, **overrides})


def test_upsert_answers_201_then_200(api):
    assert put_order(api, "A-1").status_code == 201
    assert put_order(api, "A-1").status_code == 200


@pytest.mark.parametrize("overrides, words", [
    ({"goodsOwnerId": 6}, "goodsOwnerId 6"),
    ({"deliveryDate": "soon"}, "deliveryDate"),
    ({"orderLines": [{"rowNumber": "1"}]}, "orderLines[0].articleNumber"),
    ({"orderLines": [{"rowNumber": "1", "articleNumber": "SKU-1"}] * 2}, "more than once"),
    ({"orderLines": [{"rowNumber": "1", "articleNumber": "NOPE"}]}, "Article NOPE"),
    ({"orderLines": [{"rowNumber": 1, "articleNumber": "SKU-1"}]}, "rowNumber"),
])
def test_order_validation_names_the_problem(api, overrides, words):
    response = put_order(api, "V-1", **overrides)
    assert response.status_code == 400 and words in response.json()["message"]


def test_malformed_json_missing_auth_and_unknown_routes(api):
    broken = api("PUT", "/orders", data="{nope", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "JSON" in broken.json()["message"]
    assert api("GET", "/warehouses", auth=None).status_code == 401
    assert api("GET", "/articles").status_code == 400  # goodsOwnerId is required there
    assert api("GET", "/invoices").status_code == 404
    assert api("POST", "/orders").status_code == 405


def test_wrong_server_for_the_warehouse_is_not_found(ongoing, account):
    url = f"{ongoing.origin}/api/{account.warehouse}/api/v1/warehouses"
    assert requests.get(url, auth=AUTH, timeout=5).status_code == 404


def test_status_rules(api, ongoing, account):
    order_id = put_order(api, "S-1").json()["orderId"]

    def patch(number: int) -> requests.Response:
        return api("PATCH", f"/orders/{order_id}/orderStatus", json={"orderStatusNumber": number})

    assert patch(999).status_code == 400  # no such status
    assert patch(320).status_code == 200
    assert put_order(api, "S-1").status_code == 400  # allocated: no more updates
    assert api("DELETE", f"/orders/{order_id}").status_code == 400
    ongoing.move_order(order_id, 500)
    assert patch(450).status_code == 400
    assert patch(800).status_code == 400  # Ongoing's standard list has no Returned
    account.add_order_status(800, "Returned")  # a 3PL added it
    try:
        assert patch(800).status_code == 200
    finally:
        del account.order_statuses[800]


def test_move_order_to_sent_fires_the_webhook(api, ongoing, account, receiver):
    url, received = receiver
    order_id = put_order(api, "W-1").json()["orderId"]
    ongoing.register_webhook(account, url, "tok-123")
    assert ongoing.move_order(order_id, 300).status_code == 200
    response = ongoing.move_order(order_id, 450, tracking={"waybill": "WB1",
                                                           "trackingUrl": "https://t/WB1"})
    assert response.status_code == 200 and len(received) == 2
    (_, first), (headers, payload) = received
    assert headers["X-Auth-Token"] == "tok-123"
    assert payload["webhookEventId"] > first["webhookEventId"]
    assert payload["orderId"] == order_id and payload["orderNumber"] == "W-1"
    assert payload["goodsOwnerId"] == 5 and payload["system"] == account.warehouse
    assert payload["goodsOwnerOrderId"] == "gid://shopify/Return/1"
    assert payload["orderStatus"] == {"number": 450}
    assert payload["tracking"] == [{"trackingUrl": "https://t/WB1", "waybill": "WB1",
                                    "isReturn": False}]
    assert payload["parcels"][0]["tracking"]["trackingUrl"] == "https://t/WB1"
    stamp = payload["timestamp"]
    assert len(stamp.split(".")[1]) == 7 and datetime.fromisoformat(stamp).tzinfo is None
    for key in ("webhookOrdersId", "path", "byUser", "byComputer", "currentShipmentId",
                "webhookTemplate", "goodsOwnerName", "goodsOwnerClasses",
                "consigneeOrderNumber"):
        assert key in payload
    order = api("GET", f"/orders/{order_id}").json()
    assert order["orderInfo"]["wayBill"] == "WB1" and order["transporter"]["code"] == "PLAB"


def test_shipping_fields_are_stored_and_read_back_like_ongoing_s_example(api, ongoing, account):
    account.webhook = None  # an earlier test's receiver is gone
    response = put_order(api, "T-1", consignee={"customerNumber": "CN1", "name": "Name 1"},
                         transporter={"transporterCode": "PLAB", "transporterServiceCode": "P18"},
                         wayOfDelivery={"code": "SHP1", "name": "Shipment way 1"},
                         servicePointCode="3232323")
    assert response.status_code == 201
    assert "Customer with customer number 'CN1' created" in response.json()["message"]
    order_id = response.json()["orderId"]
    ongoing.move_order(order_id, 450, tracking={"waybill": "UA65456546"})
    order = api("GET", f"/orders/{order_id}").json()
    assert order["transporter"] == {"transporterName": "PostNord Sweden AB",
                                    "name": "PostNord Parcel (Nordic)", "code": "PLAB",
                                    "serviceCode": "P18"}
    info = order["orderInfo"]
    assert (info["wayBill"], info["servicePointCode"]) == ("UA65456546", "3232323")
    assert info["wayOfDelivery"] == {"code": "SHP1", "name": "Shipment way 1"}
    assert order["consignee"]["customerNumber"] == "CN1"
    assert [t["trackingUrl"] for t in order["tracking"]] == [None]  # no URL unless set


@pytest.mark.parametrize("overrides, field", [
    ({"transportCode": "PLAB"}, "transportCode"),
    ({"transporter": {"code": "PLAB"}}, "transporter.code"),
    ({"consignee": {"name": "Bo", "email": "bo@example.com"}}, "consignee.email"),
    ({"orderLines": [{"rowNumber": "1", "articleNumber": "SKU-1", "quantity": 1}]},
     "orderLines[0].quantity"),
])
def test_put_order_refuses_fields_ongoing_does_not_know(api, overrides, field):
    response = put_order(api, "U-1", **overrides)
    assert response.status_code == 400
    assert response.json()["message"] == f"The field {field} is not known."
