"""The shops and exchanges bench.lifecycle and bench.soak drive: each shop installed in the app
and stocked in both sandboxes with its orders and returns, and the app's view of the exchanges
(their states, waiting for one, the periodic reconciliations seen)."""
from __future__ import annotations

import contextlib
import secrets
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import jwt
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import text
from sqlmodel import select

from bench.load import request
from clients.ongoing import OngoingClient, OngoingCredentials
from clients.shopify_session import SessionToken
from clients.shopify_tokens import install
from jobs.queue import jobs
from models import db
from models.exchange import Exchange
from models.settings import ShopSettings, apply, settings_of
from sandbox.ongoing import SandboxOngoing
from sandbox.shopify import SandboxShopify, mint_session_token

API_KEY = "bench-api-key"
API_SECRET = "bench-api-secret-" + secrets.token_hex(24)
TOKEN = "ongoing-webhook-token-" + secrets.token_hex(16)
RETURNED_SKU, EXCHANGE_SKU = "SHIRT-M", "SHIRT-L"
QUEUE = "swapline"
POLL_S = 0.25


@dataclass
class Case:
    """One exchange as the bench drives it."""

    index: int
    shop: str
    account: object  # sandbox Ongoing Account of the shop
    order_gid: str
    return_gid: str
    exchange_id: int | None = None
    ongoing_order_id: int | None = None
    sent_at: datetime | None = None


@dataclass
class Shop:
    domain: str
    account: object
    webhook_key: str = ""


class Timeout(Exception):
    """The hard cap or a phase's own limit ran out."""


def on_alarm(_signum, _frame):
    raise Timeout("hard time cap reached")


@contextlib.contextmanager
def hard_cap(time_limit: float, started: float):
    """SIGALRM a minute after `time_limit` (a last resort: waits stop at the deadline first);
    on the way out, the total wall time since `started`."""
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(time_limit) + 60)
    try:
        yield
    finally:
        signal.alarm(0)
        print(f"\ntotal wall time (setup, run, report, cleanup): "
              f"{time.monotonic() - started:.1f} s")


def run_capped(args, run) -> int:
    """A scenario's exit code: run(args, started) under the hard cap; 1 when it reports a
    failure or a time limit stops it (the cleanup has run by then)."""
    started = time.monotonic()
    with hard_cap(args.time_limit, started):
        try:
            return 0 if run(args, started) else 1
        except Timeout as exc:
            print(f"RUN FAILED: {exc}")
            return 1


