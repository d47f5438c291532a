"""A delivery's job takes its row in one UPDATE … RETURNING and hands its handler an object
holding the row's values, built without the model's constructor (models/rows.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobs import deliveries
from models import db
from models.delivery import WebhookDelivery, record_delivery
from tests.conftest import SHOP


def _record(payload: str = '{"id": 1}') -> int:
    with db.autocommit() as connection:
        return record_delivery(connection, source="shopify", delivery_id="take-1",
                               shop_domain=SHOP, topic="returns/approve", payload=payload)


def _attempts(delivery_id: int) -> int:
    with db.session() as s:
        return s.get(WebhookDelivery, delivery_id).attempts


def test_a_take_hands_the_handler_the_rows_values_and_counts_an_attempt(app):
    delivery_id = _record()
    taken = deliveries._take(delivery_id)
    assert isinstance(taken, WebhookDelivery)
    assert (taken.id, taken.source, taken.topic, taken.shop_domain, taken.payload) == (
        delivery_id, "shopify", "returns/approve", SHOP, '{"id": 1}')
    assert _attempts(delivery_id) == 1
    deliveries._mark_processed(delivery_id)
    assert deliveries._take(delivery_id) is None and _attempts(delivery_id) == 1


def test_a_row_object_is_readable_before_any_orm_statement_in_the_process():
    """A fresh worker's first job may build one before anything configured the mappers."""
    code = ("from models.delivery import WebhookDelivery\n"
            "from models.rows import unattached\n"
            "d = unattached(WebhookDelivery, {'id': 3, 'topic': 'returns/approve'})\n"
            "assert (d.id, d.topic) == (3, 'returns/approve'), (d.id, d.topic)\n")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
