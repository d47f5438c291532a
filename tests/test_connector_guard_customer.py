"""Whose order is it: the connector check's customer rule (jobs/exchange_guard.py
`same_customer`), our consignee's key made once and compared with each open order's."""
from __future__ import annotations

import pytest

from jobs.exchange_guard import check_before_release, same_customer
from jobs.exchange_rules import NeedsAttention
from models.settings import settings_of
from tests.conftest import SHOP
from tests.test_connector_guard_query import FakeOngoing, _exchange, _order

OURS = {"customerNumber": "CN1", "name": "Alva Svensson", "postCode": "11122"}
NAMED = {"name": "Alva Svensson", "postCode": "11122"}  # no customer number


@pytest.mark.parametrize(("ours", "theirs", "same"), [
    (OURS, {"customerNumber": " cn 1 "}, True),  # case and spaces do not count
    (OURS, {**OURS, "customerNumber": "CN2"}, False),  # both numbers: they decide alone
    (OURS, {"customerNumber": "CN1", "name": "Other", "postCode": "99999"}, True),
    (OURS, {"name": " alva  SVENSSON", "postCode": "111 22"}, True),  # number on ours only
    (OURS, {"name": "Alva Svensson", "postCode": "11133"}, False),
    (OURS, {"customerNumber": " ", **NAMED}, True),  # a blank number is none
    (NAMED, {"customerNumber": "CN9", "name": "ALVA SVENSSON", "postCode": "11122"}, True),
    (NAMED, {"name": "Alva Svensson"}, False),
    ({"customerNumber": "", "name": "Alva Svensson"}, {"name": "Alva Svensson"}, False),
    ({"name": "Alva", "postCode": 11122}, {"name": "alva", "postCode": "11122"}, True),
    (OURS, None, False),
    (OURS, {}, False),
    (None, NAMED, False),
    (None, None, False),
])
def test_customer_number_first_else_name_and_post_code(ours, theirs, same):
    assert same_customer(ours)(theirs) is same


def test_one_key_compares_with_many_orders():
    same = same_customer(OURS)
    theirs = [{"customerNumber": "CN2"}, {"customerNumber": "cn1"}, NAMED,
              {**NAMED, "postCode": "1"}]
    assert [same(t) for t in theirs] == [False, True, True, False]


@pytest.mark.parametrize(("theirs", "alarm"), [
    ({"name": "a customer", "postCode": "111 22"}, True),  # no number: name and post code
    ({"customerNumber": "CN2", "name": "A Customer", "postCode": "11122"}, False),
    ({"customerNumber": "CN3"}, False),
])
def test_the_check_asks_the_rule_for_each_order_holding_the_item(make_shop, theirs, alarm):
    make_shop(SHOP, order_status_sent=450)
    ours = _exchange(1)
    other = {**_order(777, "1001-2"), "consignee": theirs}
    orders = [_order(ours.ongoing_order_id, ours.ongoing_order_number), other,
              {**_order(778, "1002-2"), "orderLines": [{"article": {"articleNumber": "CAP"}}]}]
    check = lambda: check_before_release(  # noqa: E731
        ours, FakeOngoing(orders), settings_of(SHOP))
    if alarm:
        with pytest.raises(NeedsAttention, match="Ongoing order 1001-2 .* holds SHIRT-L"):
            check()
    else:
        check()
