"""The Notifications tab of Settings: the alert fields saved with the CLI's validation, errors
beside their fields, the mail line (never the SMTP password) and Send a test alert, against a
real SMTP server (the sandbox's aiosmtpd catcher) and a local HTTP server for the webhook."""
from __future__ import annotations

import dataclasses
import re
from html import unescape

import pytest

from models import db
from models.settings import ShopSettings, apply, settings_of
from tests.conftest import OTHER_SHOP, SHOP

SMTP_PASSWORD = "s3cret-smtp-pass"
EVENTS_SECRET = "alert-events-secret-" + "x" * 20
FORM = {"alert_emails": "ops@shop.se, 3pl@wh.se", "alert_webhook_url": "",
        "stall_parked_days": "10", "stall_released_days": "3", "stall_uncollected_days": "",
        "stall_not_returned_days": "5", "alert_resolved": "on"}


def use_settings(app, **changes) -> None:
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"], **changes)


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'id="{field}-error">([^<]*)<', html)
    return unescape(found.group(1)) if found else None


def text_of(html: str, name: str) -> str:
    """The text of the element with data-testid=name, tags stripped."""
    found = re.search(rf'data-testid="{name}"[^>]*>(.*?)</(?:p|li|div)>', html, re.S)
    assert found, f"no {name} in the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def test_the_tab_shows_the_defaults_and_that_no_mail_is_sent(make_shop, htmx):
    make_shop(SHOP)
    page = htmx("GET", "/settings", boosted=True).get_data(as_text=True)
    assert '<a href="#notifications">Notifications</a>' in page
    assert ">Notifications</h2>" in page and 'hx-post="/settings/notifications"' in page
    for name, default in (("stall_parked_days", 14), ("stall_released_days", 2),
                          ("stall_uncollected_days", 1), ("stall_not_returned_days", 7)):
        assert re.search(rf'id="{name}" name="{name}" type="number" value="{default}"', page)
    assert "Default 14 days." in page and "Default 1 day." in page
    assert text_of(page, "mail-status").startswith("SWAPLINE_SMTP_URL is not set: Swapline "
                                                  "sends no mail.")


def test_the_mail_line_names_the_server_never_its_password(app, make_shop, htmx):
    make_shop(SHOP)
    use_settings(app, smtp_url=f"smtp://alerts:{SMTP_PASSWORD}@mail.example.com:2525",
                 mail_from="Swapline <alerts@shop.se>")
    page = htmx("GET", "/settings", boosted=True).get_data(as_text=True)
    assert text_of(page, "mail-status") == ("Mail is sent through smtp://mail.example.com:2525, "
                                           "from Swapline <alerts@shop.se>.")
    assert SMTP_PASSWORD not in page and "alerts:" not in page


def test_save_stores_every_field_and_shows_them_again(make_shop, htmx):
    make_shop(SHOP)
    response = htmx("POST", "/settings/notifications", data=FORM)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="alerts-saved"' in html
    row = settings_of(SHOP)
    assert row.alert_emails == ["ops@shop.se", "3pl@wh.se"] and row.alert_webhook_url is None
    assert (row.stall_parked_days, row.stall_released_days, row.stall_uncollected_days,
            row.stall_not_returned_days, row.alert_resolved) == (10, 3, 1, 5, True)
    assert ">ops@shop.se, 3pl@wh.se</textarea>" in html
    assert 'id="stall_parked_days" name="stall_parked_days" type="number" value="10"' in html
    assert re.search(r'id="alert_resolved" name="alert_resolved" value="on"\s+checked', html)
    page = htmx("GET", "/settings", boosted=True).get_data(as_text=True)
    assert ">ops@shop.se, 3pl@wh.se</textarea>" in page  # and after a reload

    htmx("POST", "/settings/notifications", data=FORM | {"alert_resolved": ""})
    assert settings_of(SHOP).alert_resolved is False  # an unticked box is off


