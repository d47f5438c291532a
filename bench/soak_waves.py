"""bench.soak's flood and drain: the three waves of webhooks (with exact duplicates, some out of
order, padded to --webhooks), the waits between them, and the drain until every exchange is
completed with nothing queued, unprocessed or pending."""
from __future__ import annotations

import random
import time

import redis
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from bench.load import Flood, ongoing_delivery, shopify_delivery
from bench.report import scalar
from bench.shops import API_SECRET, QUEUE, TOKEN, Run, exchanges_by_return
from jobs.queue import jobs

OPEN, RELEASED, ALLOCATED, PICKED, SENT = 200, 300, 320, 400, 450
DUP_SHARE, OUT_OF_ORDER_SHARE = 0.10, 0.05
POLL_S = 0.5
STUCK_S = 15.0  # nothing queued, recorded or pending this long, exchanges not completed: stuck
WAVE3_TAIL_S = 2.0  # with faults, wave 3 lasts until this long after the last fault is over


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


def queue_counts(connection) -> tuple[int, int, int] | None:
    """(queued, started, scheduled) jobs, or None while Redis does not answer."""
    try:
        return (jobs().queue.count, StartedJobRegistry(QUEUE, connection=connection).count,
                ScheduledJobRegistry(QUEUE, connection=connection).count)
    except redis.RedisError:
        return None


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

def flood(args, run: Run, flood_: Flood, shopify, ongoing, shops, cases, injector) -> dict:
    rng = random.Random(args.seed)
    keys = {s.domain: s.webhook_key for s in shops}
    n, t = args.exchanges, {}
    pads = padding(args)  # half in wave 2 (Open notices), half in wave 3 (repeat Sent)
    dups: list = []
    unique_count = 0
    limit = 120 + 1.5 * n

    # wave 1: approvals
    unique = [shopify_delivery(shopify.store, c, "returns/approve", API_SECRET) for c in cases]
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
        order, key = orders[case.index], keys[case.shop]
        if case.index in late:
            run_move(ongoing, case, SENT)
            early.append(ongoing_delivery(key, case.account, order, TOKEN, SENT))
        shopify.store.close_return(case.shop, case.return_gid)
        unique.append(shopify_delivery(shopify.store, case, "returns/close", API_SECRET))
        unique += [ongoing_delivery(key, case.account, order, TOKEN, order.status)
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
                unique.append(ongoing_delivery(key, case.account, order, TOKEN, status))
            run_move(ongoing, case, SENT)
            unique.append(ongoing_delivery(key, case.account, order, TOKEN, SENT))
        repeats = pads[case.index] - pads[case.index] // 2 + 3 * (case.index in late)
        unique += [ongoing_delivery(key, case.account, order, TOKEN, SENT)
                   for _ in range(repeats)]
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
    t["drain"] = drain(run, jobs().connection)
    t["drained"] = time.monotonic() if t["drain"] == "drained" else None
    return t


def run_move(ongoing, case, status: int) -> None:
    """The warehouse moves the exchange order (no webhook registered: this bench posts them)."""
    ongoing.move_order(case.ongoing_order_id, status)
