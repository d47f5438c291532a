"""Settings pages: test connection, live choices, errors beside fields, write-only secrets."""
from __future__ import annotations

import logging
import re
from html import unescape

import pytest
from sqlmodel import select

from models import db
from models.settings import ShopSettings
from tests.conftest import OTHER_SHOP, SETTINGS_TOKEN, SHOP

TOKEN = SETTINGS_TOKEN  # the webhook token of conftest's valid_form


def saved(domain: str = SHOP) -> ShopSettings | None:
    from models.shop import get_shop

    with db.session() as s:
        shop = get_shop(domain, session=s)
        return s.exec(select(ShopSettings).where(ShopSettings.shop_id == shop.id)).first()


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'id="{field}-error">([^<]*)<', html)
    return unescape(found.group(1)) if found else None


def test_settings_page_shows_the_tabs_and_no_secret(make_shop, htmx):
    make_shop(SHOP, webhook_token=TOKEN)
    response = htmx("GET", "/settings")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for title in ("Authentication", "API server", "Warehouse", "Order status codes",
                  "Return order status codes", "Webhook settings", "Exchanges"):
        assert f">{title}</h2>" in page
    assert TOKEN not in page
    assert 'data-testid="webhook_token-state">set<' in page
    assert 'data-testid="password-state">not set<' in page
    row = saved()
    assert f"/webhooks/ongoing/{row.webhook_key}" in page


def selected(html: str, name: str) -> str | None:
    """The value of the selected option of one select ('' for the empty one)."""
    select_html = re.search(rf'<select id="{name}".*?</select>', html, re.S).group(0)
    found = re.search(r'<option value="([^"]*)" selected>', select_html)
    return found.group(1) if found else ""


def test_connection_ok_loads_choices_with_defaults_preselected(make_shop, htmx, valid_form):
    make_shop(SHOP)
    blank = {name: "" for name in valid_form if name.startswith(("order_status", "return_st"))}
    response = htmx("POST", "/settings/test-connection", data=valid_form | blank)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="connection-ok"' in html
    assert 'hx-swap-oob="true"' in html and "Returns warehouse" in html
    for name, number in (("order_status_open", "200"), ("order_status_returned", ""),
                         ("order_status_released", "300"), ("order_status_sent", "450"),
                         ("return_status_notified", "100"), ("return_status_returned", "200")):
        assert selected(html, name) == number, name
    assert "None: my warehouse has no Returned status" in html
    assert saved().connection_ok_at is None  # testing saves nothing


def test_statuses_preselect_by_standard_number_whatever_their_text(make_shop, htmx, valid_form,
                                                                   ongoing_account):
    make_shop(SHOP)  # a Swedish system whose Released text is customised
    ongoing_account.order_statuses.update({200: "Öppen", 300: "Klar för plock", 450: "Skickad",
                                           500: "Hämtad"})
    blank = {name: "" for name in valid_form if name.startswith("order_status")}
    html = htmx("POST", "/settings/test-connection",
                data=valid_form | blank).get_data(as_text=True)
    assert [selected(html, f"order_status_{c}") for c in ("open", "released", "sent")] == \
        ["200", "300", "450"]


def test_renumbered_statuses_preselect_by_their_swedish_text(make_shop, htmx, valid_form,
                                                            ongoing_account):
    make_shop(SHOP)
    ongoing_account.order_statuses = {210: "Öppen", 310: "Frisläppt", 460: "Skickad",
                                      810: "Returnerad", 1000: "Makulerad"}
    blank = {name: "" for name in valid_form if name.startswith("order_status")}
    html = htmx("POST", "/settings/test-connection",
                data=valid_form | blank).get_data(as_text=True)
    assert [selected(html, f"order_status_{c}") for c in
            ("open", "released", "sent", "returned")] == ["210", "310", "460", "810"]


def test_a_3pl_returned_status_is_preselected_and_saved(make_shop, htmx, valid_form,
                                                        ongoing_account):
    make_shop(SHOP)
    ongoing_account.add_order_status(800, "Returned")
    blank = {name: "" for name in valid_form if name.startswith("order_status")}
    html = htmx("POST", "/settings/test-connection",
                data=valid_form | blank).get_data(as_text=True)
    assert selected(html, "order_status_returned") == "800"
    response = htmx("POST", "/settings", data=valid_form | {"order_status_returned": "800"})
    assert response.status_code == 200
    assert saved().order_statuses()["returned"] == 800


