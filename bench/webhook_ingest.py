"""Benchmark: signed Shopify webhooks into POST /webhooks/shopify vs a bare route, on gunicorn;
beside them Ongoing notices about an exchange order (stored) and about other orders (ignored).

Fresh PostgreSQL database (else SQLite) and Redis db 12 (else embedded); loopback only. Targets:
webhook p99 < 25 ms and webhook throughput >= half the bare route's. Usage:
    .venv/bin/python -m bench.webhook_ingest [--requests 2000] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import text

from bench.load import Phase, load
from bench.processes import (
    HOST,
    clean_env,
    database,
    free_port,
    gunicorn_command,
    process,
    redis_url,
    wait_until_ready,
)
from bench.report import log_problems, percentile, print_checks
from models import db
from models.exchange import Exchange
from models.settings import apply, settings_for
from models.shop import Shop
from sandbox.shopify import webhook_headers

SHOP = "bench-shop.myshopify.com"
TOPIC = "returns/approve"  # no handler yet, and no worker runs: recording is the whole cost
API_SECRET = "bench-api-secret-" + secrets.token_hex(16)
HARD_CAP_S = 120.0  # all traffic of one run, both phases together
GTHREADS = 4  # threads per worker with --worker-class gthread
P99_TARGET_MS = 25.0
RATIO_TARGET = 0.5
ONGOING_TOKEN = "bench-ongoing-token-" + secrets.token_hex(16)
EXCHANGES = 1000  # of the bench shop, so the lookup of an Ongoing notice searches a real index
EXCHANGE_ORDER_ID = 700_000  # Ongoing order id of the bench shop's first exchange


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync",
                        help=f"gunicorn worker class (gthread: {GTHREADS} threads per worker)")
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..100000 and --concurrency 1..64")
    return args


@contextlib.contextmanager
def gunicorn(env: dict, port: int, log: Path, args: argparse.Namespace):
    """Run the bench app under gunicorn with 2 workers; always terminated on the way out."""
    # --threads goes along with sync too, as it always has: gunicorn then runs gthread workers
    command = gunicorn_command(port, "bench.bench_app:create_bench_app()", args.worker_class,
                               GTHREADS)
    with process(command, env, log, stop_timeout=15) as server:
        wait_until_ready(server, port)
        yield server


def approve_payload(n: int) -> bytes:
    """A returns/approve body shaped like Shopify's (~1 KB), with ids unique to `n`."""
    r, o = 9_000_000 + n, 5_000_000 + n
    line = {"quantity": 1, "return_reason": "size_too_small", "return_reason_note": "",
            "customer_note": "Could I get the next size up, please?"}
    money = {"amount": "4.95", "currency_code": "EUR"}
    return json.dumps({
        "id": r, "admin_graphql_api_id": f"gid://shopify/Return/{r}", "status": "open",
        "order": {"id": o, "admin_graphql_api_id": f"gid://shopify/Order/{o}"},
        "name": f"#{n}-R1", "total_return_line_items": 2, "total_exchange_line_items": 1,
        "return_line_items": [
            {"id": r * 10 + k, "admin_graphql_api_id": f"gid://shopify/ReturnLineItem/{r}{k}",
             "fulfillment_line_item": {"id": o * 10 + k, "line_item": {
                 "id": o * 100 + k, "admin_graphql_api_id": f"gid://shopify/LineItem/{o}{k}"}},
             **line} for k in (1, 2)],
        "exchange_line_items": [{"id": r * 10 + 3, "line_item": None,
                                 "admin_graphql_api_id": f"gid://shopify/ExchangeLineItem/{r}3"}],
        "return_shipping_fees": [{"id": r * 10 + 4, "price": {"shop_money": money,
                                                             "presentment_money": money},
                                  "admin_graphql_api_id": f"gid://shopify/ReturnShippingFee/{r}4"}],
    }).encode()


