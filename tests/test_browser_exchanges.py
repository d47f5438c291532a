"""In a real browser: a sample exchange run from the app home and watched live on its page.

The same setup as tests/test_browser.py (Debian's Chromium, Shopify's CDN blocked, the sandbox
minting session tokens), with the demo's moving parts: the shop is installed and configured as
`make demo` does it, SampleScenario plays the customer and the warehouse, and Ongoing's webhook
reaches the app over HTTP. Jobs run in this (the main) thread while the test waits: RQ's worker
installs signal handlers, which only the main thread may do.
"""
from __future__ import annotations

import base64
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from urllib.parse import urlencode

import jwt
import pytest
from werkzeug.serving import make_server

from app import create_app
from models import db
from sandbox.scenario import EXCHANGED, RETURNED, SampleScenario
from sandbox.shopify import mint_session_token
from tests.browser_support import ARTIFACTS, expect  # skips the module without a browser
from tests.conftest import API_KEY, API_SECRET

WEBHOOK_TOKEN = "browser-ongoing-webhook-token-" + "b" * 20
LATER_THAN_PARKED = ("Parked in Ongoing", "Released to the warehouse", "Fulfilled", "Completed")


@pytest.fixture
def demo_shop(app, base_config, sandbox, ongoing, ongoing_account):
    """`make (exchange_stock)`: the app in sandbox mode in a thread, a fresh shop installed and
    configured like the demo shop, Ongoing's webhook registered, SampleScenario running."""
    started: list[Callable[[], None]] = []

    def make(exchange_stock: int = 12) -> SimpleNamespace:
        domain = f"browser-{uuid.uuid4().hex[:8]}.myshopify.com"
        sandbox.store.add_shop(domain, "Browser Test Store")
        server = make_server("127.0.0.1", 0, None, threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        served = create_app({**base_config, "SWAPLINE_SANDBOX": "1", "SHOPIFY_APP_URL": url})
        server.app = served  # the app needs its own URL, known once the port is bound
        threading.Thread(target=server.serve_forever, daemon=True).start()
        account = ongoing_account
        account.add_article(RETURNED[0], "T-shirt, blue, M", 25)
        account.add_article(EXCHANGED[0], "T-shirt, blue, L", exchange_stock)
        with served.app_context():
            key = _install_and_configure(served, domain, account)
        ongoing.register_webhook(account, f"{url}/webhooks/ongoing/{key}", WEBHOOK_TOKEN)
        previous_app_url, sandbox.app_url = sandbox.app_url, url  # Shopify's webhooks go here
        scenario = SampleScenario(sandbox, ongoing, domain)
        scenario.account = account  # not ongoing.accounts[0]: that is an earlier test's
        scenario.start()  # the app's *Run a sample exchange* reaches it over HTTP

        def stop() -> None:
            scenario.stop()
            sandbox.app_url = previous_app_url
            server.shutdown()
            server.server_close()
            with served.app_context():
                db.dispose()

        started.append(stop)
        return SimpleNamespace(url=url, domain=domain, account=account, app=served,
                               run_jobs=lambda: _run_jobs(served))

    yield make
    for stop in started:
        stop()


def _install_and_configure(app, domain: str, account) -> str:
    """demo.py's install_demo_shop and configure_demo_shop for `domain`: a real token
    exchange, then the Settings page's own save path; returns the shop's webhook key."""
    from blueprints.settings import save_settings
    from clients.shopify_session import SessionToken
    from clients.shopify_tokens import install
    from jobs.shops import enqueue_details_sync
    from models.settings import settings_of

    token = mint_session_token(domain, API_KEY, API_SECRET)
    claims = jwt.decode(token, options={"verify_signature": False})
    install(SessionToken(domain, claims["sub"], token, claims))
    enqueue_details_sync(domain)
    errors, _ = save_settings(domain, {
        "ongoing_server": "api", "ongoing_warehouse": account.warehouse,
        "goods_owner_id": str(account.goods_owner_id), "ongoing_username": account.username,
        "password": account.password, "warehouse_id": "1", "order_status_open": "200",
        "order_status_returned": "", "order_status_released": "300",
        "order_status_sent": "450", "return_status_notified": "100",
        "return_status_returned": "200", "webhook_token": WEBHOOK_TOKEN,
        "order_number_prefix": "EXCH", "notify_customer": "on"})
    assert not errors, errors
    return settings_of(domain).webhook_key


def _run_jobs(app) -> None:
    """One burst of the worker, in this thread (RQ's worker needs the main thread's signals)."""
    from jobs.worker import run_burst_in_process

    run_burst_in_process(app)


def admin_url(shop, path: str = "/") -> str:
    """What Shopify admin opens: embedded, shop, host and a fresh id_token (valid 60 s)."""
    host = base64.b64encode(f"admin.shopify.com/store/{shop.domain.split('.')[0]}".encode())
    query = {"embedded": "1", "shop": shop.domain, "host": host.decode(),
             "id_token": mint_session_token(shop.domain, API_KEY, API_SECRET)}
    return f"{shop.url}{path}?{urlencode(query)}"


def wait_while_working(shop, page, done: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the worker's jobs until `done()` (read from the page, which updates by itself)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            shown = page.get_by_test_id("state").all_inner_texts()  # does not wait
            raise AssertionError(f"not {what} within {timeout:g} s; the page shows {shown}")
        shop.run_jobs()
        page.wait_for_timeout(200)


def state_of(page) -> str:
    return page.get_by_test_id("state").inner_text().strip()


def open_sample_exchange(shop, page) -> None:
    """App home → *Run a sample exchange* → the (boosted) link to its exchange page."""
    page.goto(admin_url(shop))
    expect(page.get_by_test_id("shop-name")).to_be_visible()
    page.evaluate("window.__marker = 1")
    page.get_by_test_id("run-sample").click()
    link = page.get_by_test_id("sample-link")
    wait_while_working(shop, page, lambda: link.count() == 1, 20, "detected")
    link.click()
    expect(page.get_by_test_id("exchange-status")).to_be_visible()
    assert page.evaluate("window.__marker") == 1, "the exchange page was a full page load"


def test_sample_exchange_watched_live_until_completed(page, demo_shop):
    shop = demo_shop()
    ARTIFACTS.mkdir(exist_ok=True)
    shop.run_jobs()  # the shop's details sync: the home greets it by name
    page.goto(admin_url(shop))
    expect(page.get_by_test_id("shop-name")).to_have_text("Browser Test Store")
    page.screenshot(path=ARTIFACTS / "exchanges-home.png", full_page=True)

    open_sample_exchange(shop, page)
    status = page.get_by_test_id("exchange-status")
    expect(status).to_have_attribute("data-polling", "yes")
    wait_while_working(shop, page, lambda: state_of(page) == "Completed", 60, "completed")

    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    expect(status).to_have_attribute("data-polling", "no")  # done: the polling stopped
    # Like Ongoing's example order: a waybill and PostNord, no URL; Shopify builds the link.
    tracking = page.get_by_test_id("tracking")
    expect(tracking).to_contain_text("PostNord SE")
    number = tracking.locator("dd").first.inner_text().strip()
    assert number.startswith("SBX")  # the sandbox warehouse's waybill
    expect(page.get_by_test_id("no-tracking-link")).to_have_count(0)
    fulfilled = page.get_by_test_id("timeline").locator("li", has_text="released → fulfilled")
    expect(fulfilled).to_contain_text(f"fulfilled with tracking {number}")
    expect(page.get_by_test_id("timeline")).to_contain_text(
        f"Shopify fulfillmentCreate: tracking {number}")
    page.screenshot(path=ARTIFACTS / "exchange-completed.png", full_page=True)


def test_needs_attention_exchange_retried_from_the_ui(page, demo_shop):
    shop = demo_shop(exchange_stock=0)
    ARTIFACTS.mkdir(exist_ok=True)
    open_sample_exchange(shop, page)
    wait_while_working(shop, page, lambda: state_of(page) == "Needs attention", 20,
                       "needing attention")
    expect(page.get_by_test_id("attention")).to_contain_text(f"Out of stock: {EXCHANGED[0]}")

    shop.account.add_article(EXCHANGED[0], "T-shirt, blue, L", 5)  # the warehouse restocks
    retry = page.get_by_role("button", name="Retry")
    retry.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("queued")).to_have_text("Retry queued.")
    wait_while_working(shop, page, lambda: state_of(page) in LATER_THAN_PARKED, 30,
                       "parked or later")

    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    expect(page.get_by_test_id("attention")).to_have_count(0)
    expect(page.get_by_test_id("queued")).to_have_count(0)  # the exchange moved on: history
    page.screenshot(path=ARTIFACTS / "exchange-retried.png", full_page=True)


def test_needs_attention_retried_from_the_home_overview(page, demo_shop):
    shop = demo_shop(exchange_stock=0)
    open_sample_exchange(shop, page)
    wait_while_working(shop, page, lambda: state_of(page) == "Needs attention", 20,
                       "needing attention")
    page.goto(admin_url(shop))
    rows = page.get_by_test_id("attention-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Out of stock: {EXCHANGED[0]}")

    shop.account.add_article(EXCHANGED[0], "T-shirt, blue, L", 5)
    rows.first.get_by_test_id("retry").click()
    expect(page.get_by_test_id("queued")).to_have_text("Retry queued.")
    expect(rows).to_have_count(0)  # gone at once, no reload
    shop.run_jobs()
    page.reload()
    expect(page.get_by_test_id("attention-empty")).to_be_visible()


def test_out_of_stock_sample_alerts_by_mail(page, demo_shop):
    """The demo's second button: the exchange needs attention and the alert mail arrives."""
    from models.alert_form import save_alerts
    from sandbox.mail import MailCatcher

    shop = demo_shop()
    catcher = MailCatcher().start()
    try:
        shop.app.config["SETTINGS"] = dataclasses.replace(shop.app.config["SETTINGS"],
                                                          smtp_url=catcher.url)
        with shop.app.app_context():
            assert save_alerts(shop.domain, {"alert_emails": "owner@shop.example"},
                               allow_local=True) == {}
        page.goto(admin_url(shop))
        page.get_by_test_id("run-sample-out-of-stock").click()
        alerted = page.get_by_test_id("sample-alerted")
        wait_while_working(shop, page, lambda: alerted.count() == 1 and bool(catcher.mails()),
                           30, "alerted")
        expect(page.get_by_test_id("sample-state")).to_have_text("needs attention")
        expect(page.get_by_test_id("sample-mail-link")).to_have_attribute(
            "href", f"{shop.app.config['SETTINGS'].shopify_origin}/admin/mail")
        [mail] = catcher.mails()
        assert mail.to == ["owner@shop.example"] and "Out of stock: TSHIRT-XL-BLUE" in mail.text
        page.screenshot(path=ARTIFACTS / "sample-out-of-stock.png", full_page=True)
    finally:
        catcher.stop()
