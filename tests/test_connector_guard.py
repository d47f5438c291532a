"""Never shipped twice (issue 13): create tags the Shopify order for the 3PL's connector to skip;
release first looks in Ongoing for another open order of the same customer with the exchange's
item, and waits in needs attention when it finds one. Both sandboxes, the real lifecycle."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import render_template
from sqlmodel import select

from jobs.exchange_guard import DOUBLE_SHIPMENT
from models import db
from models.settings import ShopSettings, settings_of
from tests.lifecycle_world import EXCHANGE_SKU, RETURNED_SKU

CONNECTOR_CUSTOMER = {"customerNumber": "CN1", "name": "A Customer", "address1": "Street 1",
                      "postCode": "11122", "city": "Stockholm", "countryCode": "SE"}


def _set_tag(world, tag: str) -> None:
    with db.session() as s:
        s.exec(select(ShopSettings).where(
            ShopSettings.id == settings_of(world.domain).id)).one().exchange_tag = tag


def _order_tags(world, tags: list[str]) -> None:
    """The Shopify order already carries these tags (set in the sandbox, as admin would)."""
    with world.store.lock:
        number = int(world.order["id"].rsplit("/", 1)[1])
        world.store.shops[world.domain].orders[number].tags = list(tags)


def _connector_order(world, number: str = "1001-2", *, consignee=None, sku=EXCHANGE_SKU,
                     created=None, status=None) -> int:
    return world.ongoing.add_connector_order(world.account, number,
                                             consignee or CONNECTOR_CUSTOMER, [(sku, 1)],
                                             created=created, status=status)


def _status(world) -> int:
    return world.ongoing_order()["orderInfo"]["orderStatus"]["number"]


def _press(world, htmx, action: str) -> str:
    exchange_id = world.exchange().id
    response = htmx("POST", f"/exchanges/{exchange_id}/{action}", shop=world.domain)
    assert response.status_code == 200
    world.run_jobs()
    return response.get_data(as_text=True)


# --- prevent: the tag ----------------------------------------------------------------------

def test_create_tags_the_shopify_order(world):
    world.parked()
    assert world.shopify_order()["tags"] == ["swapline-exchange"]
    [tagged] = [e for e in world.timeline() if e.name == "Shopify tagsAdd"]
    assert (tagged.kind, tagged.outcome) == ("call", "order tagged swapline-exchange")
    [sent] = world.store.variables("TagsAdd", world.domain)
    assert sent == {"id": world.order["id"], "tags": ["swapline-exchange"]}


def test_the_configured_tag_joins_the_orders_own_tags(world):
    world.setup()
    _set_tag(world, "3pl-skip")
    _order_tags(world, ["VIP", "gift"])
    world.approve()
    world.run_jobs()
    assert world.exchange().state == "parked"
    assert world.shopify_order()["tags"] == ["3pl-skip", "gift", "VIP"]  # Shopify's order


@pytest.mark.parametrize("refusal", ["user_error", "access_denied"])
def test_a_refused_tag_is_a_warning_and_the_exchange_goes_on(world, refusal):
    if refusal == "access_denied":  # the shop took write_orders back (read_orders kept)
        world.setup(granted={"write_returns", "read_orders", "read_products",
                             "write_merchant_managed_fulfillment_orders", "read_all_orders"})
    else:
        world.setup()
        _order_tags(world, [f"t{n}" for n in range(250)])  # Shopify's limit: 250 tags
    world.approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "parked", exchange.attention_reason
    [warning] = [e for e in world.timeline() if e.name == "Shopify tagsAdd"]
    assert warning.kind == "warning"
    expected = "Tags cannot be more than 250" if refusal == "user_error" else "write_orders"
    assert "order not tagged 'swapline-exchange'" in warning.outcome
    assert expected in warning.outcome
    assert "swapline-exchange" not in world.shopify_order()["tags"]
    assert any(e.name == "Shopify fulfillmentOrderHold" for e in world.timeline())


def test_the_rule_for_the_3pl_names_the_configured_tag(app):
    with app.test_request_context():
        html = render_template("_partials/connector_rule.html", tag="3pl-<skip>")
    assert "<code>3pl-&lt;skip&gt;</code>" in html  # escaped, like every value on a page
    assert "<code>swapline-exchange</code>" in html and "ON_HOLD" in html  # the hold handle
    assert "do not import" in html


@pytest.mark.parametrize(("given", "saved", "error"), [
    ("3pl-skip", "3pl-skip", None),
    ("  ", "swapline-exchange", None),  # empty: the default
    ("x" * 40, "x" * 40, None),
    ("x" * 41, None, "40 characters"),
    ("swapline,exchange", None, "no comma"),
])
def test_the_exchange_tag_is_checked_like_a_shopify_tag(valid_form, given, saved, error):
    from models.settings_form import clean

    values, errors = clean({**valid_form, "exchange_tag": given}, None)
    if error:
        assert error in errors["exchange_tag"]
    else:
        assert "exchange_tag" not in errors and values["exchange_tag"] == saved


def test_a_form_without_the_tag_keeps_the_saved_one(valid_form):
    from models.settings_form import clean

    saved = ShopSettings(shop_id=1, webhook_key="k", exchange_tag="kept-tag")
    assert clean(valid_form, saved)[0]["exchange_tag"] == "kept-tag"


# --- detect: the check before release ------------------------------------------------------

def test_a_connector_order_stops_the_release_and_retry_releases_once_it_is_cancelled(
        world, htmx):
    world.parked()
    other = _connector_order(world, "1001-2")
    world.close()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "needs_attention"
    assert exchange.attention_reason.startswith(f"{DOUBLE_SHIPMENT} Ongoing order 1001-2 ")
    assert EXCHANGE_SKU in exchange.attention_reason
    assert _status(world) == 200 and exchange.released_at is None  # not released
    html = _press(world, htmx, "retry")  # nothing changed: still stopped
    assert world.exchange().state == "needs_attention"
    assert 'id="exchange-release"' in html and 'id="exchange-cancel"' in html
    world.ongoing.move_order(other, 1000)  # a person cancels the connector's order in Ongoing
    _press(world, htmx, "retry")
    exchange = world.exchange()
    assert exchange.state == "released", exchange.attention_reason
    assert _status(world) == 300
    assert any(e.name == "Connector check" and "no other open Ongoing order" in e.outcome
               for e in world.timeline())


def test_release_now_ships_without_the_check(world, htmx):
    world.parked()
    _connector_order(world, "1001-2")
    world.close()
    world.run_jobs()
    assert world.exchange().state == "needs_attention"
    _press(world, htmx, "release")
    exchange = world.exchange()
    assert exchange.state == "released", exchange.attention_reason
    assert _status(world) == 300
    [skipped] = [e for e in world.timeline() if e.name == "Connector check"]
    assert skipped.outcome == "skipped: released by the merchant (Release now)"


def test_release_now_before_any_check_releases_too(world, htmx):
    world.parked()
    _connector_order(world, "1001-2")
    _press(world, htmx, "release")
    assert world.exchange().state == "released"


@pytest.mark.parametrize("case", ["other_customer", "other_sku", "before_exchange",
                                  "already_sent", "cancelled"])
def test_no_false_alarm(world, case):
    exchange = world.parked()
    if case == "other_customer":
        _connector_order(world, consignee={**CONNECTOR_CUSTOMER, "customerNumber": "CN2"})
    elif case == "other_sku":
        _connector_order(world, sku=RETURNED_SKU)
    elif case == "before_exchange":
        _connector_order(world, created=exchange.created_at - timedelta(minutes=5))
    elif case == "already_sent":
        _connector_order(world, status=450)
    else:
        _connector_order(world, status=1000)
    world.close()
    world.run_jobs()
    assert world.exchange().state == "released", world.exchange().attention_reason
    assert _status(world) == 300


@pytest.mark.parametrize(("consignee", "alarm"), [
    ({"name": " alva  SVENSSON", "postCode": "111 22"}, True),  # case and spaces do not count
    ({"name": "Alva Svensson", "postCode": "11133"}, False),
])
def test_without_customer_numbers_name_and_post_code_decide(world, consignee, alarm):
    world.parked(original=False)  # the exchange ships to Shopify's address: no customer no.
    _connector_order(world, consignee={**consignee, "address1": "Storgatan 1",
                                       "city": "Stockholm", "countryCode": "SE"})
    world.close()
    world.run_jobs()
    exchange = world.exchange()
    assert (exchange.state == "needs_attention") is alarm, exchange.attention_reason
    if alarm:
        assert exchange.attention_reason.startswith(DOUBLE_SHIPMENT)


def test_another_exchange_of_the_same_customer_is_no_double_shipment(world):
    from clients.ongoing_accounts import client_for_shop
    from models.exchange import Exchange

    world.parked()
    first = world.ret
    # A second exchange of the same customer (CN1, the same item), its original in Ongoing too.
    client = client_for_shop(settings_of(world.domain))
    original = client.create_or_update_order({
        "orderNumber": "1002", "deliveryDate": "2026-11-01T00:00:00Z",
        "consignee": CONNECTOR_CUSTOMER,
        "orderLines": [{"rowNumber": "1", "articleNumber": RETURNED_SKU, "numberOfItems": 1}]})
    world.ongoing.move_order(original["orderId"], 450)
    second = world.store.create_order(world.domain, items=[(RETURNED_SKU, 1)], name="#1002")
    world.ret = world.ret_for(second)
    world.return_webhook("returns/approve")
    world.run_jobs()
    world.ret = first  # the first return closes: its check sees the second exchange's order
    world.close()
    world.run_jobs()
    with db.session() as s:
        rows = s.exec(select(Exchange).where(Exchange.shop_domain == world.domain)
                      .order_by(Exchange.id)).all()
    assert [r.state for r in rows] == ["released", "parked"], rows[0].attention_reason
    assert rows[1].ongoing_order_id in world.account.orders


def test_a_possible_double_shipment_alerts_as_its_own_condition(world, app, smtp):
    """The stopped release reaches the merchant: one mail under the double-shipment condition,
    naming the Shopify order and the other Ongoing order."""
    from models.alert_form import save_alerts
    from tests.test_alerts import use_settings

    use_settings(app, smtp_url=smtp.url, mail_from="Swapline <alerts@swapline.test>")
    world.setup()
    assert save_alerts(world.domain, {"alert_emails": "ops@shop.se", "alert_webhook_url": ""},
                       allow_local=True) == {}
    world.approve()
    world.run_jobs()
    assert world.exchange().state == "parked"
    _connector_order(world, "1001-2")
    world.close()
    world.run_jobs()
    [mail] = smtp.mails()
    assert "Possible double shipment" in mail.subject and "#1001" in mail.subject
    assert "Ongoing order 1001-2" in mail.text
