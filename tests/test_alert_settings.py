"""Alert settings: validation (addresses, thresholds, a webhook URL only to public addresses),
`shop configure --alert-…` and `shop show`, and the one-open-alert rule of the database."""
from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import IntegrityError

from config import load_settings
from models import db
from models.alert import STALLED_RELEASED, Alert, stalled
from models.alert_form import clean_alerts, url_problem
from models.exchange import Exchange
from models.types import utcnow
from tests.conftest import SHOP


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "https://10.1.2.3/hook",
    "https://192.168.0.5/hook", "https://172.16.0.1/hook", "https://169.254.169.254/latest",
    "https://[::1]/hook", "https://[fe80::1]/hook", "https://[fc00::1]/hook",
    "https://[::ffff:127.0.0.1]/hook", "https://0.0.0.0/hook", "https://224.0.0.1/hook",
    "https://240.0.0.1/hook", "https://100.64.0.1/hook",
    "ftp://example.com/hook", "https://user:pw@example.com/hook", "https:///nohost",
    "https://exa mple.com/", "https://example.com:99999/",
])
def test_alert_url_refused_outside_dev(url):
    assert url_problem(url, allow_local=False, resolver=public) is not None


def test_a_name_is_refused_when_any_of_its_addresses_is_private():
    mixed = lambda host, port: ["93.184.216.34", "10.0.0.7"]  # noqa: E731
    problem = url_problem("https://hooks.example.com/x", allow_local=False, resolver=mixed)
    assert "10.0.0.7" in problem
    assert url_problem("https://hooks.example.com/x", allow_local=False, resolver=public) is None
    assert url_problem("https://93.184.216.34/x", allow_local=False) is None  # no lookup


def test_a_real_name_resolving_to_loopback_is_refused():
    problem = url_problem("https://localhost:8443/hook", allow_local=False)  # the real resolver
    assert "private or local" in problem


def test_a_name_that_does_not_resolve_is_refused():
    def nowhere(host, port):
        raise OSError("Name or service not known")

    assert "does not resolve" in url_problem("https://nowhere.invalid/", allow_local=False,
                                             resolver=nowhere)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://[::1]/hook",
                                 "http://localhost:9000/alerts", "https://10.0.0.1/x"])
def test_local_urls_allowed_in_sandbox_and_dev(url):
    assert url_problem(url, allow_local=True) is None
    assert load_settings({"SWAPLINE_SANDBOX": "1"}).allow_local_urls
    assert load_settings({"SWAPLINE_DEV": "1"}).allow_local_urls


def test_clean_alerts_values_and_errors():
    values, errors = clean_alerts({"alert_emails": "a@shop.se, B@Shop.se\nb@shop.se;c@x.io",
                                   "stall_parked_days": "21", "alert_resolved": "on"},
                                  allow_local=False)
    assert errors == {}
    assert values["alert_emails"] == ["a@shop.se", "B@Shop.se", "c@x.io"]
    assert values["stall_parked_days"] == 21 and values["stall_released_days"] == 2
    assert values["alert_resolved"] is True and values["alert_webhook_url"] is None
    _, errors = clean_alerts({"alert_emails": "ops@shop.se, not an address",
                              "stall_released_days": "0", "stall_uncollected_days": "x",
                              "stall_not_returned_days": "366",
                              "alert_webhook_url": "https://10.0.0.1/"}, allow_local=False)
    assert set(errors) == {"alert_emails", "stall_released_days", "stall_uncollected_days",
                           "stall_not_returned_days", "alert_webhook_url"}
    assert "'not an address'" in errors["alert_emails"]
    many = ",".join(f"ops{n}@shop.se" for n in range(11))
    assert "Up to 10" in clean_alerts({"alert_emails": many}, allow_local=False)[1][
        "alert_emails"]
    header = clean_alerts({"alert_emails": "a@shop.se\r\nBcc: x@evil.io"}, allow_local=False)
    assert "alert_emails" in header[1]


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_configure_alerts_alone_then_show(cli, make_shop):
    make_shop(SHOP)
    view = json.loads(cli("shop", "show", SHOP).output)
    assert view["alert_emails"] == [] and view["alert_webhook_url"] is None
    assert view["stall_parked_days"] == 14 and view["stall_not_returned_days"] == 7
    result = cli("shop", "configure", SHOP, "--alert-email", "ops@shop.se,3pl@wh.se",
                 "--alert-webhook-url", "https://93.184.216.34/swapline", "--stall-released",
                 "3", "--alert-resolved", "on")
    assert result.exit_code == 0, result.output
    view = json.loads(cli("shop", "show", SHOP).output)
    assert view["alert_emails"] == ["ops@shop.se", "3pl@wh.se"]
    assert view["alert_webhook_url"] == "https://93.184.216.34/swapline"
    assert view["stall_released_days"] == 3 and view["alert_resolved"] is True
    assert view["password_set"] is False  # the Ongoing settings were not touched
    assert cli("shop", "configure", SHOP, "--alert-email", "").exit_code == 0
    view = json.loads(cli("shop", "show", SHOP).output)
    assert view["alert_emails"] == [] and view["stall_released_days"] == 3  # others kept


