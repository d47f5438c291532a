"""The Ongoing client against the sandbox Ongoing: shapes, error family, retries, serialising."""
from __future__ import annotations

import base64
import itertools
import threading
import time
from contextlib import contextmanager

import pytest

from clients.deps import NO_METRICS
from clients.ongoing import (
    OngoingAuthError,
    OngoingClient,
    OngoingCredentials,
    OngoingError,
    OngoingNetworkError,
    OngoingNotFound,
    OngoingRateLimited,
    OngoingServerError,
    OngoingValidationError,
    process_serializer,
)
from clients.transport import Transport

PASSWORD = "s3cret-Ongoing-pw"
GOODS_OWNER = 17
_warehouses = itertools.count(1)


@pytest.fixture
def account(ongoing):
    """A fresh goods owner in its own warehouse system, with two articles in stock."""
    ongoing.reset()
    account = ongoing.add_account(f"wh{next(_warehouses)}", GOODS_OWNER, "WSI-swapline", PASSWORD)
    account.add_article("SHIRT-M", "Shirt, medium", 5)
    account.add_article("SHIRT-L", "Shirt, large", 0)
    return account


@pytest.fixture
def make_client(ongoing, account):
    """A client for the account; any credential or client option can be overridden."""

    def make(*, server="api", warehouse=None, password=PASSWORD, **options) -> OngoingClient:
        credentials = OngoingCredentials(server, warehouse or account.warehouse, GOODS_OWNER,
                                         account.username, password)
        options = {"backoff": 0.01, "timeout": (1.0, 2.0), **options}
        return OngoingClient(credentials, url_template=ongoing.url_template, **options)

    return make


@pytest.fixture
def client(make_client):
    return make_client()


def order_body(number="EXCH-1001-1", **overrides) -> dict:
    body = {"orderNumber": number, "deliveryDate": "2026-01-31", "goodsOwnerOrderId": "ret-77",
            "consignee": {"name": "Ada Customer", "address1": "Street 1", "postCode": "11122",
                          "city": "Stockholm", "countryCode": "SE"},
            "orderLines": [{"rowNumber": "1", "articleNumber": "SHIRT-M", "numberOfItems": 1}]}
    return {**body, **overrides}


def test_account_reads(client):
    warehouses = client.list_warehouses()
    assert [(w["id"], w["code"]) for w in warehouses] == [(1, "MAIN"), (2, "RET")]
    assert warehouses[0]["address"]["countryCode"] == "SE"
    statuses = {s["number"]: s["text"] for s in client.list_order_statuses()}
    assert statuses[200] == "Open" and statuses[450] == "Sent" and 1000 in statuses
    returns = {s["number"]: s["text"] for s in client.list_return_order_statuses()}
    assert returns[100] == "Notified" and returns[200] == "Returned"


def test_find_articles_repeats_the_article_numbers(client, ongoing):
    found = client.find_articles(["SHIRT-M", "SHIRT-L", "NOPE"])
    stock = {a["articleNumber"]: a["inventoryInfo"]["sellableNumberOfItems"] for a in found}
    assert stock == {"SHIRT-M": 5, "SHIRT-L": 0}
    assert all(isinstance(a["articleSystemId"], int) for a in found)
    assert client.find_articles([]) == []  # an empty filter would list every article
    assert ongoing.count("GET", "/articles") == 1


def test_create_order_then_read_it_by_id_and_number(client):
    created = client.create_or_update_order(order_body())
    assert isinstance(created["orderId"], int) and "<br/>" in created["message"]
    order = client.get_order(created["orderId"])
    info = order["orderInfo"]
    assert info["orderNumber"] == "EXCH-1001-1" and info["goodsOwnerOrderId"] == "ret-77"
    assert info["orderStatus"] == {"number": 200, "text": "Open"}
    assert info["warehouse"]["code"] == "MAIN" and order["consignee"]["city"] == "Stockholm"
    (line,) = order["orderLines"]
    assert line["article"]["articleNumber"] == "SHIRT-M" and line["orderedNumberOfItems"] == 1
    assert isinstance(line["id"], int) and order["tracking"] == []
    assert client.find_order_by_number("EXCH-1001-1") == order
    assert client.find_order_by_number("EXCH-none") is None