def test_returned_left_empty_stays_empty_once_saved(make_shop, htmx, valid_form,
                                                   ongoing_account):
    make_shop(SHOP)
    ongoing_account.add_order_status(800, "Returned")
    assert htmx("POST", "/settings", data=valid_form).status_code == 200  # Returned: none
    html = htmx("GET", "/settings/choices").get_data(as_text=True)
    assert selected(html, "order_status_returned") == ""
    assert selected(html, "order_status_sent") == "450"


def test_the_standard_status_list_finishes_setup(make_shop, htmx, valid_form, ongoing_account):
    make_shop(SHOP)
    assert 800 not in ongoing_account.order_statuses  # Ongoing's standard list
    response = htmx("POST", "/settings", data=valid_form)
    assert response.status_code == 200, field_error(response.get_data(as_text=True),
                                                    "order_status_returned")
    assert saved().order_statuses() == {"open": 200, "returned": None, "released": 300,
                                        "sent": 450}
    page = htmx("GET", "/").get_data(as_text=True)
    assert page.count('data-done="yes"') == 4  # only the first webhook is still to come


@pytest.mark.parametrize("change,expected", [
    ({"password": "wrong-password"}, "refused this username and password"),
    ({"ongoing_warehouse": "nosuchwarehouse"}, "no warehouse called 'nosuchwarehouse'"),
    ({"ongoing_server": "wms9"}, "Could not reach the Ongoing API server 'wms9'"),
    ({"goods_owner_id": "999"}, "does not accept Goods Owner ID 999"),
])
def test_connection_failures_each_have_their_message(make_shop, htmx, valid_form, change,
                                                     expected):
    make_shop(SHOP)
    response = htmx("POST", "/settings/test-connection", data=valid_form | change)
    html = unescape(response.get_data(as_text=True))
    assert 'data-testid="connection-failed"' in html and expected in html


def test_connection_without_api_access(make_shop, htmx, ongoing):
    make_shop(SHOP)
    account = ongoing.add_account("noaccess", 5, "WSInoaccess", "p" * 20, api_access=False)
    form = {"ongoing_warehouse": "noaccess", "goods_owner_id": "5", "ongoing_server": "api",
            "ongoing_username": account.username, "password": account.password}
    html = htmx("POST", "/settings/test-connection", data=form).get_data(as_text=True)
    assert "no API access" in html


def test_save_persists_exactly_what_was_entered(make_shop, htmx, valid_form):
    make_shop(SHOP)
    response = htmx("POST", "/settings", data=valid_form)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="saved"' in html
    row = saved()
    assert (row.ongoing_server, row.ongoing_warehouse, row.goods_owner_id, row.ongoing_username) \
        == ("api", valid_form["ongoing_warehouse"], 4711, "WSIswapline")
    assert (row.warehouse_id, row.warehouse_name) == (2, "Returns warehouse")
    assert row.order_statuses() == {"open": 200, "returned": None, "released": 300,
                                    "sent": 450}
    assert row.return_statuses() == {"notified": 100, "returned": 200}
    assert row.password() == valid_form["password"] and row.webhook_token() == TOKEN
    assert valid_form["password"] not in row.ongoing_password_enc
    assert not row.events_secret_set
    assert (row.instant_exchange, row.notify_customer, row.order_number_prefix) == \
        (True, False, "SWAP")
    assert row.connection_ok_at is not None
    assert valid_form["password"] not in html and TOKEN not in html


def test_an_empty_password_keeps_the_stored_one(make_shop, htmx, valid_form):
    make_shop(SHOP)
    htmx("POST", "/settings", data=valid_form)
    response = htmx("POST", "/settings", data=valid_form | {"password": "", "webhook_token": "",
                                                            "order_number_prefix": "NEW"})
    assert response.status_code == 200
    row = saved()
    assert row.password() == valid_form["password"] and row.webhook_token() == TOKEN
    assert row.order_number_prefix == "NEW"


