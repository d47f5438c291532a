"""In a real browser: the Settings page filled, tested, saved and reloaded, without Shopify's CDN.

Debian's /usr/bin/chromium driven by Playwright (never a downloaded browser). The CDN is blocked,
so App Bridge is absent and static/app.js takes its sandbox path: the sandbox Shopify mints the
session tokens, and the server verifies them exactly as it verifies App Bridge's.
"""
from __future__ import annotations

import base64
import threading
from urllib.parse import urlencode, urlparse

import pytest
from sqlmodel import select
from werkzeug.serving import make_server

from app import create_app
from models import db
from models.settings import ShopSettings
from models.shop import get_shop
from sandbox.shopify import mint_session_token
from tests.browser_support import ARTIFACTS, expect  # skips the module without a browser
from tests.conftest import API_KEY, API_SECRET, SHOP

STATUSES = {"order_status_open": "200", "order_status_returned": "",
            "order_status_released": "300", "order_status_sent": "450",
            "return_status_notified": "100", "return_status_returned": "200"}
BASE64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.fixture
def app_url(app, base_config, sandbox):
    """The real app in sandbox mode on a free port, in a thread; the shop exists in Shopify."""
    sandbox.store.add_shop(SHOP)
    served = create_app({**base_config, "SWAPLINE_SANDBOX": "1"})
    server = make_server("127.0.0.1", 0, served, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    with served.app_context():
        db.dispose()


def admin_url(app_url: str, path: str = "/") -> str:
    """What Shopify admin opens: embedded, shop, host and a fresh id_token (valid 60 s)."""
    host = base64.b64encode(f"admin.shopify.com/store/{SHOP.split('.')[0]}".encode()).decode()
    query = {"embedded": "1", "shop": SHOP, "host": host,
             "id_token": mint_session_token(SHOP, API_KEY, API_SECRET)}
    return f"{app_url}{path}?{urlencode(query)}"


def saved_settings() -> ShopSettings:
    with db.session() as s:
        shop = get_shop(SHOP, session=s)
        return s.exec(select(ShopSettings).where(ShopSettings.shop_id == shop.id)).one()


def test_settings_filled_tested_saved_and_reloaded(page, app_url, ongoing_account):
    account = ongoing_account
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(admin_url(app_url))
    expect(page.get_by_test_id("shop-name")).to_have_text(SHOP)
    page.screenshot(path=ARTIFACTS / "home.png", full_page=True)

    # The page nav is boosted: htmx fetches the page with a session token from the sandbox.
    page.locator("nav.app-nav").get_by_role("link", name="Settings").click()
    expect(page).to_have_title("Swapline · Settings")
    save = page.get_by_role("button", name="Save", exact=True)  # not "Save notifications"
    save.click()  # empty: the 422 form with its errors is swapped in
    expect(page.get_by_test_id("not-saved")).to_be_visible()

    page.get_by_role("textbox", name="Warehouse", exact=True).fill(account.warehouse)
    page.get_by_role("textbox", name="Goods Owner ID").fill(str(account.goods_owner_id))
    page.get_by_role("textbox", name="Username").fill(account.username)
    page.locator("#password").fill(account.password)
    page.get_by_role("combobox", name="Server").fill("api")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_test_id("connection-ok")).to_be_visible()
    page.locator("#warehouse_id").select_option(label="Returns warehouse (RET)")
    for name, number in STATUSES.items():  # preselected by Ongoing's standard numbers
        expect(page.locator(f"#{name}")).to_have_value(number)

    page.locator('[data-generate="webhook_token"]').click()
    token_input = page.locator("#webhook_token")
    expect(token_input).to_have_attribute("type", "text")  # visible, to be copied
    token = token_input.input_value()
    assert len(token) == 43 and set(token) <= BASE64URL  # 32 random bytes, base64url

    save.focus()  # the keyboard works: Enter on the focused Save button submits
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("saved")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "settings-saved.png", full_page=True)
    row = saved_settings()
    assert (row.ongoing_warehouse, row.goods_owner_id, row.ongoing_username, row.ongoing_server) \
        == (account.warehouse, account.goods_owner_id, account.username, "api")
    assert (row.warehouse_id, row.warehouse_name) == (2, "Returns warehouse")
    assert row.order_statuses() == {"open": 200, "returned": None, "released": 300,
                                    "sent": 450}
    assert row.return_statuses() == {"notified": 100, "returned": 200}
    assert row.password() == account.password and row.webhook_token() == token

    # A browser reload: the address kept shop and host, so the bounce page gets a fresh token.
    page.reload()
    page.wait_for_url(lambda url: urlparse(url).path == "/settings" and "id_token=" in url)
    # The lists load from Ongoing right after the page; until then a status reads "450 · saved".
    expect(page.locator("#order_status_sent option:checked")).to_have_text("450 · Sent")
    expect(page.get_by_role("textbox", name="Warehouse", exact=True)).to_have_value(
        account.warehouse)
    expect(page.get_by_role("textbox", name="Goods Owner ID")).to_have_value(
        str(account.goods_owner_id))
    expect(page.get_by_role("textbox", name="Username")).to_have_value(account.username)
    expect(page.get_by_role("combobox", name="Server")).to_have_value("api")
    expect(page.locator("#warehouse_id option:checked")).to_have_text("Returns warehouse (RET)")
    for name, number in STATUSES.items():
        expect(page.locator(f"#{name}")).to_have_value(number)
    expect(page.locator("#password")).to_have_value("")
    expect(page.get_by_test_id("password-state")).to_have_text("set")
    expect(page.locator("#webhook_token")).to_have_value("")
    expect(page.get_by_test_id("webhook_token-state")).to_have_text("set")


def test_a_refused_session_token_is_retried_once_with_a_fresh_one(page, app_url, sandbox,
                                                                  script_errors):
    page.goto(admin_url(app_url))
    stale = mint_session_token(SHOP, API_KEY, API_SECRET, exp=0)
    page.route(f"{sandbox.origin}/sandbox/session-token?*", lambda route: route.fulfill(
        json={"token": stale}, headers={"Access-Control-Allow-Origin": "*"}), times=1)
    settings_loads = []
    page.on("response", lambda r: urlparse(r.url).path == "/settings"
            and settings_loads.append(r.status))

    page.locator("nav.app-nav").get_by_role("link", name="Settings").click()
    expect(page).to_have_title("Swapline · Settings")
    expect(page.locator("nav.app-nav")).to_be_visible()  # the whole page, not only the form
    assert settings_loads == [401, 200]
    assert script_errors == ["Response Status Error Code 401 from /settings"]  # htmx's log
    script_errors.clear()