def test_put_twice_is_an_upsert_on_the_order_number(client, account):
    first = client.create_or_update_order(order_body())
    line_id = client.get_order(first["orderId"])["orderLines"][0]["id"]
    second = client.create_or_update_order(order_body(orderRemark="updated"))
    assert second["orderId"] == first["orderId"] and len(account.orders) == 1
    order = client.get_order(first["orderId"])
    assert order["orderInfo"]["orderRemark"] == "updated"
    assert order["orderLines"][0]["id"] == line_id  # line ids survive an update


def test_status_changes_and_cancel(client):
    order_id = client.create_or_update_order(order_body())["orderId"]
    assert client.set_order_status(order_id, 300)["orderId"] == order_id
    assert client.get_order(order_id)["orderInfo"]["orderStatus"]["number"] == 300
    assert client.cancel_order(order_id)["orderId"] == order_id
    assert client.get_order(order_id)["orderInfo"]["orderStatus"]["number"] == 1000
    assert client.cancel_order(order_id)["orderId"] == order_id  # cancelling again is a no-op


def test_a_picked_order_only_moves_forward(client, ongoing):
    order_id = client.create_or_update_order(order_body())["orderId"]
    ongoing.move_order(order_id, 400)
    ongoing.reset()
    with pytest.raises(OngoingValidationError, match="only move forward") as caught:
        client.set_order_status(order_id, 200)
    assert caught.value.status == 400 and ongoing.calls == [("PATCH", f"/orders/{order_id}/"
                                                                        "orderStatus")]
    with pytest.raises(OngoingValidationError, match="cannot be cancelled"):
        client.cancel_order(order_id)
    with pytest.raises(OngoingValidationError, match="cannot be updated"):
        client.create_or_update_order(order_body())
    client.set_order_status(order_id, 450)
    shipped = client.get_order(order_id)
    assert shipped["tracking"][0]["waybill"] and shipped["transporter"]["transporterName"]
    assert shipped["orderLines"][0]["pickedNumberOfItems"] == 1


def test_return_order_lifecycle(client):
    order = client.get_order(client.create_or_update_order(order_body())["orderId"])
    line = order["orderLines"][0]
    body = {"returnOrderNumber": "RET-1001-1",
            "customerOrder": {"orderId": order["orderInfo"]["orderId"]},
            "returnOrderLines": [{"returnOrderRowNumber": "1", "toBeReturnedNumberOfItems": 1,
                                  "customerOrderLine": {"orderLineId": line["id"]}}]}
    created = client.create_or_update_return_order(body)
    assert client.create_or_update_return_order(body)["returnOrderId"] == \
        created["returnOrderId"]
    ret = client.get_return_order(created["returnOrderId"])
    assert ret["returnOrderInfo"]["returnOrderStatus"] == {"number": 100, "text": "Notified"}
    assert ret["customerOrderInfo"]["orderNumber"] == "EXCH-1001-1"
    assert ret["returnOrderLines"][0]["customerOrderLine"]["orderLineId"] == line["id"]
    assert ret["returnOrderLines"][0]["article"]["articleNumber"] == "SHIRT-M"
    assert client.find_return_orders(return_order_numbers=["RET-1001-1"]) == [ret]
    assert client.find_return_orders(status_from=200) == []
    assert client.find_return_orders(return_order_numbers=[]) == []
    client.set_return_order_status(created["returnOrderId"], 200)
    (returned,) = client.find_return_orders(status_from=200, status_to=200)
    assert returned["returnOrderLines"][0]["returnedNumberOfItems"] == 1
    assert client.get_order(order["orderInfo"]["orderId"])["orderLines"][0][
        "returnedNumberOfItems"] == 1