@pytest.mark.parametrize(("field", "value", "message"), [
    ("alert_emails", "ops@shop.se, not-an-address", "'not-an-address' is not an email address."),
    ("stall_parked_days", "0", "Use a whole number of days from 1 to 365."),
    ("stall_released_days", "2.5", "Use a whole number of days from 1 to 365."),
    ("alert_webhook_url", "ftp://alerts.example.com/hook",
     "The URL must start with https:// and name a host."),
])
def test_each_error_is_beside_its_field_and_nothing_is_saved(make_shop, htmx, field, value,
                                                              message):
    make_shop(SHOP)
    response = htmx("POST", "/settings/notifications", data=FORM | {field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-testid="alerts-not-saved"' in html
    assert field_error(html, field) == message
    assert f'aria-describedby="{field}-error"' in html
    assert value.split(", ")[-1] in unescape(html)  # what was typed stays in the field
    row = settings_of(SHOP)
    assert (row.alert_emails, row.stall_parked_days, row.alert_resolved) == ([], 14, False)


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:8080/alerts", "The URL must start with https:// and name a host."),
    ("https://127.0.0.1/alerts",
     "127.0.0.1 resolves to a private or local address (127.0.0.1); use a public one."),
    ("https://10.1.2.3/alerts",
     "10.1.2.3 resolves to a private or local address (10.1.2.3); use a public one."),
    ("https://[fe80::1]/alerts",
     "fe80::1 resolves to a private or local address (fe80::1); use a public one."),
])
def test_a_local_webhook_url_is_refused_outside_dev_beside_the_field(make_shop, htmx, url,
                                                                      message):
    make_shop(SHOP)
    response = htmx("POST", "/settings/notifications", data=FORM | {"alert_webhook_url": url})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and field_error(html, "alert_webhook_url") == message
    assert settings_of(SHOP).alert_webhook_url is None


def test_in_dev_a_local_webhook_url_is_allowed(app, make_shop, htmx, hook):
    make_shop(SHOP)
    use_settings(app, dev=True)
    response = htmx("POST", "/settings/notifications",
                    data=FORM | {"alert_webhook_url": hook.url})
    assert response.status_code == 200 and settings_of(SHOP).alert_webhook_url == hook.url


def test_the_tab_needs_a_session_token_and_is_per_shop(client, make_shop, htmx):
    make_shop(SHOP)
    make_shop(OTHER_SHOP)
    assert client.post("/settings/notifications", data=FORM).status_code in (302, 401)
    assert client.post("/settings/notifications/test").status_code in (302, 401)
    assert settings_of(SHOP).alert_emails == []
    htmx("POST", "/settings/notifications", shop=OTHER_SHOP, data=FORM)
    assert settings_of(SHOP).alert_emails == [] and len(settings_of(OTHER_SHOP).alert_emails) == 2
    page = htmx("GET", "/settings", boosted=True).get_data(as_text=True)
    assert "ops@shop.se" not in page


def test_a_test_alert_reports_each_channel_that_is_not_set_up(make_shop, htmx):
    make_shop(SHOP)
    html = htmx("POST", "/settings/notifications/test").get_data(as_text=True)
    assert text_of(html, "test-mail") == ("Mail: not sent: SWAPLINE_SMTP_URL is not set: "
                                         "Swapline sends no mail")
    assert text_of(html, "test-webhook") == "Webhook: not sent: no alert webhook URL is set"


def test_a_test_alert_arrives_by_mail_and_webhook(app, make_shop, htmx, smtp, hook):
    make_shop(SHOP)
    use_settings(app, smtp_url=smtp.url, dev=True)
    htmx("POST", "/settings/notifications", data=FORM | {"alert_webhook_url": hook.url})
    with db.session() as s:
        apply(s.get(ShopSettings, settings_of(SHOP).id), {"events_secret": EVENTS_SECRET})
    saved_form = FORM | {"alert_webhook_url": hook.url}
    html = htmx("POST", "/settings/notifications/test", data=saved_form).get_data(as_text=True)
    assert text_of(html, "test-mail") == "Mail: sent."
    assert text_of(html, "test-webhook") == "Webhook: sent."
    assert 'data-testid="test-alert-unsaved"' not in html
    [mail] = smtp.mails()
    assert sorted(mail.to) == ["3pl@wh.se", "ops@shop.se"] and "test alert" in mail.subject
    assert hook.bodies()[0]["test"] is True

    edited = saved_form | {"alert_emails": "someone@else.se"}  # typed, not saved
    html = htmx("POST", "/settings/notifications/test", data=edited).get_data(as_text=True)
    assert 'data-testid="test-alert-unsaved"' in html and len(smtp.mails()) == 2


def test_a_failed_test_alert_shows_the_failure_without_the_password(app, make_shop, htmx,
                                                                     smtp, hook):
    make_shop(SHOP)
    port = smtp.port
    use_settings(app, smtp_url=f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{port}", dev=True)
    htmx("POST", "/settings/notifications", data=FORM | {"alert_webhook_url": hook.url})
    smtp.stop()
    hook.statuses[:] = [502]
    with db.session() as s:
        apply(s.get(ShopSettings, settings_of(SHOP).id), {"events_secret": EVENTS_SECRET})
    html = htmx("POST", "/settings/notifications/test").get_data(as_text=True)
    assert text_of(html, "test-mail").startswith(
        f"Mail: not sent: mail server 127.0.0.1:{port} unreachable")
    assert text_of(html, "test-webhook") == "Webhook: not sent: alert webhook answered HTTP 502"
    assert 'data-ok="no"' in html and SMTP_PASSWORD not in html
