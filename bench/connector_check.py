"""CPU of the connector check before release (jobs/exchange_guard.py `check_before_release`)
with N open orders in Ongoing's GET /orders answer (the sandbox's GetOrderModel shape, decoded
by the real client from a canned answer: no network), against a fresh database (PostgreSQL when
reachable, else SQLite; its own CPU is not counted).

Two cases per N: every order of another customer (the common case: no database lookup) and
every order of the same customer, each one of the shop's other exchanges (the worst case that
still releases: all of them looked up). The check runs as in a step: its timeline line waits
for the step's next write, which is not counted. The share of full garbage collections is
printed beside: with the app loaded each takes tens of ms, and a large answer brings them on.

    .venv/bin/python -m bench.connector_check [--orders 10,50,200] [--checks 100000]
"""
from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlmodel import select

from app import create_app
from bench.machine import line
from bench.processes import clean_env, database
from clients.ongoing import ORDERS_PAGE, OngoingClient, OngoingCredentials
from clients.transport import Response
from jobs.exchange_guard import applying, check_before_release
from jobs.exchange_rules import RELEASE
from models import db
from models.exchange import Exchange
from models.exchange_writes import step_writes
from models.settings import apply, settings_for, settings_of
from models.shop import Shop
from models.types import utcnow
from sandbox.ongoing.store import Account, Order, order_model

SHOP = "bench-shop.myshopify.com"
SKU, OTHER_SKU = "SHIRT-L", "SOCKS-M"
FIRST_ID = 600_000  # the Ongoing order ids of the shop's exchanges: FIRST_ID + n
CUSTOMER = {"customerNumber": "CN1", "name": "Åsa Kund", "address1": "Gatan 1",
            "postCode": "111 22", "city": "Stockholm", "countryCode": "SE",
            "email": "asa@example.com", "mobilePhone": "+46701234567"}


def orders_pages(count: int, *, same: bool) -> Canned:
    """GET /orders's answers, a page of ORDERS_PAGE each: `count` open orders holding SKU (ours
    first), two lines each, all of CUSTOMER (`same`) or each of its own customer but ours."""
    account = Account("sandbox", "wh", 1, "user", "secret")
    for sku in (SKU, OTHER_SKU):
        account.add_article(sku, f"Article {sku} – blå", 10)
    orders = []
    for n in range(count):
        consignee = CUSTOMER if same or n == 0 else \
            {**CUSTOMER, "customerNumber": f"CN{1000 + n}", "name": f"Kund {n}",
             "postCode": f"{11000 + n}"}
        body = {"orderNumber": f"EXCH-{1000 + n}-1", "deliveryDate": "2026-11-01T00:00:00Z",
                "consignee": consignee, "goodsOwnerOrderId": f"gid://shopify/Return/{n}",
                "referenceNumber": f"#{1000 + n}"}
        lines = [{"id": 10 * n + i, "rowNumber": str(i + 1), "articleNumber": sku,
                  "ordered": 1, "picked": 0, "returned": 0,
                  "source": {"externalId": f"gid://shopify/LineItem/{n}{i}"}}
                 for i, sku in enumerate((SKU, OTHER_SKU))]
        order = Order(FIRST_ID + n, f"EXCH-{1000 + n}-1", body, lines, 200,
                      created="2026-11-01T10:00:00.000Z")
        orders.append(order_model(account, order))
    pages = {None: orders[:ORDERS_PAGE]}
    for start in range(ORDERS_PAGE, count + 1, ORDERS_PAGE):  # the next page's orderIdFrom
        pages[str(FIRST_ID + start)] = orders[start:start + ORDERS_PAGE]
    return Canned({key: json.dumps(page).encode() for key, page in pages.items()})


class Canned:
    """A transport that answers GET /orders with the page its orderIdFrom asks for."""

    def __init__(self, pages: dict[str | None, bytes]):
        self.pages = pages

    def request(self, method, url, **_kwargs) -> Response:
        start = parse_qs(urlsplit(url).query).get("orderIdFrom", [None])[0]
        return Response(200, [], self.pages[start])


