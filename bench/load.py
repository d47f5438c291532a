"""Driving load: signed webhook deliveries (Shopify's and Ongoing's), one request per connection
or many on keep-alive connections from client threads, pacing, and the re-sends real senders make
of a delivery not answered 200."""
from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from bench.processes import HOST
from sandbox.ongoing.store import webhook_payload
from sandbox.shopify import webhook_headers

RESEND_EVERY_S, RESEND_ROUNDS = 2.0, 30  # a delivery not answered 200 is re-sent like this


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    """One request on its own connection (gunicorn's sync workers close after each)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post(port: int, delivery: Delivery) -> tuple[int | str, bytes, float]:
    """POST one delivery: (status, or the network error's name; body; seconds it took)."""
    started = time.monotonic()
    try:
        status, answer = request(port, "POST", delivery.path, delivery.body, delivery.headers)
    except (OSError, http.client.HTTPException) as exc:
        status, answer = type(exc).__name__, b""
    return status, answer, time.monotonic() - started


def sleep_until(moment: float) -> None:
    """Pacing: sleep until the monotonic clock reads `moment` (at once when it is past)."""
    time.sleep(max(0.0, moment - time.monotonic()))


class Delivery(NamedTuple):
    """One webhook delivery; `key` is the sender's delivery id, the same on every re-send."""

    key: str
    path: str
    body: bytes
    headers: dict


def shopify_delivery(store, case, topic: str, secret: str) -> Delivery:
    """The sandbox Shopify's `topic` webhook about the case's return, signed with `secret`."""
    body = json.dumps(store.return_payload(case.shop, case.return_gid, topic)).encode()
    headers = webhook_headers(topic, case.shop, body, secret)
    return Delivery(f"shopify-{headers['X-Shopify-Webhook-Id']}", "/webhooks/shopify", body,
                    headers)


def ongoing_delivery(key: str, account, order, token: str, status: int | None = None) -> Delivery:
    """An "Order status is changed" body for the order as it is now, or reporting `status`
    (a fresh webhookEventId either way)."""
    payload = webhook_payload(account, order)
    if status is not None:
        payload["orderStatus"] = {"number": status}
    return Delivery(f"ongoing-{payload['webhookEventId']}", f"/webhooks/ongoing/{key}",
                    json.dumps(payload).encode(),
                    {"Content-Type": "application/json", "X-Auth-Token": token})


def outcome(answer: bytes) -> str:
    """The app's {"status": ...} in a 200's body: queued, duplicate, duplicate_event, ignored."""
    try:
        return str(json.loads(answer).get("status"))
    except (ValueError, AttributeError):
        return "no JSON status"


# --- many requests on keep-alive connections, timed --------------------------------------------

@dataclass
class Phase:
    """What one phase of keep-alive load measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    statuses: Counter = field(default_factory=Counter)
    queued: int = 0  # webhook answers saying the delivery is in the outbox
    errors: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # CPU seconds the server spent meanwhile, when the bench reads it


    def add(self, other: Phase) -> None:
        """Count another run of the same phase in (rounds taking turns with other phases)."""
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.queued += other.queued
        self.errors += other.errors
        self.elapsed += other.elapsed
        self.cpu += other.cpu


def _send(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict,
          mine: Phase) -> bool:
    """POST one request on a keep-alive connection and count its answer; False when it failed
    (the connection is closed then: the next request reconnects)."""
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException):
        mine.errors += 1
        conn.close()
        return False
    mine.statuses[response.status] += 1
    mine.queued += b'"queued"' in answer
    return True


def _merge(run: Phase, mine: Phase, lock: threading.Lock) -> None:
    with lock:
        run.latencies += mine.latencies
        run.statuses.update(mine.statuses)
        run.queued += mine.queued
        run.errors += mine.errors


def client(port: int, path: str, work: list, run: Phase, lock: threading.Lock,
           deadline: float) -> None:
    """One client thread: send its share on one keep-alive connection, timing each request."""
    conn, mine = http.client.HTTPConnection(HOST, port, timeout=10), Phase()
    for body, headers in work:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        if _send(conn, path, body, headers, mine):
            mine.latencies.append(time.perf_counter() - started)
    conn.close()
    _merge(run, mine, lock)


def load(port: int, path: str, work: list, concurrency: int, deadline: float) -> Phase:
    """Send `work` to `path` from `concurrency` threads, each sending its next request as soon
    as the last is answered (closed loop: the server's saturation); wall time and every
    latency."""
    run, lock = Phase(), threading.Lock()
    started = time.perf_counter()
    _run_all([threading.Thread(target=client, daemon=True,
                               args=(port, path, work[i::concurrency], run, lock, deadline))
              for i in range(concurrency)])
    run.elapsed = time.perf_counter() - started
    return run


def _run_all(threads: list[threading.Thread]) -> None:
    """Start the client threads, then wait for all of them."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def paced(port: int, path: str, work: list, rate: float, concurrency: int,
          deadline: float) -> Phase:
    """Send `work` to `path` at `rate` requests/s on a fixed schedule (open loop), request i
    due at start + i / rate, from `concurrency` threads taking the next due request each; every
    latency counts from the request's due time, not from when it went out, so a stall weighs
    on every request it delays (no coordinated omission)."""
    run, lock, due_order = Phase(), threading.Lock(), itertools.count()
    start = time.perf_counter() + 0.01

    def sender() -> None:
        conn, mine = http.client.HTTPConnection(HOST, port, timeout=10), Phase()
        while (i := next(due_order)) < len(work) and time.monotonic() < deadline:
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            if _send(conn, path, *work[i], mine):
                mine.latencies.append(time.perf_counter() - due)
        conn.close()
        _merge(run, mine, lock)

    _run_all([threading.Thread(target=sender, daemon=True) for _ in range(concurrency)])
    run.elapsed = time.perf_counter() - start
    return run


# --- waves of deliveries from client threads, with re-sends ------------------------------------

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
        self.outcomes: Counter = Counter()  # the body of every 200: queued, duplicate, ...
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
            status, answer, took = post(self.port, delivery)
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
            sleep_until(start + i * gap)
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
