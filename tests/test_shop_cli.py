"""`flask shop configure|show`: the Settings validation and storage, secrets from env vars."""
from __future__ import annotations

import json

import pytest

from tests.conftest import OTHER_SHOP, SHOP

TOKEN = "cli-webhook-token-" + "k" * 30


@pytest.fixture
def cli(app, monkeypatch, ongoing_account):
    monkeypatch.setenv("ONGOING_PASSWORD", ongoing_account.password)
    monkeypatch.setenv("ONGOING_TOKEN", TOKEN)
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def configure_args(account, shop=SHOP, **overrides):
    options = {"--server": "api", "--warehouse": account.warehouse,
               "--goods-owner-id": str(account.goods_owner_id), "--username": account.username,
               "--password-env": "ONGOING_PASSWORD", "--warehouse-id": "1",
               "--order-statuses": "open=200,released=300,sent=450",
               "--return-statuses": "notified=100,returned=200",
               "--webhook-token-env": "ONGOING_TOKEN", **overrides}
    args = ["shop", "configure", shop]
    for option, value in options.items():
        args += [option, value]
    return args


def test_configure_then_show(cli, make_shop, ongoing_account):
    make_shop(SHOP)
    result = cli(*configure_args(ongoing_account), "--instant-exchange", "on")
    assert result.exit_code == 0, result.output
    shown = cli("shop", "show", SHOP)
    assert shown.exit_code == 0
    view = json.loads(shown.output)
    assert view["shop"] == SHOP and view["warehouse"] == ongoing_account.warehouse
    assert view["order_statuses"] == {"open": 200, "returned": None, "released": 300,
                                      "sent": 450}
    assert view["return_statuses"] == {"notified": 100, "returned": 200}
    assert view["instant_exchange"] is True and view["warehouse_name"] == "Main warehouse"
    assert view["default_transporter_code"] is None and view["default_way_of_delivery"] is None
    assert view["password_set"] and view["webhook_token_set"] and not view["events_secret_set"]
    assert view["ongoing_webhook_url"].endswith(f"/webhooks/ongoing/{view['webhook_key']}")
    assert view["return_events_url"].endswith(f"/webhooks/return-events/{view['webhook_key']}")
    assert ongoing_account.password not in shown.output and TOKEN not in shown.output


def test_configure_refuses_and_saves_nothing_on_a_bad_value(cli, make_shop, ongoing_account):
    make_shop(SHOP)
    result = cli(*configure_args(ongoing_account, **{"--order-statuses":
                                                    "open=200,released=300,sent=200"}))
    assert result.exit_code == 1
    assert "must all differ" in result.output and "nothing saved" in result.output
    assert json.loads(cli("shop", "show", SHOP).output)["password_set"] is False


def test_configure_with_a_3pl_returned_status(cli, make_shop, ongoing_account):
    make_shop(SHOP)
    statuses = {"--order-statuses": "open=200,returned=800,released=300,sent=450"}
    result = cli(*configure_args(ongoing_account, **statuses))
    assert result.exit_code == 1 and "800 does not exist" in result.output  # standard list
    ongoing_account.add_order_status(800, "Returned")
    result = cli(*configure_args(ongoing_account, **statuses))
    assert result.exit_code == 0, result.output
    view = json.loads(cli("shop", "show", SHOP).output)
    assert view["order_statuses"]["returned"] == 800


@pytest.mark.parametrize("overrides,message", [
    ({"--password-env": "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE is not set"),
    ({"--order-statuses": "open=200,sent=450"}, "--order-statuses needs exactly"),
    ({"--order-statuses": "open=200,released=300,sent=450,picked=400"}, "needs exactly"),
    ({"--order-statuses": "open=200,open=210,released=300,sent=450"}, "needs exactly"),
    ({"--username": "notwsi"}, "begin with WSI"),
])
def test_configure_input_errors_are_clear(cli, make_shop, ongoing_account, overrides, message):
    make_shop(SHOP)
    result = cli(*configure_args(ongoing_account, **overrides))
    assert result.exit_code != 0 and message in result.output


def test_configure_needs_an_installed_shop(cli, ongoing_account):
    result = cli(*configure_args(ongoing_account, shop=OTHER_SHOP))
    assert result.exit_code == 1 and "has not installed Swapline" in result.output


def test_show_unknown_shop(cli):
    result = cli("shop", "show", "nobody.myshopify.com")
    assert result.exit_code == 1 and "unknown shop" in result.output


def test_configure_shipping_defaults(cli, make_shop, ongoing_account):
    make_shop(SHOP)
    result = cli(*configure_args(ongoing_account), "--transporter-code", "PLAB",
                 "--transporter-service-code", "P19", "--way-of-delivery", "SHP1")
    assert result.exit_code == 0, result.output
    view = json.loads(cli("shop", "show", SHOP).output)
    assert (view["default_transporter_code"], view["default_transporter_service_code"],
            view["default_way_of_delivery"]) == ("PLAB", "P19", "SHP1")
    assert cli(*configure_args(ongoing_account)).exit_code == 0  # not given: kept
    assert json.loads(cli("shop", "show", SHOP).output)["default_transporter_code"] == "PLAB"
    result = cli(*configure_args(ongoing_account), "--transporter-code", "",
                 "--transporter-service-code", "")
    assert result.exit_code == 0, result.output
    assert json.loads(cli("shop", "show", SHOP).output)["default_transporter_code"] is None
    result = cli(*configure_args(ongoing_account), "--transporter-service-code", "P19")
    assert result.exit_code == 1 and "set the transporter code too" in result.output
