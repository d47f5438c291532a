"""Notices about orders Swapline does not run: answered 200, nothing stored or queued, counted;
the first one still ticks the setup checklist, once. Notices about our orders: as before."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import select

from jobs.deliveries import process_delivery
from models import db
from models.exchange import ExchangeEvent
from models.settings import ShopSettings
from tests.conftest import OTHER_SHOP, SHOP
from tests.test_metrics import scrape  # noqa: F401 (a fixture)
from tests.test_webhooks_events import ORDER_EVENT, TOKEN, deliveries, our_exchange, post_ongoing

IGNORED = 'swapline_webhooks_received_total{outcome="ignored",source="ongoing"}'
# Another order of the goods owner reaching Sent: neither an exchange order nor an original.
FOREIGN = ORDER_EVENT | {"webhookEventId": 2001, "orderId": 777, "orderNumber": "2002",
                         "goodsOwnerOrderId": "5555"}


@pytest.fixture
def key(make_shop):
    return make_shop(SHOP, webhook_token=TOKEN, order_status_sent=450,
                     order_status_returned=800)[1]


@pytest.fixture
def settings_writes(app, monkeypatch):
    """UPDATE statements sent to shop_settings from now on."""
    yield from _spied(app, monkeypatch, lambda statement: statement.lstrip().upper().startswith(
        "UPDATE SHOP_SETTINGS"))


@pytest.fixture
def statements(app, monkeypatch):
    """Every statement the app sends to the database from now on."""
    yield from _spied(app, monkeypatch, lambda statement: True)


def _spied(app, monkeypatch, wanted):
    """The statements `wanted` picks, as both of the app's engines send them and as webhook
    intake sends its own on PostgreSQL (straight on psycopg: models/intake_db.py), while
    suspended."""
    seen: list[str] = []

    def spy(_conn, _cursor, statement, *_args):
        if wanted(statement):
            seen.append(statement)

    execute = psycopg.Connection.execute

    def spied_execute(connection, statement, *args, **kwargs):
        spy(None, None, statement)
        return execute(connection, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", spied_execute)
    engines = [app.extensions[db.EXTENSION], app.extensions[db.AUTOCOMMIT]]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", spy)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", spy)


def test_an_ignored_notice_costs_one_read_and_ours_one_read_and_one_insert(
        client, key, statements):
    our_exchange()
    assert post_ongoing(client, key, FOREIGN).get_json() == {"status": "ignored"}  # ticks
    statements.clear()
    assert post_ongoing(client, key, FOREIGN | {"webhookEventId": 3001}).get_json() == \
        {"status": "ignored"}
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
    statements.clear()
    assert post_ongoing(client, key, ORDER_EVENT).get_json() == {"status": "queued"}
    assert [s.lstrip().split()[0].upper() for s in statements] == ["SELECT", "INSERT"]


def checklist_ticked_at():
    with db.session() as s:
        return s.exec(select(ShopSettings)).one().first_ongoing_webhook_at


def timeline_names(exchange_id: int) -> list[str]:
    with db.session() as s:
        return [e.name for e in s.exec(select(ExchangeEvent)
                                       .where(ExchangeEvent.exchange_id == exchange_id))]


def test_a_foreign_sent_notice_is_answered_stored_nowhere_counted_and_ticks_once(
        client, key, queued, scrape, settings_writes):  # noqa: F811
    our_exchange()
    before = len(deliveries())
    response = post_ongoing(client, key, FOREIGN)
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert len(deliveries()) == before == 0 and queued() == []
    ticked = checklist_ticked_at()
    assert ticked is not None and len(settings_writes) == 1
    for n in range(3):  # later foreign notices: no write at all, the first tick stays
        assert post_ongoing(client, key, FOREIGN | {"webhookEventId": 3000 + n}).status_code \
            == 200
    assert checklist_ticked_at() == ticked and len(settings_writes) == 1
    assert deliveries() == [] and queued() == []
    assert scrape()[IGNORED] == 4


def test_a_notice_about_our_exchange_order_is_stored_and_handled(client, key, queued,
                                                                 settings_writes):
    exchange_id = our_exchange(state="fulfilled")
    response = post_ongoing(client, key, ORDER_EVENT)
    assert response.status_code == 200 and response.get_json() == {"status": "queued"}
    [row] = deliveries()
    assert (row.topic, row.delivery_id) == ("ongoing/order", "1001")
    assert queued() == [f"delivery-{row.id}"] and checklist_ticked_at() is not None
    process_delivery(row.id)
    assert deliveries()[0].processed_at is not None
    assert "Ongoing order status 450" in timeline_names(exchange_id)


@pytest.mark.parametrize("number", ["1001", "#1001"])
def test_a_notice_about_the_original_of_an_open_exchange_is_stored_and_handled(
        client, key, queued, number):
    exchange_id = our_exchange(state="parked")
    returned = FOREIGN | {"orderNumber": number, "orderStatus": {"number": 800}}
    assert post_ongoing(client, key, returned).get_json() == {"status": "queued"}
    [row] = deliveries()
    assert "original order returned: 1 exchange(s)" in process_delivery(row.id)
    assert "Ongoing original order returned" in timeline_names(exchange_id)


@pytest.mark.parametrize("state", ["completed", "cancelled"])
def test_the_original_of_a_closed_exchange_is_foreign_again(client, key, queued, state):
    our_exchange(state=state)
    returned = FOREIGN | {"orderNumber": "1001", "orderStatus": {"number": 800}}
    assert post_ongoing(client, key, returned).get_json() == {"status": "ignored"}
    assert deliveries() == [] and queued() == []


def test_our_closed_exchange_orders_notices_are_still_kept(client, key):
    """A completed exchange's order moving on (e.g. to Collected) goes on its timeline."""
    our_exchange(state="completed")
    moved = ORDER_EVENT | {"orderStatus": {"number": 500}}
    assert post_ongoing(client, key, moved).get_json() == {"status": "queued"}


