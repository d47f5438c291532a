"""Ongoing's order webhook and the return-events endpoint: verify, record once, enqueue, 200."""
from __future__ import annotations

import json

import pytest
from sqlmodel import select

from blueprints.return_events import signature
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange
from models.settings import ShopSettings
from tests.conftest import OTHER_SHOP, SHOP

TOKEN = "ongoing-token-" + "a" * 30
SECRET = "events-secret-" + "b" * 30
ORDER_EVENT = {"webhookOrdersId": 3, "webhookEventId": 1001, "system": "returnflows",
               "timestamp": "2026-11-27T12:00:00.0000000", "orderId": 50161,
               "orderNumber": "EXCH-1001-1", "goodsOwnerId": 7, "goodsOwnerOrderId":
               "gid://shopify/Return/111", "orderStatus": {"number": 450}, "tracking": [],
               "parcels": []}
RETURN_EVENT = {"id": "evt-1", "event": "shipment.event.in_transit",
                "return_id": "gid://shopify/Return/111", "occurred_at": "2026-11-27T12:00:00Z"}


def deliveries() -> list[WebhookDelivery]:
    with db.session() as s:
        return list(s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def our_exchange(domain: str = SHOP, state: str = "released", **values) -> int:
    """The shop's exchange whose Ongoing order ORDER_EVENT reports (original order 1001)."""
    values = {"return_gid": "gid://shopify/Return/111", "order_gid": "gid://shopify/Order/1",
              "order_name": "#1001", "ongoing_order_id": ORDER_EVENT["orderId"],
              "ongoing_order_number": ORDER_EVENT["orderNumber"]} | values
    with db.session() as s:
        exchange = Exchange(shop_domain=domain, state=state, **values)
        s.add(exchange)
        s.flush()
        return exchange.id


@pytest.fixture
def shop_key(make_shop):
    key = make_shop(SHOP, webhook_token=TOKEN, events_secret=SECRET)[1]
    our_exchange()
    return key


def post_ongoing(client, key, payload, token=TOKEN, raw=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Auth-Token"] = token
    data = raw if raw is not None else json.dumps(payload)
    return client.post(f"/webhooks/ongoing/{key}", data=data, headers=headers)


def test_valid_ongoing_event_is_recorded_queued_and_ticks_the_checklist(client, shop_key,
                                                                      queued, run_jobs):
    response = post_ongoing(client, shop_key, ORDER_EVENT)
    assert response.status_code == 200
    [row] = deliveries()
    assert (row.source, row.delivery_id, row.shop_domain, row.topic) == \
        ("ongoing", "1001", SHOP, "ongoing/order")
    assert queued() == [f"delivery-{row.id}"]
    run_jobs()
    with db.session() as s:
        settings = s.exec(select(ShopSettings)).one()
    assert settings.first_ongoing_webhook_at is not None
    assert deliveries()[0].processed_at is not None


@pytest.mark.parametrize("token", [None, "", "wrong-token-" + "c" * 30, TOKEN + "x"])
def test_missing_or_wrong_token_is_401_and_stores_nothing(client, shop_key, queued, token):
    assert post_ongoing(client, shop_key, ORDER_EVENT, token=token).status_code == 401
    assert deliveries() == [] and queued() == []


def test_shop_without_a_token_refuses_everything(client, make_shop):
    _, key = make_shop(SHOP)
    assert post_ongoing(client, key, ORDER_EVENT, token="").status_code == 401
    assert deliveries() == []


def test_unknown_key_is_404(client, shop_key):
    assert post_ongoing(client, "no-such-key", ORDER_EVENT).status_code == 404
    assert post_ongoing(client, "x" * 300, ORDER_EVENT).status_code == 404
    assert deliveries() == []


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", json.dumps({"orderId": 1}),
                                 json.dumps({"webhookEventId": True}), "\xff"])
def test_malformed_body_is_400(client, shop_key, raw):
    assert post_ongoing(client, shop_key, None, raw=raw).status_code == 400
    assert deliveries() == []


def test_duplicate_event_is_a_no_op(client, shop_key, queued):
    assert post_ongoing(client, shop_key, ORDER_EVENT).status_code == 200
    second = post_ongoing(client, shop_key, ORDER_EVENT)
    assert second.status_code == 200 and second.get_json() == {"status": "duplicate"}
    assert len(deliveries()) == 1 and len(queued()) == 1