def webhook_requests(count: int) -> list[tuple[bytes, dict]]:
    """Signed webhooks, each with its own X-Shopify-Webhook-Id, built before the clock starts."""
    bodies = (approve_payload(n) for n in range(count))
    return [(body, webhook_headers(TOPIC, SHOP, body, API_SECRET, webhook_id=str(uuid.uuid4())))
            for body in bodies]


def ongoing_shop(env: dict) -> str:
    """The bench shop's Ongoing webhook key, its settings and EXCHANGES exchanges saved (the
    app's own models, in this process); no worker runs, so nothing else reads them."""
    from app import create_app

    app = create_app(env)
    with app.app_context():
        with db.session() as s:
            shop = Shop(domain=SHOP, name="bench")
            s.add(shop)
            s.flush()
            settings = settings_for(shop, session=s)
            apply(settings, {"webhook_token": ONGOING_TOKEN, "order_status_sent": 450})
            key = settings.webhook_key
            s.add_all(Exchange(shop_domain=SHOP, return_gid=f"gid://shopify/Return/{n}",
                               order_gid=f"gid://shopify/Order/{n}", order_name=f"#{1000 + n}",
                               state="fulfilled" if n % 5 else "parked",
                               ongoing_order_id=EXCHANGE_ORDER_ID + n,
                               ongoing_order_number=f"EXCH-{1000 + n}-1")
                      for n in range(EXCHANGES))
        db.dispose()
    return key


def ongoing_requests(count: int, *, ours: bool) -> list[tuple[bytes, dict]]:
    """Ongoing "Order status is changed" notices at Sent (~1 KB, shaped like the sandbox's),
    about the bench shop's exchange orders, or about other orders of the goods owner."""
    headers = {"Content-Type": "application/json", "X-Auth-Token": ONGOING_TOKEN}
    work = []
    for n in range(count):
        order_id = EXCHANGE_ORDER_ID + n % EXCHANGES if ours else 5_000_000 + n
        number = f"EXCH-{1000 + n % EXCHANGES}-1" if ours else str(20_000 + n)
        body = {"webhookOrdersId": 1, "webhookEventId": (1 if ours else 2) * 10_000_000 + n,
                "system": "bench", "timestamp": "2026-12-03T10:00:00.0000000",
                "orderId": order_id, "orderNumber": number, "goodsOwnerId": 4711,
                "goodsOwnerOrderId": f"gid://shopify/Return/{n}", "consigneeOrderNumber": None,
                "path": f"/api/v1/orders/{order_id}", "byUser": {"userId": 1},
                "byComputer": {"computerId": 1, "computerName": "BENCH-WMS"},
                "orderStatus": {"number": 450}, "currentShipmentId": 30_000 + n,
                "webhookTemplate": "Order status is changed", "goodsOwnerName": "Bench AB",
                "goodsOwnerClasses": [],
                "tracking": [{"trackingUrl": f"https://tracking.example/{n}",
                              "waybill": f"00370{n:09d}", "isReturn": False}],
                "parcels": [{"id": 40_000 + n, "parcelNumber": f"00370{n:09d}",
                             "isReturnParcel": False,
                             "tracking": {"trackingUrl": f"https://tracking.example/{n}"}}]}
        work.append((json.dumps(body).encode(), headers))
    return work


def summarize(name: str, run: Phase) -> tuple[float, float]:
    """Print one phase's numbers; return its requests/s and p99 in ms."""
    rate = len(run.latencies) / run.elapsed if run.elapsed else 0.0
    p50, p99 = percentile(run.latencies, 0.50), percentile(run.latencies, 0.99)
    print(f"{name:<16} {len(run.latencies):>6} answered in {run.elapsed:6.2f} s {rate:8.1f} req/s"
          f"  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  statuses {dict(run.statuses)}"
          f"  errors {run.errors}")
    return rate, p99


