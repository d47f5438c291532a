"""The connector check asks the database once, however many open orders Ongoing returns: the
orders of the shop's other exchanges are recognised in one query, not one each."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from jobs.exchange_guard import DOUBLE_SHIPMENT, check_before_release
from jobs.exchange_rules import PARKED, NeedsAttention
from models import db
from models.exchange import Exchange
from models.settings import settings_of
from tests.conftest import SHOP

CUSTOMER = {"customerNumber": "CN1", "name": "A Customer", "postCode": "11122"}


def _order(order_id: int, number: str) -> dict:
    return {"orderInfo": {"orderId": order_id, "orderNumber": number,
                          "orderStatus": {"number": 200}, "createdDate": "2026-11-01"},
            "consignee": CUSTOMER, "orderLines": [{"article": {"articleNumber": "SHIRT-L"}}]}


class FakeOngoing:
    """Answers the check's one question with the given open orders; nothing else is asked."""

    def __init__(self, orders: list[dict]):
        self.orders = orders

    def find_open_orders_since(self, since, skus, *, status_below):
        return self.orders

    def get_order(self, order_id):
        raise AssertionError("the exchange's own order is among the open ones")


def _exchange(n: int) -> Exchange:
    with db.session() as s:
        row = Exchange(shop_domain=SHOP, state=PARKED, return_gid=f"gid://shopify/Return/{n}",
                       order_gid=f"gid://shopify/Order/{n}", order_name=f"#{1000 + n}",
                       items=[{"sku": "SHIRT-L", "quantity": 1}],
                       ongoing_order_number=f"EXCH-{1000 + n}-1", ongoing_order_id=50000 + n)
        s.add(row)
    return row


@pytest.fixture
def exchange_queries(app):
    """SELECTs on the exchange table by Ongoing order id, from now on (either engine)."""
    seen: list[str] = []

    def spy(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and \
                "exchange.ongoing_order_id" in statement and "FROM exchange" in statement:
            seen.append(statement)

    engines = [app.extensions[db.EXTENSION], app.extensions[db.AUTOCOMMIT]]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", spy)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", spy)


@pytest.mark.parametrize("connector", [False, True])
def test_many_open_exchange_orders_cost_one_query(make_shop, exchange_queries, connector):
    make_shop(SHOP, order_status_sent=450)
    ours, *others = [_exchange(n) for n in range(1, 8)]
    orders = [_order(e.ongoing_order_id, e.ongoing_order_number) for e in [ours, *others]]
    if connector:
        orders.insert(3, _order(777, "1001-2"))
    check = lambda: check_before_release(  # noqa: E731
        ours, FakeOngoing(orders), settings_of(SHOP))
    if connector:
        with pytest.raises(NeedsAttention, match=DOUBLE_SHIPMENT) as raised:
            check()
        assert "Ongoing order 1001-2" in str(raised.value)
    else:
        check()
    assert len(exchange_queries) == 1, exchange_queries
