"""`make demo`: the sandbox Shopify and Ongoing, a worker and the app, on the embedded defaults.

The demo shop is installed (a real token exchange against the sandbox Shopify) and configured
(the same validation as the Settings page, live against the sandbox Ongoing) before the URL is
printed, so the merchant lands on a working app.

The composition root of the demo, beside app.py: it may import both the product and the sandbox,
which never import each other's code (the sandbox talks to the app over HTTP only). app.py's
`demo` command imports it when run, so the web and worker processes never load the sandbox.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from urllib.parse import urlparse

import click
import jwt
from flask import Flask
from werkzeug.serving import make_server

from blueprints.settings import save_settings
from clients.shopify_session import SessionToken
from clients.shopify_tokens import install, needs_token
from jobs import embedded_redis
from jobs.queue import jobs
from jobs.shops import enqueue_details_sync
from models import db, migrate
from models.alert_form import save_alerts
from models.settings import settings_of
from models.shop import get_shop
from sandbox.mail import MailCatcher
from sandbox.ongoing import SandboxOngoing
from sandbox.ongoing import store as ongoing_store
from sandbox.scenario import SampleScenario
from sandbox.shopify import SandboxShopify, mint_session_token
from sandbox.shopify import store as shopify_store

DEMO_SHOP = "swapline-demo.myshopify.com"
DEMO_SHOP_NAME = "Swapline Demo Store"
DEMO_ONGOING = {"warehouse": "swaplinedemo", "goods_owner_id": 1001,
                "username": "WSIswaplinedemo", "password": "sandbox-ongoing-password"}
DEMO_WEBHOOK_TOKEN = "sandbox-ongoing-webhook-token-0123456789"
DEMO_ALERT_EMAIL = "merchant@swapline-demo.example"
DEMO_MAIL_PORT = 9025  # the sandbox mail catcher under `make demo`
DEMO_ARTICLES = (("TSHIRT-M-BLUE", "T-shirt, blue, M", 25),
                 ("TSHIRT-L-BLUE", "T-shirt, blue, L", 12), ("SNEAKER-42", "Sneaker, size 42", 8))


def seed_ids() -> None:
    """Fresh id ranges for this run: ids of an earlier run (kept in the app's database) must
    never come back, exactly as real Shopify and Ongoing never reuse one."""
    now = int(time.time())
    shopify_store.reseed_ids(now * 1000)
    ongoing_store.reseed_ids((now % 100_000) * 10_000)  # Ongoing ids are int32


def start_mail(app: Flask, port: int) -> MailCatcher:
    """The sandbox mail catcher on `port` (another free one when it is taken); the app's alert
    mail goes to it (SWAPLINE_SMTP_URL)."""
    catcher = MailCatcher(port=port if port and port_free(port) else 0).start()
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], smtp_url=catcher.url)
    return catcher


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_shopify(app: Flask, app_url: str, mail: MailCatcher | None = None) -> SandboxShopify:
    """The sandbox Shopify on SHOPIFY_API_ORIGIN's port, grants kept on disk across runs; its
    admin lists the catcher's mails at /admin/mail."""
    settings = app.config["SETTINGS"]
    origin = urlparse(settings.shopify_origin)
    sandbox = SandboxShopify(settings.api_key, settings.api_secret, host=origin.hostname,
                             port=origin.port, app_url=app_url,
                             state_path=settings.instance_path / "sandbox-shopify.json",
                             mail=mail)
    sandbox.store.add_shop(DEMO_SHOP, DEMO_SHOP_NAME)
    return sandbox.start()


def start_ongoing(app: Flask, *, returned_status: bool = False) -> SandboxOngoing:
    """The sandbox Ongoing on the template's port, with the demo goods owner and its stock;
    Ongoing's standard statuses, plus a 3PL's 800 Returned when `returned_status`."""
    origin = urlparse(app.config["SETTINGS"].ongoing_url_template.split("{", 1)[0])
    sandbox = SandboxOngoing(host=origin.hostname, port=origin.port)
    account = sandbox.add_account(DEMO_ONGOING["warehouse"], DEMO_ONGOING["goods_owner_id"],
                                  DEMO_ONGOING["username"], DEMO_ONGOING["password"])
    if returned_status:
        account.add_order_status(*ongoing_store.THREE_PL_RETURNED)
    for number, name, stock in DEMO_ARTICLES:
        account.add_article(number, name, stock)
    return sandbox.start()


def install_demo_shop(app: Flask) -> None:
    """Open the app once for the demo shop, as Shopify admin would: the token exchange."""
    settings = app.config["SETTINGS"]
    with db.session() as s:
        if not needs_token(get_shop(DEMO_SHOP, session=s)):
            return
    token = mint_session_token(DEMO_SHOP, settings.api_key, settings.api_secret)
    claims = jwt.decode(token, options={"verify_signature": False})
    install(SessionToken(DEMO_SHOP, claims["sub"], token, claims))
    enqueue_details_sync(DEMO_SHOP)


def configure_demo_shop(*, returned_status: bool = False) -> str:
    """Save working Ongoing settings through the Settings page's own path; the webhook key."""
    returned = str(ongoing_store.THREE_PL_RETURNED[0]) if returned_status else ""
    form = {"ongoing_server": "api", "ongoing_warehouse": DEMO_ONGOING["warehouse"],
            "goods_owner_id": str(DEMO_ONGOING["goods_owner_id"]),
            "ongoing_username": DEMO_ONGOING["username"], "password": DEMO_ONGOING["password"],
            "warehouse_id": "1", "order_status_open": "200", "order_status_returned": returned,
            "order_status_released": "300", "order_status_sent": "450",
            "return_status_notified": "100", "return_status_returned": "200",
            "webhook_token": DEMO_WEBHOOK_TOKEN, "order_number_prefix": "EXCH",
            "notify_customer": "on"}
    errors, _ = save_settings(DEMO_SHOP, form)
    if errors:
        raise click.ClickException(f"demo settings refused: {errors}")
    if not settings_of(DEMO_SHOP).alert_emails:  # a rerun keeps what the merchant chose
        save_alerts(DEMO_SHOP, {"alert_emails": DEMO_ALERT_EMAIL}, allow_local=True)
    return settings_of(DEMO_SHOP).webhook_key


def start_worker(smtp_url: str) -> subprocess.Popen:
    """`flask --app app worker` in its own session: Ctrl-C reaches only the demo, which stops it."""
    env = {**os.environ, "SWAPLINE_SANDBOX": "1", "SWAPLINE_SMTP_URL": smtp_url,
           "SWAPLINE_LOG_LEVEL": os.environ.get("SWAPLINE_LOG_LEVEL", "WARNING")}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], env=env,
                            start_new_session=True)