def _shop(exchanges: int) -> None:
    """The bench shop and its exchanges, one per Ongoing order id from FIRST_ID on."""
    with db.session() as s:
        shop = Shop(domain=SHOP, name="bench", installed_at=utcnow())
        s.add(shop)
        s.flush()
        apply(settings_for(shop, session=s), {"order_status_sent": 450})
        s.add_all(Exchange(shop_domain=SHOP, state="parked",
                           return_gid=f"gid://shopify/Return/{n}",
                           order_gid=f"gid://shopify/Order/{n}", order_name=f"#{1000 + n}",
                           items=[{"sku": SKU, "quantity": 1}],
                           ongoing_order_number=f"EXCH-{1000 + n}-1",
                           ongoing_order_id=FIRST_ID + n,
                           created_at=utcnow() - timedelta(days=1))
                  for n in range(exchanges))
    with db.engine().connect() as connection:  # planner statistics, as a live database has
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
        connection.commit()


class FullCollections:
    """CPU of the full garbage collections (generation 2) while it is installed: on this
    process's heap (the app loaded) each takes tens of ms, and a large answer brings them on."""

    def __init__(self) -> None:
        self.seconds, self._started = 0.0, 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started


def per_check(exchange: Exchange, client: OngoingClient, rounds: int) -> tuple[float, float]:
    """µs of this process's CPU per check, and of it in full garbage collections: the best of
    five runs of `rounds` checks (the least disturbed by other load, as bench/machine.py takes
    its reference). A run is long enough to hold several full collections (one every ~100
    checks of 200 orders: a short run had one or none)."""
    settings = settings_of(SHOP)

    def check() -> None:
        with step_writes(exchange.id), applying(RELEASE, "ongoing: Returned"):
            check_before_release(exchange, client, settings)

    for _ in range(20):
        check()
    runs = []
    for _ in range(5):
        collections = FullCollections()
        gc.callbacks.append(collections)
        started = time.process_time()
        for _ in range(rounds):
            check()
        cpu = time.process_time() - started
        gc.callbacks.remove(collections)
        runs.append((cpu / rounds * 1e6, collections.seconds / rounds * 1e6))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="10,50,200")
    parser.add_argument("--checks", type=int, default=100000,
                        help="open orders checked per run (checks per run: this / N)")
    args = parser.parse_args()
    counts = [int(n) for n in args.orders.split(",")]
    with tempfile.TemporaryDirectory() as tmp, database(Path(tmp)) as url:
        env = clean_env(("SWAPLINE_", "SHOPIFY_", "DATABASE_URL", "REDIS_URL", "ONGOING_"))
        env.update(SHOPIFY_API_KEY="bench-api-key", SHOPIFY_API_SECRET="bench-" + "s" * 32,
                   SWAPLINE_ENCRYPTION_KEYS=Fernet.generate_key().decode(), DATABASE_URL=url,
                   SWAPLINE_INSTANCE_PATH=str(Path(tmp) / "instance"))
        app = create_app(env)
        with app.app_context():
            _shop(max(counts))
            with db.session() as s:
                exchange = s.exec(select(Exchange).where(
                    Exchange.ongoing_order_id == FIRST_ID)).one()
            print(f"database: {url.split(':', 1)[0]}")  # noqa: T201
            for count in counts:
                for same in (False, True):
                    client = OngoingClient(OngoingCredentials("api", "wh", 1, "u", "p"),
                                           url_template="http://127.0.0.1:9/{warehouse}",
                                           http=orders_pages(count, same=same))
                    cpu, full_gc = per_check(exchange, client, max(20, args.checks // count))
                    who = "same customer " if same else "other customers"
                    print(f"{count:>4} open orders, {who}  {cpu:6.0f} µs CPU/check"  # noqa: T201
                          f"  (full garbage collections {full_gc:5.0f})")
            db.dispose()
        print(line())  # noqa: T201


if __name__ == "__main__":
    main()
