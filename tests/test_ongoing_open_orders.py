"""GET /orders with the guard's filters: the sandbox answers them as the spec declares (and
refuses what it does not know), and OngoingClient.find_open_orders_since pages through them."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from clients import ongoing as ongoing_module
from clients.ongoing import OngoingClient, OngoingCredentials, OngoingValidationError

AUTH = ("WSI-guard", "pw-guard-" + "x" * 12)
WHO = {"customerNumber": "C1", "name": "Bo", "postCode": "11122"}


@pytest.fixture
def account(ongoing):
    ongoing.reset()
    account = ongoing.add_account(f"wh{uuid.uuid4().hex[:8]}", 7, *AUTH)
    for sku in ("A", "B", "C"):
        account.add_article(sku, sku, 10)
    return account


@pytest.fixture
def client(ongoing, account):
    return OngoingClient(OngoingCredentials("api", account.warehouse, 7, *AUTH),
                         url_template=ongoing.url_template, backoff=0)


def get(ongoing, account, **params) -> requests.Response:
    return requests.get(f"{ongoing.origin}/api/{account.warehouse}/api/v1/orders",
                        params={"goodsOwnerId": 7, **params}, auth=AUTH, timeout=5)


def numbers(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [o["orderInfo"]["orderNumber"] for o in response.json()]


def test_the_filters_select_as_declared(ongoing, account):
    now = datetime.now(UTC)
    ongoing.add_connector_order(account, "old", WHO, [("A", 1)], created=now - timedelta(days=3))
    ongoing.add_connector_order(account, "new-a", WHO, [("A", 1)])
    ongoing.add_connector_order(account, "new-b", WHO, [("B", 1), ("C", 2)])
    ongoing.add_connector_order(account, "sent-a", WHO, [("A", 1)], status=450)
    since = (now - timedelta(hours=1)).isoformat()
    assert numbers(get(ongoing, account, orderCreatedTimeFrom=since)) == \
        ["new-a", "new-b", "sent-a"]
    assert numbers(get(ongoing, account, articleNumbers=["A", "C"], orderStatusTo=449)) == \
        ["old", "new-a", "new-b"]
    assert numbers(get(ongoing, account, articleNumbers="A,C")) == []  # CSV matches nothing
    assert numbers(get(ongoing, account, orderStatusFrom=450)) == ["sent-a"]
    until = (now - timedelta(days=1)).isoformat()
    assert numbers(get(ongoing, account, orderCreatedTimeTo=until)) == ["old"]
    first_two = get(ongoing, account, maxOrdersToGet=2).json()
    assert [o["orderInfo"]["orderNumber"] for o in first_two] == ["old", "new-a"]
    after = first_two[-1]["orderInfo"]["orderId"] + 1
    assert numbers(get(ongoing, account, orderIdFrom=after, maxOrdersToGet=2)) == \
        ["new-b", "sent-a"]


def test_unknown_parameters_and_zoneless_times_are_refused_loudly(ongoing, account):
    refused = get(ongoing, account, orderUpdatedTimeFrom="2026-01-01T00:00:00+00:00")
    assert refused.status_code == 400
    assert "does not implement the parameter orderUpdatedTimeFrom" in refused.json()["message"]
    assert get(ongoing, account, page=2).status_code == 400  # real Ongoing ignores it silently
    zoneless = get(ongoing, account, orderCreatedTimeFrom="2026-01-01T00:00:00")
    assert zoneless.status_code == 400 and "UTC offset" in zoneless.json()["message"]
    assert get(ongoing, account, orderStatusTo="x").status_code == 400


def test_find_open_orders_since_pages_with_one_filtered_query(ongoing, account, client,
                                                              monkeypatch):
    monkeypatch.setattr(ongoing_module, "ORDERS_PAGE", 2)
    month_ago = datetime.now(UTC) - timedelta(days=30)  # no time limit on orderCreatedTimeFrom
    ongoing.add_connector_order(account, "before", WHO, [("A", 1)],
                                created=month_ago - timedelta(minutes=1))
    for n in range(5):
        ongoing.add_connector_order(account, f"o{n}", WHO, [("A", 1)],
                                    created=month_ago + timedelta(days=n))
    ongoing.add_connector_order(account, "other-sku", WHO, [("B", 1)])
    ongoing.add_connector_order(account, "sent", WHO, [("A", 1)], status=450)
    ongoing.add_connector_order(account, "cancelled", WHO, [("A", 1)], status=1000)
    ongoing.reset()
    found = client.find_open_orders_since(month_ago, ["A"], status_below=450)
    assert [o["orderInfo"]["orderNumber"] for o in found] == [f"o{n}" for n in range(5)]
    assert ongoing.count("GET", "/orders") == 3  # pages of 2, 2 and 1
    assert client.find_open_orders_since(month_ago, [], status_below=450) == []
    assert ongoing.count("GET", "/orders") == 3  # no SKU, no call (it would return everything)


def test_a_refused_query_is_a_validation_error(ongoing, account, client):
    ongoing.fail_next(1, status=400)
    with pytest.raises(OngoingValidationError):
        client.find_open_orders_since(datetime.now(UTC), ["A"], status_below=450)
