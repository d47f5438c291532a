"""Retention: processed deliveries and applied signals go after 30 days; nothing pending does."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from jobs.retention import prune
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange
from models.exchange_signal import ExchangeSignal
from models.types import utcnow
from tests.conftest import SHOP


def delivery(n: int, processed_days_ago: float | None) -> WebhookDelivery:
    done = None if processed_days_ago is None else utcnow() - timedelta(days=processed_days_ago)
    return WebhookDelivery(source="shopify", delivery_id=f"d-{n}", shop_domain=SHOP,
                           topic="returns/close", payload="{}", processed_at=done,
                           received_at=utcnow() - timedelta(days=40))


def test_prune_keeps_what_is_pending_or_recent(app, monkeypatch):
    monkeypatch.setattr("jobs.retention.PAGE", 2)  # several pages in one run
    with db.session() as s:
        for n, days in enumerate([31, 45, 60, 29, None, None]):
            s.add(delivery(n, days))
        exchange = Exchange(shop_domain=SHOP, return_gid="gid://shopify/Return/1",
                            order_gid="gid://shopify/Order/1", order_name="#1001",
                            state="completed")
        s.add(exchange)
        s.flush()
        for days in (31, 40, 2, None):
            s.add(ExchangeSignal(exchange_id=exchange.id, event="collect", done_at=None
                                 if days is None else utcnow() - timedelta(days=days),
                                 created_at=utcnow() - timedelta(days=50)))
    assert prune() == {"deliveries": 3, "signals": 2}
    with db.session() as s:
        left = sorted(d.delivery_id for d in s.exec(select(WebhookDelivery)))
        signals = s.exec(select(ExchangeSignal)).all()
        assert s.exec(select(Exchange)).one().state == "completed"  # the exchange stays
    assert left == ["d-3", "d-4", "d-5"]  # 29 days old, and the two never processed
    assert sorted(g.done_at is None for g in signals) == [False, True]
    assert prune() == {"deliveries": 0, "signals": 0}