def test_return_order_against_an_unknown_line_is_refused(client):
    order_id = client.create_or_update_order(order_body())["orderId"]
    body = {"returnOrderNumber": "RET-X", "customerOrder": {"orderId": order_id},
            "returnOrderLines": [{"returnOrderRowNumber": "1", "toBeReturnedNumberOfItems": 1,
                                  "customerOrderLine": {"orderLineId": 1}}]}
    with pytest.raises(OngoingValidationError, match="Order line 1 is not a line of order"):
        client.create_or_update_return_order(body)


# --- the error family -------------------------------------------------------------------------

def test_validation_error_carries_ongoings_message_and_is_not_retried(client, ongoing):
    body = order_body()
    del body["consignee"]
    with pytest.raises(OngoingValidationError) as caught:
        client.create_or_update_order(body)
    assert caught.value.status == 400 and "consignee" in caught.value.message
    assert not caught.value.retriable and ongoing.calls == [("PUT", "/orders")]


def test_wrong_password_is_an_auth_error_that_never_shows_the_password(make_client, ongoing):
    client = make_client(password="wrong-" + PASSWORD)
    with pytest.raises(OngoingAuthError) as caught:
        client.list_warehouses()
    exc = caught.value
    assert exc.status == 401 and not exc.forbidden and len(ongoing.calls) == 1
    basic = base64.b64encode(f"WSI-swapline:wrong-{PASSWORD}".encode()).decode()
    for text in (str(exc), repr(exc), repr(client), repr(client.credentials)):
        assert PASSWORD not in text and basic not in text and "Basic " not in text


def test_user_without_api_access_is_forbidden(make_client, ongoing, account):
    ongoing.add_account(account.warehouse, 99, "WSI-no-api", "pw", api_access=False)
    client = OngoingClient(OngoingCredentials("api", account.warehouse, 99, "WSI-no-api", "pw"),
                           url_template=ongoing.url_template)
    with pytest.raises(OngoingAuthError) as caught:
        client.list_order_statuses()
    assert caught.value.status == 403 and caught.value.forbidden


def test_unknown_warehouse_and_unknown_order_are_not_found(make_client, client, ongoing):
    with pytest.raises(OngoingNotFound, match="No warehouse system"):
        make_client(warehouse="nowhere").list_warehouses()
    with pytest.raises(OngoingNotFound) as caught:
        client.get_order(424242)
    assert caught.value.status == 404 and len(ongoing.calls) == 2


def test_rate_limit_waits_for_retry_after_then_succeeds(client, ongoing):
    ongoing.fail_next(1, 429, retry_after=0.2)
    started = time.monotonic()
    assert client.list_warehouses()
    assert time.monotonic() - started >= 0.2
    assert ongoing.count("GET", "/warehouses") == 2


def test_rate_limit_that_persists_is_raised_with_retry_after(client, ongoing):
    ongoing.fail_next(3, 429, retry_after=0.05)
    with pytest.raises(OngoingRateLimited) as caught:
        client.list_warehouses()
    assert caught.value.retriable and caught.value.retry_after == 0.05
    assert len(ongoing.calls) == 3  # the first try and max_retries=2 more


def test_server_error_is_retried_then_raised(client, ongoing):
    ongoing.fail_next(3, 500)
    with pytest.raises(OngoingServerError, match="An error has occurred") as caught:
        client.list_order_statuses()
    assert caught.value.retriable and len(ongoing.calls) == 3


def test_one_server_error_then_success(client, ongoing):
    ongoing.fail_next(1, 503)
    assert client.find_order_by_number("EXCH-none") is None
    assert len(ongoing.calls) == 2


def test_html_error_pages_are_reduced_to_text(make_client, ongoing):
    ongoing.fail_next(1, 502)
    with pytest.raises(OngoingServerError) as caught:
        make_client(max_retries=0).list_warehouses()
    assert caught.value.message == "502 Service unavailable IIS"


def test_timeouts_are_retried(make_client, ongoing):
    ongoing.delay_next(1, 0.5)
    assert make_client(timeout=(1.0, 0.2)).list_warehouses()
    assert len(ongoing.calls) == 2


def test_timeouts_that_persist_raise_a_network_error(make_client, ongoing):
    ongoing.delay_next(2, 0.5)
    with pytest.raises(OngoingNetworkError, match="timed out") as caught:
        make_client(timeout=(1.0, 0.2), max_retries=1).list_warehouses()
    assert caught.value.status is None and caught.value.retriable
    assert len(ongoing.calls) == 2