@pytest.mark.parametrize("args,message", [
    (("--alert-webhook-url", "http://127.0.0.1:9/x"), "must start with https"),
    (("--alert-webhook-url", "https://10.0.0.1/x"), "private or local"),
    (("--alert-email", "ops@@shop"), "is not an email address"),
    (("--stall-parked", "0"), "from 1 to 365"),
])
def test_configure_refuses_bad_alert_values_and_saves_nothing(cli, make_shop, args, message):
    make_shop(SHOP)
    result = cli("shop", "configure", SHOP, "--alert-email", "ops@shop.se", *args)
    assert result.exit_code == 1 and message in result.output
    assert "nothing saved" in result.output
    assert json.loads(cli("shop", "show", SHOP).output)["alert_emails"] == []


def test_configure_with_ongoing_and_a_bad_alert_saves_nothing(cli, make_shop, ongoing_account,
                                                              monkeypatch):
    from tests.test_shop_cli import configure_args

    monkeypatch.setenv("ONGOING_PASSWORD", ongoing_account.password)
    monkeypatch.setenv("ONGOING_TOKEN", "cli-webhook-token-" + "k" * 30)
    make_shop(SHOP)
    result = cli(*configure_args(ongoing_account), "--alert-webhook-url", "https://[::1]/")
    assert result.exit_code == 1 and "nothing saved" in result.output
    assert json.loads(cli("shop", "show", SHOP).output)["password_set"] is False
    result = cli(*configure_args(ongoing_account), "--alert-email", "ops@shop.se")
    assert result.exit_code == 0, result.output
    view = json.loads(cli("shop", "show", SHOP).output)
    assert view["password_set"] and view["alert_emails"] == ["ops@shop.se"]
    partial = cli("shop", "configure", SHOP, "--warehouse", "x", "--alert-email", "a@b.se")
    assert partial.exit_code == 2 and "Missing option '--goods-owner-id'" in partial.output


def _exchange(state: str = "released", **fields) -> int:
    with db.session() as s:
        row = Exchange(shop_domain=SHOP, return_gid="gid://shopify/Return/1", order_gid="o",
                       order_name="#1001", state=state, **fields)
        s.add(row)
        s.flush()
        return row.id


def test_one_open_alert_per_exchange_and_condition(app, make_shop):
    make_shop(SHOP)
    exchange_id = _exchange(released_at=utcnow())
    alert = dict(shop_domain=SHOP, exchange_id=exchange_id, condition=STALLED_RELEASED,
                 reason="Released 3 days ago, not sent", since=utcnow())
    with db.session() as s:
        s.add(Alert(**alert))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Alert(**alert))
    with db.session() as s:
        found = stalled(SHOP, session=s)
        assert [(f.exchange.id, f.condition, f.label) for f in found] == [
            (exchange_id, STALLED_RELEASED, "Released, not sent")]
        found[0].exchange.id  # noqa: B018  (loaded with the alert)
        s.get(Alert, s.exec(Alert.__table__.select()).first().id).resolved_at = utcnow()
    with db.session() as s:
        s.add(Alert(**alert))  # a resolved one may alert again
        assert stalled("other.myshopify.com", session=s) == []
