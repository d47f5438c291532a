"""In a real browser: the Notifications tab of Settings filled, refused, saved, and its Send a
test alert answered per channel, the mail arriving at a real local SMTP server (the sandbox's
aiosmtpd catcher) and the webhook at a local HTTP server. Same setup as tests/test_browser.py:
Debian's Chromium, Shopify's CDN blocked, the sandbox minting the session tokens."""
from __future__ import annotations

import dataclasses
import threading
from types import SimpleNamespace

import pytest
from werkzeug.serving import make_server

from app import create_app
from models import db
from models.settings import ShopSettings, apply, settings_of
from tests.browser_support import ARTIFACTS, expect  # skips the module without a browser
from tests.conftest import SHOP
from tests.test_browser import admin_url

SMTP_PASSWORD = "browser-smtp-pass"
EVENTS_SECRET = "browser-events-secret-" + "e" * 20


@pytest.fixture
def app_url(app, base_config, sandbox, smtp):
    """The real app in sandbox mode on a free port, mailing through the catcher."""
    sandbox.store.add_shop(SHOP)
    served = create_app({**base_config, "SWAPLINE_SANDBOX": "1", "SWAPLINE_SMTP_URL": smtp.url,
                         "SWAPLINE_MAIL_FROM": "Swapline <alerts@swapline.test>"})
    server = make_server("127.0.0.1", 0, served, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", app=served)
    server.shutdown()
    server.server_close()
    with served.app_context():
        db.dispose()


def test_notifications_tab_saved_and_a_test_alert_arrives(page, app_url, smtp, hook):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(admin_url(app_url.url, "/settings"))
    page.locator("nav.tabs").get_by_role("link", name="Notifications").click()
    tab = page.locator("#notifications")
    expect(tab.get_by_test_id("mail-status")).to_have_text(
        f"Mail is sent through smtp://127.0.0.1:{smtp.port}, from Swapline <alerts@swapline.test>.")
    expect(page.get_by_role("spinbutton", name="Return not moving")).to_have_value("14")

    # A bad address: refused beside its field, nothing saved.
    page.get_by_role("textbox", name="Alert addresses").fill("ops@shop.se, ops-at-shop")
    page.get_by_role("button", name="Save notifications").click()
    expect(page.get_by_test_id("alerts-not-saved")).to_be_visible()
    expect(page.locator("#alert_emails-error")).to_have_text(
        "'ops-at-shop' is not an email address.")
    assert settings_of(SHOP).alert_emails == []

    page.get_by_role("textbox", name="Alert addresses").fill("ops@shop.se, 3pl@wh.se")
    page.get_by_role("textbox", name="Alert webhook URL").fill(hook.url)  # sandbox: local ok
    page.get_by_role("spinbutton", name="Released, not sent").fill("3")
    page.get_by_role("checkbox", name="Also alert when an exchange that alerted moves on").check()
    page.get_by_role("button", name="Save notifications").click()
    expect(page.get_by_test_id("alerts-saved")).to_be_visible()
    row = settings_of(SHOP)
    assert (row.alert_emails, row.alert_webhook_url, row.stall_released_days,
            row.alert_resolved) == (["ops@shop.se", "3pl@wh.se"], hook.url, 3, True)

    # No events secret yet: the webhook's failure is reported exactly, the mail still goes.
    page.get_by_role("button", name="Send a test alert").click()
    expect(page.get_by_test_id("test-mail")).to_have_text("Mail: sent.")
    expect(page.get_by_test_id("test-webhook")).to_have_text(
        "Webhook: not sent: set the events secret (Settings) to sign alerts")
    [mail] = smtp.mails()
    assert sorted(mail.to) == ["3pl@wh.se", "ops@shop.se"]
    assert mail.subject == f"Swapline: test alert for {SHOP}"

    with db.session() as s:
        apply(s.get(ShopSettings, row.id), {"events_secret": EVENTS_SECRET})
    page.get_by_role("button", name="Send a test alert").click()
    expect(page.get_by_test_id("test-webhook")).to_have_text("Webhook: sent.")
    assert len(smtp.mails()) == 2 and hook.bodies()[0]["test"] is True
    page.screenshot(path=ARTIFACTS / "settings-notifications.png", full_page=True)

    # A mail server that wants a login and then goes away: the exact failure each time, never
    # the password of the URL.
    settings = app_url.app.config["SETTINGS"]
    app_url.app.config["SETTINGS"] = dataclasses.replace(
        settings, smtp_url=f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}")
    page.get_by_role("button", name="Send a test alert").click()
    expect(page.get_by_test_id("test-mail")).to_have_text(
        "Mail: not sent: the mail server refused: SMTPNotSupportedError: SMTP AUTH extension "
        "not supported by server.")
    smtp.stop()
    page.get_by_role("button", name="Send a test alert").click()
    expect(page.get_by_test_id("test-mail")).to_contain_text(
        f"Mail: not sent: mail server 127.0.0.1:{smtp.port} unreachable")
    assert SMTP_PASSWORD not in page.content()