@pytest.mark.parametrize("change,field,message", [
    ({"ongoing_username": "swapline"}, "ongoing_username", "begin with WSI"),
    ({"goods_owner_id": "abc"}, "goods_owner_id", "positive whole number"),
    ({"goods_owner_id": "0"}, "goods_owner_id", "positive whole number"),
    ({"goods_owner_id": "-4"}, "goods_owner_id", "positive whole number"),
    ({"ongoing_warehouse": "ret/urn flows"}, "ongoing_warehouse", "name in your Ongoing URL"),
    ({"ongoing_server": "api.example.com"}, "ongoing_server", "host name part"),
    ({"order_status_sent": "200"}, "order_status_sent", "must all differ"),
    ({"order_status_sent": "455"}, "order_status_sent", "does not exist"),
    ({"order_status_returned": "800"}, "order_status_returned", "does not exist"),
    ({"order_status_returned": "450"}, "order_status_returned", "must all differ"),
    ({"order_status_open": ""}, "order_status_open", "required"),
    ({"default_transporter_service_code": "P19"}, "default_transporter_service_code",
     "set the transporter code too"),
    ({"default_transporter_code": "PL AB"}, "default_transporter_code", "code from Ongoing"),
    ({"default_way_of_delivery": "x" * 51}, "default_way_of_delivery", "up to 50"),
    ({"return_status_returned": "100"}, "return_status_returned", "must be different"),
    ({"return_status_returned": "777"}, "return_status_returned", "does not exist"),
    ({"warehouse_id": "99"}, "warehouse_id", "Pick one of the warehouses"),
    ({"warehouse_id": ""}, "warehouse_id", "required"),
    ({"webhook_token": "short"}, "webhook_token", "24 to 200"),
    ({"order_number_prefix": "EX CH"}, "order_number_prefix", "Prefix"),
    ({"password": "wrong-password"}, "password", "refused this username and password"),
])
def test_each_validation_error_is_beside_its_field_and_nothing_is_saved(
        make_shop, htmx, valid_form, change, field, message):
    make_shop(SHOP)
    response = htmx("POST", "/settings", data=valid_form | change)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-testid="not-saved"' in html
    assert message in (field_error(html, field) or "")
    assert f'id="{field}" ' in html and 'aria-invalid="true"' in html
    row = saved()
    assert row.ongoing_username is None and not row.password_set and not row.webhook_token_set
    assert valid_form["password"] not in html


def test_password_never_reaches_a_response_or_a_log_line(make_shop, htmx, valid_form, caplog):
    make_shop(SHOP)
    caplog.set_level(logging.DEBUG)
    bodies = [htmx("POST", "/settings/test-connection", data=valid_form),
              htmx("POST", "/settings", data=valid_form | {"warehouse_id": "99"}),
              htmx("POST", "/settings", data=valid_form),
              htmx("GET", "/settings"), htmx("GET", "/settings/choices"), htmx("GET", "/")]
    for response in bodies:
        assert response.status_code in (200, 422)
        body = response.get_data(as_text=True)
        assert valid_form["password"] not in body and TOKEN not in body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert valid_form["password"] not in logged and TOKEN not in logged


def test_choices_load_live_for_a_saved_connection(make_shop, htmx, valid_form):
    make_shop(SHOP)
    htmx("POST", "/settings", data=valid_form)
    page = htmx("GET", "/settings").get_data(as_text=True)
    assert 'hx-get="/settings/choices"' in page
    html = htmx("GET", "/settings/choices").get_data(as_text=True)
    assert re.search(r'<option value="2" selected>Returns warehouse', html)
    assert re.search(r'<option value="450" selected>450 · Sent', html)


def test_shop_a_cannot_read_or_write_shop_b(make_shop, htmx, valid_form):
    make_shop(SHOP)
    make_shop(OTHER_SHOP, order_number_prefix="BETA", webhook_token=TOKEN)
    htmx("POST", f"/settings?shop={OTHER_SHOP}", data=valid_form | {"shop": OTHER_SHOP})
    assert saved(SHOP).order_number_prefix == "SWAP"
    other = saved(OTHER_SHOP)
    assert other.order_number_prefix == "BETA" and other.ongoing_username is None
    page = htmx("GET", f"/settings?shop={OTHER_SHOP}").get_data(as_text=True)
    assert other.webhook_key not in page and 'value="BETA"' not in page


def test_home_checklist_follows_the_settings(make_shop, htmx, valid_form, client):
    make_shop(SHOP)
    page = htmx("GET", "/").get_data(as_text=True)
    assert page.count('data-done="no"') == 5
    htmx("POST", "/settings", data=valid_form)
    page = htmx("GET", "/").get_data(as_text=True)
    assert page.count('data-done="yes"') == 4 and page.count('data-done="no"') == 1


def test_shipping_defaults_are_saved_and_shown(make_shop, htmx, valid_form):
    make_shop(SHOP)
    defaults = {"default_transporter_code": "PLAB", "default_transporter_service_code": "P19",
                "default_way_of_delivery": "SHP1"}
    assert htmx("POST", "/settings", data=valid_form | defaults).status_code == 200
    row = saved()
    assert (row.default_transporter_code, row.default_transporter_service_code,
            row.default_way_of_delivery) == ("PLAB", "P19", "SHP1")
    page = htmx("GET", "/settings").get_data(as_text=True)
    assert ">Shipping</h2>" in page and 'value="P19"' in page
    htmx("POST", "/settings", data=valid_form)  # emptied: the warehouse chooses again
    assert saved().default_transporter_code is None