def test_unknown_server_is_a_server_error(make_client, ongoing):
    with pytest.raises(OngoingServerError, match="no Ongoing server 'wms9'") as caught:
        make_client(server="wms9", max_retries=0).list_warehouses()
    assert caught.value.status == 502 and len(ongoing.calls) == 1


def test_nothing_listening_is_a_network_error(account):
    credentials = OngoingCredentials("api", account.warehouse, GOODS_OWNER, "WSI", PASSWORD)
    client = OngoingClient(credentials, url_template="http://127.0.0.1:1/{server}/{warehouse}",
                           backoff=0.01)
    with pytest.raises(OngoingNetworkError) as caught:
        client.list_warehouses()
    assert caught.value.never_sent and PASSWORD not in str(caught.value)


def test_non_idempotent_calls_are_not_retried_once_sent(client, ongoing):
    ongoing.fail_next(1, 500)
    with pytest.raises(OngoingServerError):
        client._request("PUT", "/orders", json=order_body(goodsOwnerId=GOODS_OWNER),
                        idempotent=False)
    assert len(ongoing.calls) == 1


def test_bad_server_names_are_refused_before_any_call():
    with pytest.raises(OngoingValidationError, match="host name"):
        OngoingClient(OngoingCredentials("evil.example/x", "wh", 1, "WSI", "pw"),
                      url_template="https://{server}.ongoingsystems.se/{warehouse}/api/v1")


def test_base_url_comes_from_the_template():
    client = OngoingClient(OngoingCredentials("wms1", "demo", 1, "WSI", "pw"),
                           url_template="https://{server}.ongoingsystems.se/{warehouse}/api/v1/")
    assert client.base_url == "https://wms1.ongoingsystems.se/demo/api/v1"


def test_calls_for_one_goods_owner_never_overlap(make_client, ongoing):
    inside, seen = [], []

    @contextmanager
    def recording(key: str):
        with process_serializer(key):
            inside.append(key)
            seen.append(len(inside))
            try:
                yield
            finally:
                inside.pop()

    class CheckedTransport(Transport):
        def request(self, *args, **kwargs):
            assert len(inside) == 1, "an HTTP call ran outside the serializer"
            return super().request(*args, **kwargs)

    client = make_client(serializer=recording, http=CheckedTransport())
    ongoing.delay_next(6, 0.02)  # long enough that unserialised calls would overlap
    errors: list[Exception] = []

    def work():
        try:
            for _ in range(3):
                client.list_warehouses()
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(seen) == 6 and max(seen) == 1
    assert not inside and len(ongoing.calls) == 6


def test_errors_share_one_base():
    for error in (OngoingAuthError, OngoingNotFound, OngoingValidationError, OngoingRateLimited,
                  OngoingServerError, OngoingNetworkError):
        assert issubclass(error, OngoingError)


def test_a_broken_url_template_is_not_retried():
    client = OngoingClient(OngoingCredentials("api", "wh", 1, "WSI", PASSWORD),
                           url_template="ftp://{server}.example/{warehouse}", backoff=0.01)
    with pytest.raises(OngoingError, match="could not send") as caught:
        client.list_warehouses()
    assert not caught.value.retriable and PASSWORD not in str(caught.value)


class Recorded:
    """Metrics handed to a client (clients/deps.py): what it observed."""

    def __init__(self):
        self.seen: list[tuple[str, dict]] = []

    def observe(self, name: str, seconds: float, **labels: object) -> None:
        self.seen.append((name, labels))


def test_each_attempt_goes_to_the_metrics_the_client_was_given(make_client):
    metrics = Recorded()
    make_client(metrics=metrics).list_warehouses()
    assert metrics.seen == [("swapline_ongoing_call_seconds", {"method": "GET", "status": "2xx"})]


def test_without_the_app_a_client_records_nothing_and_still_works(client):
    assert client.metrics is NO_METRICS
    assert client.list_warehouses()
