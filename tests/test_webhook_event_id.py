"""X-Shopify-Event-Id: stored beside the webhook id; a second subscription's copy of one event
to one topic is answered 200, counted and logged, and queues nothing."""
from __future__ import annotations

import logging

from sqlmodel import select

from models import db
from models.delivery import WebhookDelivery
from tests.conftest import OTHER_SHOP, SHOP
from tests.test_webhooks_shopify import APPROVE

RECEIVED = 'swapline_webhooks_received_total{outcome="%s",source="shopify"}'


def rows() -> list[WebhookDelivery]:
    with db.session() as s:
        return list(s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def send(post_webhook, webhook_id: str, event_id: str | None, topic: str = "returns/reopen",
         shop: str = SHOP):
    headers = {"X-Shopify-Event-Id": event_id} if event_id else {"X-Shopify-Event-Id": ""}
    return post_webhook(topic, APPROVE, webhook_id=webhook_id, shop=shop, headers=headers)


def test_event_id_is_stored_beside_the_webhook_id(post_webhook, queued):
    assert send(post_webhook, "wh-1", "ev-1").status_code == 200
    [row] = rows()
    assert (row.delivery_id, row.event_id) == ("wh-1", "ev-1")
    assert queued() == [f"delivery-{row.id}"]


def test_second_subscription_copy_of_one_event_is_skipped_visibly(post_webhook, queued, client,
                                                                  caplog):
    caplog.set_level(logging.INFO, logger="blueprints.intake")
    first = send(post_webhook, "wh-1", "ev-1")
    second = send(post_webhook, "wh-2", "ev-1")  # same event, another subscription
    assert first.status_code == second.status_code == 200
    assert second.get_json() == {"status": "duplicate_event"}
    assert [r.delivery_id for r in rows()] == ["wh-1"] and len(queued()) == 1
    assert f'{RECEIVED % "duplicate_event"} 1' in client.get("/metrics").text.splitlines()
    assert any("second delivery of event ev-1" in r.getMessage() for r in caplog.records)


def test_a_retry_of_the_same_delivery_is_still_a_plain_duplicate(post_webhook, queued):
    send(post_webhook, "wh-1", "ev-1")
    assert send(post_webhook, "wh-1", "ev-1").get_json() == {"status": "duplicate"}
    assert len(rows()) == 1 and len(queued()) == 1


def test_same_event_under_another_topic_is_not_a_duplicate(post_webhook, queued):
    send(post_webhook, "wh-1", "ev-1", topic="returns/reopen")
    other = send(post_webhook, "wh-2", "ev-1", topic="returns/update")
    assert other.get_json() == {"status": "queued"}
    assert [(r.topic, r.event_id) for r in rows()] == [
        ("returns/reopen", "ev-1"), ("returns/update", "ev-1")]
    assert len(queued()) == 2


def test_same_event_id_at_another_shop_is_not_a_duplicate(post_webhook, queued):
    send(post_webhook, "wh-1", "ev-1")
    assert send(post_webhook, "wh-2", "ev-1", shop=OTHER_SHOP).get_json() == {"status": "queued"}
    assert len(rows()) == 2


def test_deliveries_without_an_event_id_never_clash(post_webhook, queued):
    # Older rows and senders without the header: deduplicated on the webhook id alone.
    assert send(post_webhook, "wh-1", None).get_json() == {"status": "queued"}
    assert send(post_webhook, "wh-2", None).get_json() == {"status": "queued"}
    assert [r.event_id for r in rows()] == [None, None] and len(queued()) == 2