def test_same_event_id_from_two_shops_is_two_deliveries(client, make_shop):
    _, key_a = make_shop(SHOP, webhook_token=TOKEN)
    _, key_b = make_shop(OTHER_SHOP, webhook_token=TOKEN + "b")
    our_exchange(SHOP)
    our_exchange(OTHER_SHOP)
    assert post_ongoing(client, key_a, ORDER_EVENT).status_code == 200
    assert post_ongoing(client, key_b, ORDER_EVENT, token=TOKEN + "b").status_code == 200
    assert {d.shop_domain for d in deliveries()} == {SHOP, OTHER_SHOP}


def test_a_shops_token_does_not_open_another_shops_url(client, make_shop):
    _, key_a = make_shop(SHOP, webhook_token=TOKEN)
    make_shop(OTHER_SHOP, webhook_token=TOKEN + "b")
    assert post_ongoing(client, key_a, ORDER_EVENT, token=TOKEN + "b").status_code == 401


def post_event(client, key, payload, secret=SECRET, raw=None, sign=True):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if sign:
        headers["X-Swapline-Signature"] = signature(body, secret)
    return client.post(f"/webhooks/return-events/{key}", data=body, headers=headers)


def test_signed_return_event_is_recorded_and_processed(client, shop_key, queued, run_jobs):
    assert post_event(client, shop_key, RETURN_EVENT).status_code == 200
    [row] = deliveries()
    assert (row.source, row.delivery_id, row.topic) == \
        ("return_events", "evt-1", "shipment.event.in_transit")
    run_jobs()
    assert deliveries()[0].processed_at is not None


def test_order_name_may_stand_in_for_the_return_id(client, shop_key):
    event = {k: v for k, v in RETURN_EVENT.items() if k != "return_id"} | {"order_name": "#1001"}
    assert post_event(client, shop_key, event).status_code == 200


def test_unknown_event_is_recorded_and_ignored(client, shop_key, run_jobs):
    unknown = RETURN_EVENT | {"event": "label.printed"}
    assert post_event(client, shop_key, unknown).status_code == 200
    run_jobs()
    assert deliveries()[0].processed_at is not None


@pytest.mark.parametrize("secret,sign", [("wrong-secret-" + "d" * 30, True), (SECRET, False)])
def test_bad_or_missing_signature_is_401(client, shop_key, secret, sign):
    assert post_event(client, shop_key, RETURN_EVENT, secret=secret, sign=sign).status_code == 401
    assert deliveries() == []


def test_body_changed_after_signing_is_401(client, shop_key):
    body = json.dumps(RETURN_EVENT).encode()
    headers = {"X-Swapline-Signature": signature(body, SECRET)}
    response = client.post(f"/webhooks/return-events/{shop_key}",
                           data=body.replace(b"evt-1", b"evt-2"), headers=headers)
    assert response.status_code == 401 and deliveries() == []


@pytest.mark.parametrize("event", [
    {**RETURN_EVENT, "id": ""},
    {k: v for k, v in RETURN_EVENT.items() if k != "event"},
    {k: v for k, v in RETURN_EVENT.items() if k != "return_id"},
    {**RETURN_EVENT, "return_id": "gid://shopify/Order/1"},
    {**RETURN_EVENT, "occurred_at": "yesterday"},
])
def test_incomplete_events_are_400(client, shop_key, event):
    assert post_event(client, shop_key, event).status_code == 400
    assert deliveries() == []


def test_duplicate_return_event_is_a_no_op(client, shop_key, queued):
    post_event(client, shop_key, RETURN_EVENT)
    assert post_event(client, shop_key, RETURN_EVENT).get_json() == {"status": "duplicate"}
    assert len(deliveries()) == 1 and len(queued()) == 1


def test_shop_without_an_events_secret_refuses(client, make_shop):
    _, key = make_shop(SHOP, webhook_token=TOKEN)
    assert post_event(client, key, RETURN_EVENT, secret="").status_code == 401


def test_shop_redact_deletes_the_settings_too(client, make_shop, post_webhook, run_jobs):
    make_shop(SHOP, webhook_token=TOKEN)
    make_shop(OTHER_SHOP, webhook_token=TOKEN + "b")
    post_webhook("shop/redact", {"shop_id": 1, "shop_domain": SHOP})
    run_jobs()
    with db.session() as s:
        remaining = s.exec(select(ShopSettings)).all()
    assert len(remaining) == 1