@dataclass
class Demo:
    """What the demo started, to stop it again."""

    shopify: SandboxShopify
    ongoing: SandboxOngoing
    scenario: SampleScenario
    mail: MailCatcher

    def stop(self) -> None:
        self.scenario.stop()
        self.shopify.stop()
        self.ongoing.stop()
        self.mail.stop()


def start_demo(app: Flask, app_url: str, *, returned_status: bool = False,
               mail_port: int = 0) -> Demo:
    """Everything but the web server and the worker: migrated database, queue, both sandboxes
    and the mail catcher (on `mail_port`, 0: any free one), the demo shop installed and
    configured, the sample scenario (also used by the tests).
    `returned_status`: the warehouse has a 3PL-added Returned order status (800)."""
    settings = app.config["SETTINGS"]
    if not settings.sandbox:
        raise click.ClickException("the demo runs only with SWAPLINE_SANDBOX=1 (make demo)")
    seed_ids()
    mail = start_mail(app, mail_port)
    shopify = start_shopify(app, app_url, mail)
    with app.app_context():
        migrate.upgrade(db.engine())
        jobs().connection.ping()  # starts the embedded Redis (when no REDIS_URL) for all
        install_demo_shop(app)
        ongoing = start_ongoing(app, returned_status=returned_status)
        key = configure_demo_shop(returned_status=returned_status)
    ongoing.register_webhook(ongoing.accounts[0], f"{app_url}/webhooks/ongoing/{key}",
                             DEMO_WEBHOOK_TOKEN)
    scenario = SampleScenario(shopify, ongoing, DEMO_SHOP).start()  # answers the app's button
    return Demo(shopify, ongoing, scenario, mail)


def run_demo(app: Flask, *, port: int, returned_status: bool = False) -> None:
    """Start everything, print the one URL to open, stop cleanly on Ctrl-C."""
    settings = app.config["SETTINGS"]
    demo = start_demo(app, f"http://127.0.0.1:{port}", returned_status=returned_status,
                      mail_port=DEMO_MAIL_PORT)
    shopify = demo.shopify
    worker = start_worker(demo.mail.url)
    server = make_server("127.0.0.1", port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if "SWAPLINE_LOG_LEVEL" not in os.environ:  # the URL must not drown in request lines
        logging.getLogger().setLevel(logging.WARNING)
    click.echo(f"\nSwapline demo is running. Open:\n\n  {shopify.origin}/admin/apps/swapline"
               f"?shop={DEMO_SHOP}\n\nAlert mail (to {DEMO_ALERT_EMAIL}) arrives at"
               f"\n\n  {shopify.origin}/admin/mail\n\nCtrl-C stops everything.\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        server.server_close()
        worker.terminate()
        worker.wait(timeout=30)
        demo.stop()
        if not settings.redis_url:
            embedded_redis.stop_server(settings.instance_path)
        click.echo("Swapline demo stopped.")
