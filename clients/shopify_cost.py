"""Shopify's query cost as its answers report it (`extensions.cost`), and how long to wait.

Shopify charges a query's requested cost from a per-shop leaky bucket before running it and
answers THROTTLED when the bucket holds less (shopify.dev, "GraphQL Admin API rate limits").
`throttleStatus` says how much is there and how fast it refills, so the wait is known exactly.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

MAX_WAIT_S = 10.0  # longer than this inside a job: give the worker back, let RQ retry later
MARGIN_S = 0.05  # the bucket refills continuously; a hair more avoids a second THROTTLED


@dataclass(frozen=True)
class Cost:
    """One answer's `extensions.cost`."""

    requested: int
    available: float
    restore: float
    at: float  # time.monotonic() when read

    def wait_for(self, points: float) -> float:
        """Seconds until the bucket holds `points` (0 when it does; inf when it never will)."""
        available = self.available + (time.monotonic() - self.at) * self.restore
        if available >= points:
            return 0.0
        return (points - available) / self.restore + MARGIN_S if self.restore > 0 else float("inf")


def cost_of(extensions: dict | None) -> Cost | None:
    """The cost block of an answer's `extensions`, None when absent or malformed."""
    try:
        cost = extensions["cost"]
        status = cost["throttleStatus"]
        return Cost(int(cost["requestedQueryCost"]), float(status["currentlyAvailable"]),
                    float(status["restoreRate"]), time.monotonic())
    except (KeyError, TypeError, ValueError):
        return None


def parse_body(body: str) -> dict:
    """A GraphQL answer's JSON body ({} when it is not JSON)."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def error_codes(answer: dict) -> list[str]:
    """`errors[].extensions.code` of an answer, in order."""
    errors = answer.get("errors")
    if not isinstance(errors, list):
        return []
    return [str((e.get("extensions") or {}).get("code", "")) for e in errors
            if isinstance(e, dict)]


class Pacer:
    """What this process last heard of each shop's bucket and each document's price.

    Before a call whose last requested cost the bucket cannot hold yet, wait for it (at most
    MAX_WAIT_S) instead of spending a round trip on a THROTTLED answer.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.buckets: dict[str, Cost] = {}
        self.prices: dict[str, int] = {}

    def heard(self, shop: str, document: str, cost: Cost | None) -> None:
        if cost is not None:
            with self.lock:
                self.buckets[shop], self.prices[document] = cost, cost.requested

    def wait_before(self, shop: str, document: str) -> float:
        """Seconds to wait before sending `document` for `shop` (0 when nothing is known)."""
        with self.lock:
            bucket, price = self.buckets.get(shop), self.prices.get(document)
        if bucket is None or price is None:
            return 0.0
        return min(bucket.wait_for(price), MAX_WAIT_S)