def count_deliveries(url: str) -> int:
    """Rows in webhook_delivery."""
    engine = db.engine_for(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM webhook_delivery")).scalar_one()
    finally:
        engine.dispose()


def server_env(url: str, queue_url: str | None, tmp: Path) -> dict:
    """The environment create_app() reads, with nothing inherited that would change it."""
    env = clean_env(("SWAPLINE_", "SHOPIFY_", "DATABASE_URL", "REDIS_URL"))
    env.update(SHOPIFY_API_KEY="bench-api-key", SHOPIFY_API_SECRET=API_SECRET,
               SWAPLINE_ENCRYPTION_KEYS=Fernet.generate_key().decode(), DATABASE_URL=url,
               SWAPLINE_INSTANCE_PATH=str(tmp / "instance"))
    if queue_url:
        env["REDIS_URL"] = queue_url
    return env


def measure(port: int, key: str, args: argparse.Namespace) -> dict[str, Phase]:
    """The Shopify webhooks, the same bytes to the bare route, then Ongoing notices about our
    exchange orders (stored) and about other orders (ignored), all inside one hard time cap."""
    work = webhook_requests(args.requests)
    stored, ignored = (ongoing_requests(args.requests, ours=ours) for ours in (True, False))
    deadline = time.monotonic() + HARD_CAP_S
    ongoing = f"/webhooks/ongoing/{key}"
    return {"webhooks": load(port, "/webhooks/shopify", work, args.concurrency, deadline),
            "bare": load(port, "/bench/bare", work, args.concurrency, deadline),
            "ongoing stored": load(port, ongoing, stored, args.concurrency, deadline),
            "ongoing ignored": load(port, ongoing, ignored, args.concurrency, deadline)}


def main() -> int:
    """Set up, run both phases, report against the targets; clean up whatever happens."""
    args = parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swapline-bench-")))
        url = stack.enter_context(database(tmp))
        queue_url = stack.enter_context(redis_url(tmp))
        port, log = free_port(), tmp / "gunicorn.log"
        threads = f" x {GTHREADS} threads" if args.worker_class == "gthread" else ""
        print(f"database {url.split('@')[-1]}, redis {queue_url} (the run's own), "
              f"gunicorn 2 {args.worker_class} workers{threads} on {HOST}:{port}, "
              f"{args.requests} requests per phase from {args.concurrency} client threads")
        env = server_env(url, queue_url, tmp)
        key = ongoing_shop(env)
        try:
            with gunicorn(env, port, log, args):
                phases = measure(port, key, args)
        finally:  # gunicorn has stopped here, so its log is complete
            if log.exists():
                log_problems(log)
        return report(args.requests, phases, count_deliveries(url))


def report(expected: int, phases: dict[str, Phase], rows: int) -> int:
    """Print every phase, the checks and the targets; 0 when everything holds."""
    numbers = {name: summarize(name, run) for name, run in phases.items()}
    (hook_rate, p99), (bare_rate, _) = numbers["webhooks"], numbers["bare"]
    ratio = hook_rate / bare_rate if bare_rate else 0.0
    hooks = phases["webhooks"]
    checks = {f"{name} answered 200: {phases[name].statuses[200]}/{expected}":
              phases[name].statuses[200] == expected
              for name in ("webhooks", "ongoing stored", "ongoing ignored")}
    checks[f"rows in webhook_delivery: {rows}/{2 * expected} (webhooks + ongoing stored; "
           f"none for ignored)"] = rows == 2 * expected
    checks[f"ongoing ignored queued nothing: {phases['ongoing ignored'].queued}"] = \
        phases["ongoing ignored"].queued == 0
    targets = {f"target p99 < {P99_TARGET_MS:.0f} ms: p99 {p99:.2f} ms": p99 < P99_TARGET_MS,
               f"target webhooks >= {RATIO_TARGET:.0%} of bare throughput: {ratio:.0%}":
               ratio >= RATIO_TARGET}
    print(f"queued in Redis: {hooks.queued}; throughput ratio webhooks/bare: {ratio:.2f}")
    if bare_rate:
        print("throughput ratio to bare: " + ", ".join(
            f"{name} {numbers[name][0] / bare_rate:.2f}" for name in
            ("ongoing stored", "ongoing ignored")))
    print_checks(checks, indent="")
    print_checks(targets, indent="", words=("met", "NOT met"))
    return 0 if all(checks.values()) and all(targets.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn stopped and the database dropped")
