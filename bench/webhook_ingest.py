"""Benchmark: signed Shopify webhooks into POST /webhooks/shopify beside a verify-only route (the
same HMAC check, nothing stored: the baseline) and a bare one, on gunicorn; then Ongoing notices
about an exchange order (stored) and about other orders (ignored); and, with a worker running,
how soon after its 200 an idle queue starts a webhook's job.

Two measurements of each class. Saturation: --concurrency client threads each send their next
request as soon as the last is answered (closed loop), so the server is always busy: its
requests/s, and the ratios against the verify-only route, are the throughput targets. Latency
there is mostly queueing: with C connections on W sync workers a request waits behind C / W - 1
others (the mean is C / requests/s), so its p99 is printed but not judged. Paced: the same
classes again at a fixed rate, PACED_SHARE of the verify-only route's saturated requests/s (half
the rate the stored-webhook target asks for: a busy server with headroom, far above a merchant
day's real-time peak), on a fixed schedule (open loop), each latency counted from the request's
due time so a stall counts for every request it delays; its p99 is the <= 15 ms target.

Fresh PostgreSQL database (else SQLite) and a Redis of the run's own; loopback only; no worker
runs during the throughput phases (the recorded rows wait in the outbox). Targets: stored
webhooks >= 0.5x and ignored notices >= 0.8x the verify-only route's requests/s (saturation),
p99 <= 15 ms (paced), job started within 100 ms of the 200 (p99). Exit 1 when one is missed.
Also printed: gunicorn's CPU ms per request (from /proc) in each phase. Usage:
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
from datetime import UTC
from pathlib import Path

import redis
from cryptography.fernet import Fernet
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import text

from bench.cpu import sample
from bench.load import Phase, load, paced, request
from bench.processes import (
    HOST,
    clean_env,
    database,
    free_port,
    gunicorn_command,
    process,
    redis_url,
    wait_for_workers,
    wait_until_ready,
    worker,
)
from bench.report import log_problems, percentile, print_checks
from jobs.relay import LOCK_NAME as RELAY_LOCK
from models import db
from models.exchange import Exchange
from models.settings import apply, settings_for
from models.shop import Shop
from sandbox.shopify import webhook_headers

SHOP = "bench-shop.myshopify.com"
TOPIC = "returns/approve"  # no worker runs during the throughput phases: recording is the cost
API_SECRET = "bench-api-secret-" + secrets.token_hex(16)
HARD_CAP_S = 120.0  # all traffic of one run, every phase together
GTHREADS = 4  # threads per worker with --worker-class gthread
P99_TARGET_MS = 15.0  # in the paced phases
PACED_SHARE = 0.25  # of the verify-only route's saturated requests/s: every paced class's rate
STORED_RATIO, IGNORED_RATIO = 0.5, 0.8  # of the verify-only route's requests/s
START_TARGET_MS = 100.0  # a webhook's job started this soon after its 200 (p99), queue idle
STARTS = 100  # webhooks sent one at a time for that
ROUNDS = 4  # the throughput phases take turns this many times
ONGOING_TOKEN = "bench-ongoing-token-" + secrets.token_hex(16)
EXCHANGES = 1000  # of the bench shop, so the lookup of an Ongoing notice searches a real index
EXCHANGE_ORDER_ID = 700_000  # Ongoing order id of the bench shop's first exchange


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase")
    parser.add_argument("--starts", type=int, default=STARTS,
                        help="webhooks sent one at a time to time their job's start")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync",
                        help=f"gunicorn worker class (gthread: {GTHREADS} threads per worker)")
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64 or \
            not 1 <= args.starts <= 10_000:
        parser.error("--requests must be 1..100000, --concurrency 1..64, --starts 1..10000")
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


def webhook_requests(count: int, first: int = 0,
                     topic: str = TOPIC) -> list[tuple[bytes, dict]]:
    """Signed webhooks, each with its own X-Shopify-Webhook-Id, built before the clock starts."""
    bodies = (approve_payload(n) for n in range(first, first + count))
    return [(body, webhook_headers(topic, SHOP, body, API_SECRET, webhook_id=str(uuid.uuid4())))
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
        with db.engine().connect() as connection:  # planner statistics, as a live database has
            connection.execute(text("ANALYZE"))
            connection.commit()
        db.dispose()
    return key


def ongoing_requests(count: int, *, ours: bool, first: int = 0) -> list[tuple[bytes, dict]]:
    """Ongoing "Order status is changed" notices at Sent (~1 KB, shaped like the sandbox's),
    about the bench shop's exchange orders, or about other orders of the goods owner; event ids
    unique to `n` from `first` on."""
    headers = {"Content-Type": "application/json", "X-Auth-Token": ONGOING_TOKEN}
    work = []
    for n in range(first, first + count):
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
    answered = len(run.latencies)
    rate = answered / run.elapsed if run.elapsed else 0.0
    p50, p99 = percentile(run.latencies, 0.50), percentile(run.latencies, 0.99)
    cpu = 1000 * run.cpu / answered if answered else 0.0
    print(f"{name:<16} {answered:>6} answered in {run.elapsed:6.2f} s {rate:8.1f} req/s"
          f"  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  gunicorn CPU {cpu:5.2f} ms/req"
          f"  statuses {dict(run.statuses)}  errors {run.errors}")
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


def measure(port: int, key: str, args: argparse.Namespace,
            deadline: float) -> tuple[dict[str, Phase], dict[str, Phase], float]:
    """Saturation, then paced: (saturation phases, paced phases, the paced rate). Each in
    ROUNDS interleaved rounds, so a machine busy with something else for a while weighs on
    every phase alike and the ratios stay fair; fresh webhook and event ids in each."""
    ongoing = f"/webhooks/ongoing/{key}"
    work = webhook_requests(args.requests)
    stored, ignored = (ongoing_requests(args.requests, ours=ours) for ours in (True, False))
    saturated = rounds({"webhooks": ("/webhooks/shopify", work),
                        "verify-only": ("/bench/verify", work), "bare": ("/bench/bare", work),
                        "ongoing stored": (ongoing, stored),
                        "ongoing ignored": (ongoing, ignored)},
                       lambda path, share: load(port, path, share, args.concurrency, deadline))
    verify = saturated["verify-only"]
    rate = PACED_SHARE * len(verify.latencies) / verify.elapsed if verify.elapsed else 0.0
    work = webhook_requests(args.requests, first=args.requests)
    stored, ignored = (ongoing_requests(args.requests, ours=ours, first=args.requests)
                       for ours in (True, False))
    paced_phases = rounds({"webhooks": ("/webhooks/shopify", work),
                           "verify-only": ("/bench/verify", work),
                           "ongoing stored": (ongoing, stored),
                           "ongoing ignored": (ongoing, ignored)},
                          lambda path, share: paced(port, path, share, rate, args.concurrency,
                                                    deadline))
    return saturated, paced_phases, rate


def rounds(plan: dict[str, tuple[str, list]], run) -> dict[str, Phase]:
    """Each phase of `plan` ({name: (path, requests)}) run by `run(path, share)` in ROUNDS
    turns, with gunicorn's CPU seconds (from /proc) read around each."""
    phases = {name: Phase() for name in plan}
    for r in range(ROUNDS):
        for name, (path, requests) in plan.items():
            before = sample()["web"]
            one = run(path, requests[r::ROUNDS])
            one.cpu = sample()["web"] - before
            phases[name].add(one)
    return phases


def job_starts(port: int, url: str, queue_url: str, count: int,
               deadline: float) -> tuple[list[float], int]:
    """Send webhooks one at a time to an idle queue (a worker waiting); for each, seconds from
    its 200 reaching the client to RQ's started_at of its job (clocks of one machine); and how
    many were answered 200."""
    engine, connection = db.engine_for(url), redis.Redis.from_url(queue_url)
    waits, answered_200 = [], 0
    try:
        # a topic without a handler: the job starts, notes it and ends, calling nobody
        for body, headers in webhook_requests(count, first=10_000_000, topic="bench/start"):
            if time.monotonic() > deadline:
                break
            status, _ = request(port, "POST", "/webhooks/shopify", body, headers)
            answered = time.time()
            if status != 200:
                continue
            answered_200 += 1
            with engine.connect() as conn:
                row = conn.execute(text("SELECT id FROM webhook_delivery WHERE delivery_id = :d"),
                                   {"d": headers["X-Shopify-Webhook-Id"]}).scalar_one()
            started = _started_at(connection, f"delivery-{row}", time.monotonic() + 5)
            if started is not None:
                waits.append(started - answered)
            time.sleep(0.02)  # the job ends: the queue is idle again
    finally:
        engine.dispose()
        connection.close()
    return waits, answered_200


def _started_at(connection: redis.Redis, job_id: str, until: float) -> float | None:
    """The job's start as a Unix time, once it has one (None past `until`)."""
    while time.monotonic() < until:
        with contextlib.suppress(NoSuchJobError):
            started = Job.fetch(job_id, connection=connection).started_at
            if started is not None:
                return started.replace(tzinfo=started.tzinfo or UTC).timestamp()
        time.sleep(0.002)
    return None


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
        deadline = time.monotonic() + HARD_CAP_S
        try:
            with gunicorn(env, port, log, args):
                phases, paced_phases, rate = measure(port, key, args, deadline)
                starts, timed = measure_starts(port, env, url, queue_url, tmp, args.starts,
                                               deadline)
        finally:  # gunicorn has stopped here, so its log is complete
            for each in (log, tmp / "worker.log"):
                if each.exists():
                    log_problems(each)
        return report(args.requests, phases, paced_phases, rate, starts, timed,
                      count_deliveries(url))


def measure_starts(port: int, env: dict, url: str, queue_url: str, tmp: Path, count: int,
                   deadline: float) -> tuple[list[float], int]:
    """Mark the throughput phases' rows queued (their jobs are not this phase's to run), start
    one worker, wait for its relay to hold the lease, then time job starts."""
    engine = db.engine_for(url)
    with engine.begin() as conn:  # neither the relay nor the sweeper takes them then
        conn.execute(text("UPDATE webhook_delivery SET queued_at = received_at, "
                          "processed_at = received_at"))
    engine.dispose()
    with contextlib.ExitStack() as stack:
        connection = redis.Redis.from_url(queue_url)
        stack.callback(connection.close)
        wait_for_workers(connection, [worker(env, tmp / "worker.log", stack)])
        until = time.monotonic() + 10
        while not connection.exists(RELAY_LOCK) and time.monotonic() < until:
            time.sleep(0.05)
        return job_starts(port, url, queue_url, count, deadline)


def report(expected: int, phases: dict[str, Phase], paced_phases: dict[str, Phase],
           rate: float, starts: list[float], timed: int, rows: int) -> int:
    """Print every phase, the checks and the targets; 0 when everything holds."""
    print("saturation (closed loop: the requests/s targets; p99 here is queueing, not judged):")
    numbers = {name: summarize(name, run) for name, run in phases.items()}
    base = numbers["verify-only"][0]
    ratio = {name: numbers[name][0] / base if base else 0.0 for name in numbers}
    print("requests/s against verify-only: " + ", ".join(f"{n} {r:.2f}" for n, r in ratio.items()))
    print(f"paced (open loop at {rate:.0f} req/s = {PACED_SHARE:g}x verify-only's, latency from "
          f"each request's due time: the p99 target):")
    paced_p99 = {name: summarize(name, run)[1] for name, run in paced_phases.items()}
    start_p50, start_p99 = percentile(starts, 0.50), percentile(starts, 0.99)
    print(f"job started after its 200 (idle queue, {len(starts)} webhooks one at a time): "
          f"p50 {start_p50:.1f} ms  p99 {start_p99:.1f} ms  "
          f"max {max(starts, default=0) * 1000:.1f} ms")
    checks = {}
    for kind, each in (("", phases), ("paced ", paced_phases)):
        for name in ("webhooks", "verify-only", "ongoing stored", "ongoing ignored"):
            answered = each[name].statuses[200]
            checks[f"{kind}{name} answered 200: {answered}/{expected}"] = answered == expected
    checks[f"rows in webhook_delivery: {rows}/{4 * expected + timed} (webhooks + ongoing "
           f"stored, saturated and paced, + job starts; none for ignored)"] = \
        rows == 4 * expected + timed
    checks[f"every timed job started within 5 s: {len(starts)}/{timed}"] = \
        0 < len(starts) == timed
    targets = {f"{name} >= {want:.1f}x verify-only: {ratio[name]:.2f}x": ratio[name] >= want
               for name, want in (("webhooks", STORED_RATIO), ("ongoing stored", STORED_RATIO),
                                  ("ongoing ignored", IGNORED_RATIO))}
    targets |= {f"{name} paced p99 <= {P99_TARGET_MS:.0f} ms: {paced_p99[name]:.2f} ms "
                f"(saturated: {numbers[name][1]:.2f} ms, not judged)":
                paced_p99[name] <= P99_TARGET_MS
                for name in ("webhooks", "ongoing stored", "ongoing ignored")}
    targets[f"job start p99 <= {START_TARGET_MS:.0f} ms: {start_p99:.1f} ms"] = \
        start_p99 <= START_TARGET_MS
    print_checks(checks, indent="")
    print_checks(targets, indent="", words=("PASS", "FAIL"))
    return 0 if all(checks.values()) and all(targets.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn stopped and the database dropped")
