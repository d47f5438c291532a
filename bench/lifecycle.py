"""Benchmark: N exchanges through the whole lifecycle on the sandboxes, app on gunicorn, 2 workers.

The sandbox Shopify and Ongoing run in this process on free loopback ports; the app runs under
gunicorn (2 sync workers) and exactly 2 RQ workers (`flask --app app worker`), on a fresh
PostgreSQL database (else SQLite) and Redis db 11 (else embedded). Driven over HTTP as the real
systems would: signed returns/approve, then returns/close, then Ongoing's Sent webhook. Prints
exchanges per second, p50/p99 from the Sent webhook to the Shopify fulfilment, the Shopify and
Ongoing calls per exchange next to the minimum the lifecycle needs, the jobs per exchange and the
app's own CPU per exchange, by webhook class (bench/cpu.py), and the PostgreSQL transactions
and Redis commands per exchange. Usage:
    .venv/bin/python -m bench.lifecycle [--exchanges 500] [--shops 1] [--sent-rate 0]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import machine
from bench.cpu import AppCpu, CpuMeter
from bench.lifecycle_calls import Recorder
from bench.lifecycle_report import queue_report, report, store_counts, store_report
from bench.load import ongoing_delivery, shopify_delivery, sleep_until
from bench.processes import HOST, app_env, database, free_port, redis_url, sandboxes, start_app
from bench.report import log_report, timeline_report
from bench.shops import (
    API_KEY,
    API_SECRET,
    TOKEN,
    Case,
    Run,
    Shop,
    Timeout,
    exchanges_by_return,
    run_capped,
    setup_shops,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=500, help="exchanges to run (1..5000)")
    parser.add_argument("--shops", type=int, default=1,
                        help="shops, each with its own Ongoing goods owner (1..20)")
    parser.add_argument("--sent-rate", type=float, default=0.0,
                        help="Sent webhooks per second (0: as fast as they can be posted)")
    parser.add_argument("--time-limit", type=float, default=900.0,
                        help="hard cap on the whole run in seconds (60..3600)")
    args = parser.parse_args()
    if not (1 <= args.exchanges <= 5000 and 1 <= args.shops <= 20 and args.sent_rate >= 0
            and 60 <= args.time_limit <= 3600):
        parser.error("--exchanges 1..5000, --shops 1..20, --sent-rate >= 0, --time-limit "
                     "60..3600")
    return args


PG_STATS_FLUSH_S = 11  # PostgreSQL flushes an idle backend's transaction counts within 10 s
CLASSES = ["returns/approve -> parked", "returns/close -> released", "Ongoing Sent -> completed"]


def drive(args, run: Run, rec: Recorder, shopify, shops: list[Shop], cases: list[Case],
          cpu: CpuMeter) -> dict:
    """The three phases; returns their timings (monotonic) and the first approve's wall time.
    CPU is sampled at the same marks as the calls, so each phase is one webhook class."""
    keys = {s.domain: s.webhook_key for s in shops}
    accounts = {s.domain: s.account for s in shops}
    limit = 120 + 1.5 * args.exchanges
    # signed before the clock starts
    approvals = [shopify_delivery(shopify.store, c, "returns/approve", API_SECRET) for c in cases]
    t = {}
    rec.mark()
    cpu.mark()
    t["approve"], t["approve_wall"] = time.monotonic(), time.time()
    for approval in approvals:
        run.post(approval.path, approval.body, approval.headers)
    t["approve_posted"] = time.monotonic()
    t["parked"] = run.wait_for("parked", limit)
    rec.mark()
    cpu.mark()

    t["close"] = time.monotonic()
    for case in cases:
        shopify.store.close_return(case.shop, case.return_gid)
        close = shopify_delivery(shopify.store, case, "returns/close", API_SECRET)
        run.post(close.path, close.body, close.headers)
    t["close_posted"] = time.monotonic()
    t["released"] = run.wait_for("released", limit)
    rec.mark()
    cpu.mark()

    found = exchanges_by_return()
    for case in cases:
        exchange = found[(case.shop, case.return_gid)]
        case.exchange_id, case.ongoing_order_id = exchange.id, exchange.ongoing_order_id
    t["sent"] = time.monotonic()
    for n, case in enumerate(cases):
        if args.sent_rate:
            sleep_until(t["sent"] + n / args.sent_rate)
        account = accounts[case.shop]
        rec.ongoing.move_order(case.ongoing_order_id, 450)  # no webhook registered: we post
        sent = ongoing_delivery(keys[case.shop], account, account.orders[case.ongoing_order_id],
                                TOKEN)
        case.sent_at = datetime.now(UTC)
        run.post(sent.path, sent.body, sent.headers)
    t["sent_posted"] = time.monotonic()
    t["completed"] = run.wait_for("completed", limit)
    rec.mark()
    cpu.mark()
    return t


def main() -> int:
    return run_capped(parse_args(), bench)


def bench(args, started: float) -> bool:
    """Start everything, set up the shops, drive the three phases, report; clean up always."""
    logs: list[Path] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swapline-bench-")))
        stack.callback(log_report, logs)  # runs after the processes have stopped
        db_url = stack.enter_context(database(tmp))  # fresh, migrated; dropped on the way out
        queue_url = stack.enter_context(redis_url(tmp))
        shopify, ongoing = stack.enter_context(sandboxes(API_KEY, API_SECRET))
        port = free_port()
        shopify.app_url = f"http://{HOST}:{port}"
        env = app_env(db_url, queue_url, tmp, shopify, ongoing, port, API_KEY, API_SECRET)
        print(f"database {db_url.split('@')[-1]}, redis {queue_url} (the run's own), "
              f"gunicorn 2 sync workers on {HOST}:{port}, 2 RQ workers, {args.exchanges} "
              f"exchanges over {args.shops} shop(s) / Ongoing goods owner(s), Sent webhooks "
              f"{f'at {args.sent_rate:g}/s' if args.sent_rate else 'as fast as posted'}; "
              f"{os.cpu_count()} cores shared by everything")
        app, _ = start_app(stack, env, port, tmp, logs)
        shops, cases = setup_shops(args, shopify, ongoing)
        rec = Recorder(shopify, ongoing)
        run = Run(app, port, args.exchanges, started + args.time_limit)
        cpu, counted = CpuMeter(idle=AppCpu().idle_rate()), store_counts()
        try:
            t = drive(args, run, rec, shopify, shops, cases, cpu)
        except Timeout as exc:
            print(f"RUN FAILED: {exc}")
            timeline_report()
            queue_report(run)
            return False
        spent = cpu.report(CLASSES, args.exchanges)
        print(f"  {machine.line(spent['total'])}")
        time.sleep(PG_STATS_FLUSH_S)
        store_report(counted, store_counts(), args.exchanges)
        return report(args, run, rec, shops, cases, t, started)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; processes stopped, database dropped, Redis flushed")