def setup_shops(args, shopify: SandboxShopify, ongoing: SandboxOngoing) -> tuple[list, list]:
    """Install each shop by token exchange, save its settings, stock both systems, make the
    orders and returns. Needs an app context."""
    shops = [setup_shop(k, -(-args.exchanges // args.shops), shopify, ongoing)
             for k in range(args.shops)]
    clients = {s.domain: OngoingClient(OngoingCredentials(
        "api", s.account.warehouse, s.account.goods_owner_id, s.account.username,
        s.account.password), url_template=ongoing.url_template) for s in shops}
    cases = []
    for i in range(args.exchanges):
        shop = shops[i % args.shops]
        order = shopify.store.create_order(shop.domain, items=[(RETURNED_SKU, 1)],
                                           capture_mode="authorization", name=f"#{1000 + i}")
        # The original order, shipped long ago by the warehouse (another integration made it).
        original = clients[shop.domain].create_or_update_order({
            "orderNumber": str(1000 + i), "deliveryDate": "2026-11-01T00:00:00Z",
            "consignee": {"name": "A Customer", "address1": "Street 1", "postCode": "11122",
                          "city": "Stockholm", "countryCode": "SE"},
            "orderLines": [{"rowNumber": "1", "articleNumber": RETURNED_SKU,
                            "numberOfItems": 1}]})["orderId"]
        ongoing.move_order(original, 450)
        ret = shopify.store.create_return(shop.domain, order["id"], returned=[(RETURNED_SKU, 1)],
                                          exchange=[(EXCHANGE_SKU, 1)])
        cases.append(Case(i, shop.domain, shop.account, order["id"], ret["id"]))
    return shops, cases


def setup_shop(k: int, per_shop: int, shopify: SandboxShopify, ongoing: SandboxOngoing) -> Shop:
    """Shop number k: installed, its settings saved, both systems stocked for `per_shop`."""
    domain = f"bench-{k}-{secrets.token_hex(3)}.myshopify.com"
    password = "ongoing-pass-" + secrets.token_hex(12)
    account = ongoing.add_account(f"wh{k}{secrets.token_hex(3)}", 4711 + k, f"WSIbench{k}",
                                  password)
    token = mint_session_token(domain, API_KEY, API_SECRET)
    claims = jwt.decode(token, options={"verify_signature": False})
    install(SessionToken(domain, "42", token, claims))
    with db.session() as s:
        row = s.exec(select(ShopSettings).where(ShopSettings.id == settings_of(domain).id)).one()
        apply(row, {"ongoing_server": "api", "ongoing_warehouse": account.warehouse,
                    "goods_owner_id": account.goods_owner_id,
                    "ongoing_username": account.username, "password": password,
                    "warehouse_id": 1, "order_status_open": 200,
                    "order_status_returned": None, "order_status_released": 300,
                    "order_status_sent": 450, "return_status_notified": 100,
                    "return_status_returned": 200, "webhook_token": TOKEN,
                    "instant_exchange": False, "notify_customer": True})
    account.add_article(RETURNED_SKU, "Shirt M", per_shop + 10)
    account.add_article(EXCHANGE_SKU, "Shirt L", per_shop + 10)
    shopify.store.set_workflow(domain, "processing")
    shopify.store.add_variant(domain, RETURNED_SKU, "20.00", "Shirt - M")
    shopify.store.add_variant(domain, EXCHANGE_SKU, "25.00", "Shirt - L")
    return Shop(domain, account, settings_of(domain).webhook_key)


def exchanges_by_return() -> dict[tuple[str, str], Exchange]:
    """Every exchange row, by (shop, return gid)."""
    with db.session() as s:
        return {(e.shop_domain, e.return_gid): e for e in s.exec(select(Exchange)).all()}


class Run:
    """The bench's view of the app: the DB, the queue, the clock and the deadline."""

    def __init__(self, app, port: int, n: int, deadline: float):
        self.app, self.port, self.n, self.deadline = app, port, n, deadline
        self.reconciliations: dict[str, str] = {}
        self.looked_at = 0.0

    def post(self, path: str, body: bytes, headers: dict) -> None:
        status, answer = request(self.port, "POST", path, body, headers)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {answer[:200]!r}")

    def states(self) -> Counter:
        with db.engine().connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM exchange GROUP BY state"))
            return Counter({state: count for state, count in rows})

    def wait_for(self, state: str, limit: float) -> float:
        """Until every exchange is in `state`; monotonic time it was seen. Raises on a stuck
        run (some in needs_attention/cancelled and nothing else moving) or the time limit."""
        deadline, last_note = min(self.deadline, time.monotonic() + limit), time.monotonic()
        while True:
            counts = self.states()
            now = time.monotonic()
            if counts[state] == self.n:
                return now
            if now - self.looked_at > 5:
                self.note_reconciliations()
                self.looked_at = now
            settled = counts[state] + counts["needs_attention"] + counts["cancelled"]
            if settled == self.n and counts[state] < self.n:
                raise Timeout(f"stuck waiting for {state}: {dict(counts)}")
            if now > deadline:
                raise Timeout(f"timed out waiting for {state}: {dict(counts)}")
            if now - last_note > 30:
                print(f"  ... waiting for {state}: {dict(counts)}", file=sys.stderr)
                last_note = now
            time.sleep(POLL_S)

    def note_reconciliations(self) -> None:
        """Remember every periodic reconciliation that ran (its outcome says what it read)."""
        connection = jobs().connection
        for job_id in FinishedJobRegistry(QUEUE, connection=connection).get_job_ids():
            if job_id.startswith("reconcile-") and not job_id.startswith("reconcile-all") \
                    and job_id not in self.reconciliations:
                with contextlib.suppress(Exception):
                    job = Job.fetch(job_id, connection=connection)
                    took = (job.ended_at - job.started_at).total_seconds()
                    self.reconciliations[job_id] = f"{job.started_at:%H:%M:%S} UTC, took " \
                                                   f"{took:.1f} s: {job.return_value()}"
