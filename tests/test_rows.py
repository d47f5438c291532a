"""Model objects built from Core rows (models/rows.py) are the objects the code had before:
equal to SQLModel's constructor (read_exchange) and to the ORM's load (settings_of, the Ongoing
webhook's read), field by field and type by type, on the test database (PostgreSQL when it
answers, else SQLite; SWAPLINE_TEST_SQLITE=1 forces SQLite)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select

from jobs import event_topics, exchange_triggers
from models import db
from models.exchange import Exchange, exchange_order_ids, read_exchange
from models.rows import new_values, unattached
from models.settings import ShopSettings, settings_of
from tests.conftest import SHOP

MOMENT = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def _exchange(**overrides) -> int:
    """An exchange with every column set (JSON lists of dicts, each moment, flags)."""
    moments = {name: MOMENT + timedelta(hours=n) for n, name in enumerate((
        "released_at", "sent_at", "fulfilled_at", "completed_at", "return_closed_at",
        "returned_in_ongoing_at"))}
    values = dict(
        shop_domain=SHOP, return_gid="gid://shopify/Return/9", return_name="#1001-R1",
        order_gid="gid://shopify/Order/9", order_name="#1001", state="parked",
        attention_reason="why", attention_step="create", attention_transient=True,
        items=[{"sku": "A-1", "quantity": 2, "price": "9.50", "title": "Å shirt"}],
        returned_items=[{"return_line_item_id": "r", "quantity": 1, "sku": "B"}],
        workflow="processing", ongoing_order_id=77, ongoing_order_number="EXCH-1001-1",
        ongoing_return_order_id=78, ongoing_status=200, line_item_gids=["gid://a", "gid://b"],
        fulfillment_order_gid="fo", hold_gid="h", fulfillment_gid="f", tracking_number="PN1",
        tracking_url="https://t", tracking_company="PostNord", balance="-1.25", currency="SEK",
        collection="captured", collected_amount="1.25", payment_reference="p",
        release_reason="closed", created_at=MOMENT, updated_at=MOMENT, **moments)
    with db.session() as s:
        exchange = Exchange(**(values | overrides))
        s.add(exchange)
        s.flush()
        return exchange.id


def _row(exchange_id: int):
    with db.transaction() as connection:
        return connection.execute(select(Exchange.__table__)
                                  .where(Exchange.__table__.c.id == exchange_id)).first()


def _same(made, expected) -> None:
    """Field by field, with types (a naive datetime or a str for a list would differ)."""
    for name in type(expected).model_fields:
        got, want = getattr(made, name), getattr(expected, name)
        assert (got, type(got)) == (want, type(want)), name
        if isinstance(want, datetime):
            assert got.tzinfo is not None and got.utcoffset() == timedelta(0), name
    assert made == expected
    assert made.model_dump() == expected.model_dump()
    assert made.__pydantic_extra__ == expected.__pydantic_extra__
    assert made.__pydantic_private__ == expected.__pydantic_private__


def test_an_exchange_from_its_row_is_the_constructed_one(app, make_shop):
    make_shop()
    for exchange_id in (_exchange(), _exchange(
            return_gid="gid://shopify/Return/10", items=[], returned_items=[], line_item_gids=[],
            attention_transient=False, **{name: None for name in (
                "return_name", "attention_reason", "ongoing_order_id", "balance", "sent_at",
                "released_at", "completed_at", "tracking_url")})):
        row = _row(exchange_id)
        constructed, made = Exchange(**row._mapping), unattached(Exchange, row._mapping)
        _same(made, constructed)
        assert made.__pydantic_fields_set__ == constructed.__pydantic_fields_set__
        assert inspect(made).transient and object_session(made) is None
        with db.transaction() as connection:
            _same(read_exchange(exchange_id, connection=connection), constructed)
        assert made.skus == constructed.skus and made.balance_decimal == \
            constructed.balance_decimal


def test_a_built_object_changes_like_a_constructed_one(app, make_shop):
    make_shop()
    row = _row(_exchange())
    made = unattached(Exchange, row._mapping)
    made.state, made.items = "released", [{"sku": "C"}]  # instrumented, as before
    assert (made.state, made.items) == ("released", [{"sku": "C"}])
    assert inspect(made).attrs.state.history.added == ["released"]
    assert "state" in made.__pydantic_fields_set__
    with db.transaction() as connection:
        assert read_exchange(made.id, connection=connection).state == "parked"  # a copy


def test_a_persistent_copy_updates_its_row_when_added_to_a_session(app, make_shop):
    make_shop()
    exchange_id = _exchange()
    made = unattached(Exchange, _row(exchange_id)._mapping, persistent=True)
    assert inspect(made).detached and inspect(made).key == (Exchange, (exchange_id,), None)
    made.state = "released"
    with db.session() as s:
        s.add(made)
    with db.session() as s:
        assert [e.state for e in s.exec(select(Exchange))] == ["released"]


def test_settings_read_with_core_are_the_orm_loaded_row(app, make_shop):
    make_shop(alert_emails=["ops@example.com", "b@example.com"], instant_exchange=True,
              order_status_sent=450, webhook_token="w" * 32, connection_ok_at=MOMENT)
    with db.session() as s:
        loaded = s.exec(select(ShopSettings)).one()
    made = settings_of(SHOP)
    _same(made, loaded)
    assert inspect(made).detached and inspect(made).key == inspect(loaded).key
    assert object_session(made) is None
    assert made.webhook_token() == "w" * 32  # a secret still opens (and rotates) on a copy
    set_committed_value(made, "warehouse_name", "kept")  # what a rotation does to the copy
    assert made.warehouse_name == "kept"


def test_settings_of_creates_the_row_on_first_use(app, make_shop):
    make_shop()
    with db.session() as s:
        s.delete(s.exec(select(ShopSettings)).one())
    made = settings_of(SHOP)
    assert made.id is not None and made.webhook_key
    assert settings_of(SHOP).id == made.id


def test_the_ongoing_webhooks_read_is_the_orm_loaded_pair(app, make_shop):
    make_shop(order_status_sent=450)
    exchange_id = _exchange()
    with db.session() as s:
        loaded = s.exec(select(ShopSettings)).one(), s.get(Exchange, exchange_id)
    settings, exchange = event_topics._settings_and_exchange(SHOP, 77)
    _same(settings, loaded[0])
    _same(exchange, loaded[1])
    assert inspect(exchange).detached
    assert event_topics._settings_and_exchange(SHOP, 78)[1] is None
    assert event_topics._settings_and_exchange(SHOP, None)[1] is None
    assert event_topics._settings_and_exchange("gone.myshopify.com", 77) is None


def test_new_values_are_what_the_constructor_fills(app):
    given = dict(shop_domain=SHOP, state="detected", return_gid="r", order_gid="o",
                 order_name="#1", items=[{"sku": "A"}])
    values, constructed = new_values(Exchange, **given), Exchange(**given)
    assert "id" not in values and set(values) == set(Exchange.__table__.columns.keys()) - {"id"}
    for name, value in values.items():
        if name in ("created_at", "updated_at"):
            assert abs(value - getattr(constructed, name)) < timedelta(seconds=5)
            assert value.tzinfo is not None
        else:
            assert (value, type(value)) == (getattr(constructed, name),
                                            type(getattr(constructed, name))), name
    assert new_values(Exchange)["returned_items"] is not new_values(Exchange)["returned_items"]


def _return(gid: str) -> dict:
    return {"id": gid, "name": "#1001-R1", "order": {"id": "gid://shopify/Order/9",
                                                     "name": "#1001"},
            "exchangeLineItems": {"nodes": [{"id": "x1", "variantId": None, "lineItems": [],
                                             "processedQuantity": 0,
                                             "unprocessedQuantity": 1}]},
            "returnLineItems": {"nodes": []}}


def test_a_detected_exchange_is_inserted_once_and_numbered(app, make_shop, monkeypatch):
    make_shop(order_number_prefix="SW")
    monkeypatch.setattr(exchange_triggers.shop_api, "variants", lambda domain, ids: {})
    made = exchange_triggers._new_exchange(SHOP, _return("gid://shopify/Return/1"))
    assert exchange_triggers._new_exchange(SHOP, _return("gid://shopify/Return/1")) is None
    second = exchange_triggers._new_exchange(SHOP, _return("gid://shopify/Return/2"))
    with db.session() as s:
        loaded = s.get(Exchange, made.id)
        assert len(s.exec(select(Exchange)).all()) == 2
    _same(made, loaded)
    assert inspect(made).detached and object_session(made) is None
    assert (made.ongoing_order_number, second.ongoing_order_number) == ("SW-1001-1", "SW-1001-2")
    assert (made.state, made.workflow, made.items[0]["quantity"]) == ("detected", "processing", 1)


def test_exchange_order_ids_finds_the_shops_among_many(app, make_shop):
    make_shop()
    make_shop("other-shop.myshopify.com")
    _exchange()  # Ongoing order 77
    _exchange(return_gid="gid://shopify/Return/2", ongoing_order_id=2**31 - 1)
    _exchange(shop_domain="other-shop.myshopify.com", ongoing_order_id=5)
    asked = [*range(1000, 1300), 77, 5, 2**31 - 1]
    with db.autocommit() as connection:
        assert exchange_order_ids(SHOP, asked, connection=connection) == {77, 2**31 - 1}
        assert exchange_order_ids(SHOP, [77], connection=connection) == {77}
        assert exchange_order_ids(SHOP, [], connection=connection) == set()