def test_another_shops_orders_are_foreign_here(client, key, make_shop):
    our_exchange(OTHER_SHOP, state="parked")  # same order id and order name, other shop
    for notice in (ORDER_EVENT, FOREIGN | {"orderNumber": "1001"}):
        assert post_ongoing(client, key, notice).get_json() == {"status": "ignored"}
    assert deliveries() == []


@pytest.mark.parametrize("notice", [
    {"webhookEventId": 9, "webhookTemplate": "Article is returned", "isReturned": True},
    FOREIGN | {"orderId": "777"},
    FOREIGN | {"orderId": None},
    FOREIGN | {"orderId": True, "orderNumber": None},
    FOREIGN | {"orderNumber": ["1001"]},
    FOREIGN | {"orderNumber": "10\x0001"},
])
def test_notices_naming_no_order_of_ours_are_ignored(client, key, queued, notice, scrape):  # noqa: F811
    our_exchange(state="parked")
    response = post_ongoing(client, key, notice)
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert deliveries() == [] and queued() == []
    assert scrape()[IGNORED] == 1 and checklist_ticked_at() is not None


def test_an_order_number_given_as_a_number_still_finds_the_original(client, key):
    our_exchange(state="parked")
    returned = FOREIGN | {"orderNumber": 1001, "orderStatus": {"number": 800}}
    assert post_ongoing(client, key, returned).get_json() == {"status": "queued"}


@pytest.mark.parametrize("order_id", [2**31, 2**70, -2**63 - 1])
def test_an_order_id_out_of_range_is_nobody_s_even_before_the_token_is_checked(client, key,
                                                                                order_id):
    assert post_ongoing(client, key, FOREIGN | {"orderId": order_id}).get_json() == \
        {"status": "ignored"}
    wrong = client.post(f"/webhooks/ongoing/{key}", json=FOREIGN | {"orderId": order_id},
                        headers={"X-Auth-Token": "wrong"})
    assert wrong.status_code == 401 and deliveries() == []


def test_a_json_null_body_is_a_400_about_the_event_id(client, key):
    response = client.post(f"/webhooks/ongoing/{key}", data=b"null",
                           headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"})
    assert response.status_code == 400 and b"webhookEventId" in response.data
