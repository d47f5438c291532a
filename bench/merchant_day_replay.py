"""bench.merchant_day's replay: each webhook of the schedule posted at its compressed time from
client threads (re-sent every 2 s while not answered 200, as the real senders do), the exchange
Sent held until Swapline has released the exchange order (a warehouse ships nothing unreleased)
and the returns/close until Swapline has made the exchange order (a close comes days after the
approval in a real day: the compressed replay must not close a return before Swapline acted on it),
and the RQ queue's length sampled throughout."""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text

from bench.load import (
    RESEND_EVERY_S,
    RESEND_ROUNDS,
    ongoing_delivery,
    outcome,
    post,
    shopify_delivery,
    sleep_until,
)
from bench.merchant_day_traffic import (
    APPROVE,
    CLASSES,
    CLOSE,
    EXCHANGE_SENT,
    FOREIGN_RETURNED,
    FOREIGN_SENT,
    PROCESS,
    Event,
    foreign_delivery,
)
from bench.shops import API_SECRET, QUEUE, TOKEN
from models import db
from sandbox.ongoing.store import ORDER_RETURNED, SENT

RELEASED_CHECK_S, SAMPLE_S = 0.5, 0.25


@dataclass
class ClassStats:
    """What one class of webhooks got: answers, ack latency, lateness against its schedule."""

    sent: int = 0
    resent: int = 0
    statuses: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # first tries answered 200
    late: list[float] = field(default_factory=list)  # posted this long after its time
    unacked: int = 0


class QueueSampler(threading.Thread):
    """Reads the RQ queue's length every SAMPLE_S until stopped; keeps (seconds, length)."""

    def __init__(self, connection):
        super().__init__(daemon=True)
        self.connection, self.samples, self.stop = connection, [], threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        key = f"rq:queue:{QUEUE}"
        while not self.stop.wait(SAMPLE_S):
            try:
                self.samples.append((time.monotonic() - self.started_at,
                                     self.connection.llen(key)))
            except Exception:  # noqa: BLE001 - a sample lost is not a result
                continue

    def peak(self) -> tuple[int, float]:
        """(longest queue seen, seconds after the start it was seen)."""
        if not self.samples:
            return 0, 0.0
        at, length = max(self.samples, key=lambda s: s[1])
        return length, at


class Replayer:
    """Posts the schedule at `compression` × real time from `concurrency` client threads."""

    def __init__(self, app, port: int, shopify, ongoing, args, deadline: float):
        self.app, self.port, self.shopify, self.ongoing = app, port, shopify, ongoing
        self.compression, self.start_hour = args.compression, args.start
        self.concurrency, self.deadline = args.concurrency, deadline
        self.stats = {name: ClassStats() for name in CLASSES}
        self.lock = threading.Lock()
        self.t0 = self.last_sent = 0.0
        self.held_max = 0

    def due(self, event: Event) -> float:
        return self.t0 + (event.at - self.start_hour * 3600) / self.compression

    def run(self, events: list[Event]) -> None:
        """Post every event at its time; the exchange Sents wait until their exchange is
        released. Returns when everything was posted (or the deadline passed)."""
        held: list[Event] = []
        last_check = 0.0
        self.t0 = time.monotonic()
        with ThreadPoolExecutor(self.concurrency) as pool, self.app.app_context():
            pending = deque(events)
            while pending or held:
                now = time.monotonic()
                if now > self.deadline:  # what was not posted yet is not posted
                    pool.shutdown(wait=False, cancel_futures=True)
                    break
                if held and now - last_check >= RELEASED_CHECK_S:
                    ready, held = self.released(held)
                    last_check = now
                    for event in ready:
                        pool.submit(self.post, event)
                if pending and self.due(pending[0]) <= now:
                    event = pending.popleft()
                    if event.kind in (CLOSE, EXCHANGE_SENT):
                        held.append(event)
                        self.held_max = max(self.held_max, len(held))
                    else:
                        pool.submit(self.post, event)
                    continue
                wake = self.due(pending[0]) if pending else now + RELEASED_CHECK_S
                sleep_until(min(wake, now + RELEASED_CHECK_S))
        self.last_sent = time.monotonic()

    def released(self, held: list[Event]) -> tuple[list[Event], list[Event]]:
        """(held events whose exchange is ready now, the others): a close once the exchange
        order exists (parked or later), an exchange Sent once it is released."""
        with db.engine().connect() as conn:
            rows = conn.execute(text(
                "SELECT shop_domain, return_gid, ongoing_order_id, released_at IS NOT NULL "
                "FROM exchange WHERE ongoing_order_id IS NOT NULL AND state <> 'detected'")).all()
        orders = {(shop, gid): (order_id, released) for shop, gid, order_id, released in rows}
        ready, waiting = [], []
        for event in held:
            order_id, released = orders.get((event.ref.shop, event.ref.return_gid), (None, 0))
            if order_id is None or (event.kind == EXCHANGE_SENT and not released):
                waiting.append(event)
            else:
                event.ref.ongoing_order_id = order_id
                ready.append(event)
        return ready, waiting

    def delivery(self, event: Event):
        """Build the delivery at its moment (and do in the sandboxes what precedes it)."""
        case, store = event.ref, self.shopify.store
        if event.kind == FOREIGN_SENT:
            return foreign_delivery(event.shop, event.ref, SENT)
        if event.kind == FOREIGN_RETURNED:
            return foreign_delivery(event.shop, event.ref, ORDER_RETURNED)
        if event.kind == CLOSE:
            store.close_return(case.shop, case.return_gid)
            case.closed_at = datetime.now(UTC)
        if event.kind in (APPROVE, PROCESS, CLOSE):
            return shopify_delivery(store, case, event.kind, API_SECRET)
        self.ongoing.move_order(case.ongoing_order_id, SENT)  # no webhook registered: we post
        account = case.account
        case.sent_at = datetime.now(UTC)
        return ongoing_delivery(event.shop.webhook_key, account,
                                account.orders[case.ongoing_order_id], TOKEN)

    def post(self, event: Event) -> None:
        """Post one event; re-send it every RESEND_EVERY_S while not answered 200."""
        stats = self.stats[event.kind]
        late = max(0.0, time.monotonic() - self.due(event))
        if time.monotonic() > self.deadline:
            return  # never posted: the report counts it
        delivery = self.delivery(event)
        for attempt in range(RESEND_ROUNDS + 1):
            status, answer, took = post(self.port, delivery)
            with self.lock:
                stats.statuses[status] += 1
                if attempt == 0:
                    stats.sent += 1
                    stats.late.append(late)
                else:
                    stats.resent += 1
                if status == 200:
                    stats.outcomes[outcome(answer)] += 1
                    if attempt == 0:
                        stats.latencies.append(took)
                    return
            if time.monotonic() > self.deadline:
                break
            time.sleep(RESEND_EVERY_S)
        with self.lock:
            stats.unacked += 1

