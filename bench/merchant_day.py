"""Merchant day: the webhook traffic of N shops × M orders a day, replayed compressed.

Every order of the day gets Ongoing's "Order status is changed" notice at Sent, whether Swapline
runs it or not (a 3PL sets the webhook on the whole goods owner); 70% of the shipping falls in two
windows (10-12, 14-16), the rest over 07-20. ~1% of orders come back at the 3PL's Returned code;
2% have an exchange, with its Shopify returns webhooks (approve, process on the 2025-07 processing
workflow, close once Swapline has made the exchange order; odd shops on the legacy workflow) and a
Sent notice for the exchange order once Swapline has released it. The window --hours of that day
is replayed --compression times faster than real time (or in --minutes); bench.merchant_day_traffic
builds it.

The app runs as in bench.soak: gunicorn (2 sync workers) and 2 RQ workers on a fresh PostgreSQL
database (else SQLite) and a Redis server of its own; the sandbox Shopify and Ongoing run in this
process; loopback only. Before the day, probes send foreign Sent and foreign Returned notices alone
at full speed: each class's peak webhooks/s and CPU ms per webhook (gunicorn and RQ worker
processes from /proc, the sandboxes excluded). Then the day; the exchanges get the CPU left over.
Prints per class webhooks/s, CPU ms and rows stored, Sent->fulfilment and close->release p50/p99,
the peak RQ queue length, the drain time and the end-state checks, with the issue's targets
(nothing stored for foreign notices; time to effect p99 < 2 s) as PASS/MISS.
Usage:
    .venv/bin/python -m bench.merchant_day [--shops 20] [--orders-per-day 5000] [--hours 10-11]
        [--minutes 5 | --compression 12] [--concurrency 8] [--probe 500] [--time-limit 600]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.cpu import AppCpu, spent
from bench.load import load
from bench.merchant_day_replay import QueueSampler, Replayer
from bench.merchant_day_report import Probe, report
from bench.merchant_day_traffic import (
    FOREIGN_RETURNED,
    FOREIGN_SENT,
    foreign_delivery,
    schedule,
    setup,
)
from bench.processes import (
    HOST,
    PrivateRedis,
    app_env,
    database,
    free_port,
    sandboxes,
    start_app,
)
from bench.report import log_report
from bench.shops import API_KEY, API_SECRET, Run, run_capped
from bench.soak_waves import drain, queue_counts, unprocessed
from jobs.queue import jobs
from sandbox.ongoing.store import ORDER_RETURNED, SENT

PROBE_FIRST_I = 900_000  # probe notices' order numbers: apart from the day's


def hours(value: str) -> tuple[int, int]:
    """--hours START-END, whole hours of the day, 0 <= START < END <= 24."""
    try:
        start, end = (int(part) for part in value.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not START-END, e.g. 10-16") from None
    if not 0 <= start < end <= 24:
        raise argparse.ArgumentTypeError("--hours needs 0 <= START < END <= 24")
    return start, end


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=20, help="shops (1..20)")
    parser.add_argument("--orders-per-day", type=int, default=5000,
                        help="orders a day per shop (10..20000)")
    parser.add_argument("--hours", type=hours, default=(10, 11), metavar="START-END",
                        help="the window of the day to replay (default 10-11: the busiest "
                             "hour, in the first shipping window, 17.5%% of the day's Sent)")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--minutes", type=float, default=None,
                       help="replay the window in this many minutes (default 5)")
    speed.add_argument("--compression", type=float, default=None,
                       help="replay the window this many times faster than real time")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (1..64)")
    parser.add_argument("--probe", type=int, default=500,
                        help="foreign Sent notices sent alone before the day to measure their "
                             "cost (a quarter as many foreign Returned); 0 skips the probes")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="hard cap on the whole run in seconds (60..3600)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.start, args.end = args.hours
    window = (args.end - args.start) * 3600.0
    if args.compression is None:
        args.compression = window / (60.0 * (args.minutes or 5.0))
    if not (1 <= args.shops <= 20 and 10 <= args.orders_per_day <= 20000
            and 1 <= args.concurrency <= 64 and 60 <= args.time_limit <= 3600
            and 1 <= args.compression <= 100_000 and 0 <= args.probe <= 20000):
        parser.error("--shops 1..20, --orders-per-day 10..20000, --concurrency 1..64, "
                     "--time-limit 60..3600, --compression (or the one --minutes gives) "
                     "1..100000, --probe 0..20000")
    args.replay_s = window / args.compression
    return args


def main() -> int:
    return run_capped(parse_args(), merchant_day)


def merchant_day(args, started: float) -> bool:
    """Start everything, set up the shops, probe, replay the day, drain, report; clean up."""
    logs: list[Path] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swapline-day-")))
        stack.callback(log_report, logs)  # after the processes have stopped
        db_url = stack.enter_context(database(tmp))  # dropped on the way out
        # A Redis server of the run's own: other benches on this machine use db 11 of the
        # shared one, and their workers would take this run's jobs.
        private = PrivateRedis(tmp)
        private.start()
        stack.callback(private.stop)
        queue_url = private.url
        shopify, ongoing = stack.enter_context(sandboxes(API_KEY, API_SECRET))
        port = free_port()
        shopify.app_url = f"http://{HOST}:{port}"
        env = app_env(db_url, queue_url, tmp, shopify, ongoing, port, API_KEY, API_SECRET)
        print(f"database {db_url.split('@')[-1]}, redis {queue_url} (the run's own), "
              f"gunicorn 2 sync workers on {HOST}:{port}, 2 RQ workers; {args.shops} shops × "
              f"{args.orders_per_day} orders a day, hours {args.start:02d}-{args.end:02d} "
              f"replayed in {args.replay_s:.0f} s: compression factor {args.compression:.0f}× "
              f"(1 s of the run = {args.compression / 60:.1f} min of the day); "
              f"{args.concurrency} client threads; time limit {args.time_limit:.0f} s; "
              f"{os.cpu_count()} cores shared by everything (load average now "
              f"{os.getloadavg()[0]:.1f})", flush=True)
        app, _ = start_app(stack, env, port, tmp, logs)
        shops, cases = setup(args, shopify, ongoing)
        events = schedule(args, shops, cases)
        print(f"setup {time.monotonic() - started:.1f} s: {len(cases)} exchanges ready, "
              f"{len(events)} webhooks scheduled", flush=True)
        cpu, connection = AppCpu(), jobs().connection
        deadline = started + args.time_limit
        idle = cpu.idle_rate()
        probes = [probe(args, status, shops[0], port, cpu, idle, connection, deadline)
                  for status, n in ((SENT, args.probe), (ORDER_RETURNED, args.probe // 4)) if n]
        run = Run(app, port, len(cases), deadline)
        replayer = Replayer(app, port, shopify, ongoing, args, deadline)
        sampler = QueueSampler(connection)
        before, t0 = cpu.read(), time.monotonic()
        sampler.start()
        print(f"replaying {len(events)} webhooks over {args.replay_s:.0f} s", flush=True)
        replayer.run(events)
        print(f"  all sent {replayer.last_sent - t0:.1f} s after the start; draining", flush=True)
        outcome = drain(run, connection)
        t_end = time.monotonic()
        sampler.stop.set()
        day_cpu = spent(before, cpu.read(), idle, t_end - t0)
        return report(args, replayer, sampler, probes, idle, day_cpu, outcome,
                      (t0, replayer.last_sent, t_end), shopify, shops, cases, events)


def probe(args, status: int, shop, port: int, cpu: AppCpu, idle, connection,
          deadline: float) -> Probe:
    """Send notices of one foreign class alone, as fast as the client threads can, and wait
    until their jobs are done: the class's peak rate and its CPU per notice."""
    kind, n = (FOREIGN_SENT, args.probe) if status == SENT else \
        (FOREIGN_RETURNED, args.probe // 4)
    work = [foreign_delivery(shop, f"P{status}-0-{PROBE_FIRST_I + i}", status)
            for i in range(n)]
    path = work[0].path
    before, started = cpu.read(), time.monotonic()
    phase = load(port, path, [(d.body, d.headers) for d in work], args.concurrency, deadline)
    while (queue_counts(connection) != (0, 0, 0) or unprocessed()) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    took = time.monotonic() - started
    web, worker = spent(before, cpu.read(), idle, took)
    print(f"  probe {kind}: {n} notices sent in {phase.elapsed:.2f} s, jobs done after "
          f"{took:.2f} s", flush=True)
    return Probe(kind, n, phase, took, web, worker)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; processes stopped, database dropped, Redis stopped")
