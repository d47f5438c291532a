"""Call accounting for bench.lifecycle: the minimum the lifecycle needs, per step, the recorder of
the calls each sandbox got in each phase, and the comparison of the two (per phase, per exchange,
extras named).

The minimum is for the scenario the bench drives: Shopify's 2025-07 processing workflow, a balance
owed (Shopify puts AWAITING_PAYMENT on the exchange's new fulfillment order), an authorization to
capture from, Instant Exchange off. (Without an authorization, collect on a shop that grants
read_payment_mandate first asks OrderVaultedPaymentMethods: one call more on the vaulted-card
and invoice paths, none on this one.) Derived from jobs/exchange_triggers.py (detect),
jobs/exchange_steps.py and jobs/exchange_guard.py (create, release), jobs/exchange_fulfil.py
(fulfil) and jobs/exchange_collect.py (collect).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from flask import request as flask_request

# step -> (Shopify operations, Ongoing calls), in the order the code makes them
STEPS: dict[str, tuple[list[str], list[str]]] = {
    "detect": (["ReturnForExchange", "VariantsForExchange"], []),
    # create, applied in detection's job, starts from the return detection read (a create in a
    # job of its own, a retry, reads it again: one ReturnForExchange more)
    "create": (["TagsAdd", "ReturnProcessExchange", "OrderFulfillmentOrders",
                "FulfillmentOrderHold"],
               ["GET /articles?articleNumbers", "PUT /orders", "GET /orders/{id}",
                "GET /orders?orderNumber", "PUT /returnOrders", "GET /returnOrders/{id}"]),
    # the connector check (jobs/exchange_guard.py): one filtered GET /orders, then the PATCH
    "release": ([], ["GET /orders?articleNumbers&maxOrdersToGet&orderCreatedTimeFrom&"
                     "orderStatusTo", "PATCH /orders/{id}/orderStatus"]),
    "fulfil": (["OrderFulfillmentOrders", "FulfillmentOrderReleaseHold", "OrderPayment",
              "OrderCapture", "OrderFulfillmentOrders", "FulfillmentCreate"],
             ["GET /orders/{id}"]),
    # fulfil already captured (AWAITING_PAYMENT, before the release, in Shopify's documented
    # order): the collect step, run in the same job, only checks the row
    "collect": ([], []),
}
# The bench drives the lifecycle in three phases; each waits until every exchange got there.
PHASES: dict[str, tuple[str, ...]] = {
    "approve->parked": ("detect", "create"),
    "close->released": ("release",),
    "sent->completed": ("fulfil", "collect"),
}
# Calls made once per shop or per token, not per exchange.
ONE_OFF_SHOPIFY = ("token_exchange", "refresh", "ShopDetails")
_ID = re.compile(r"/\d+(?=/|$)")


def ongoing_key(method: str, path: str, params: dict[str, str]) -> str:
    """'GET /orders/{id}', 'GET /orders?orderNumber': ids and values out, parameter names kept."""
    names = sorted(k for k in params if k != "goodsOwnerId")
    return f"{method} {_ID.sub('/{id}', path)}" + (f"?{'&'.join(names)}" if names else "")


def minimum(phase_steps: tuple[str, ...], system: int) -> Counter:
    """Minimum calls per exchange of a phase; system 0 = Shopify, 1 = Ongoing."""
    return Counter(call for step in phase_steps for call in STEPS[step][system])


@dataclass
class Calls:
    """What one system recorded in each phase (keys as above), plus one-off calls."""

    by_phase: dict[str, Counter] = field(default_factory=dict)
    one_off: Counter = field(default_factory=Counter)


@dataclass
class Extra:
    """Calls of one kind beyond the minimum in one phase (`calls` in all, over `n` exchanges)."""

    system: str
    phase: str
    call: str
    calls: int
    n: int

    def __str__(self) -> str:
        where = "/".join(PHASES[self.phase])
        return (f"{self.system} {self.call} during {self.phase} ({where}): {self.calls:+d} calls "
                f"({self.calls / self.n:+.3f} per exchange)")


def compare(name: str, calls: Calls, system: int, n: int) -> list[Extra]:
    """Print per-phase observed/exchange vs minimum; return the extras."""
    print(f"\n{name} calls per exchange (observed / minimum), N={n}")
    print(f"  {'phase':<16} {'call':<34} {'observed':>9} {'minimum':>8} {'extra':>8}")
    extras, total_seen, total_min = [], 0, 0
    for phase, phase_steps in PHASES.items():
        seen, least = calls.by_phase.get(phase, Counter()), minimum(phase_steps, system)
        for call in sorted(set(seen) | set(least)):
            extra = seen[call] - least[call] * n
            print(f"  {phase:<16} {call:<34} {seen[call] / n:>9.3f} {least[call]:>8} "
                  f"{extra / n:>+8.3f}")
            if extra:
                extras.append(Extra(name, phase, call, extra, n))
        total_seen += sum(seen.values())
        total_min += sum(least.values())
    print(f"  {'total':<16} {'':<34} {total_seen / n:>9.3f} {total_min:>8} "
          f"{(total_seen - total_min * n) / n:>+8.3f}")
    if calls.one_off:
        print(f"  not counted (one-off per shop/token): {dict(calls.one_off)}")
    return extras


def explain(extra: Extra, reruns: Counter, reconciled: int) -> str | None:
    """Why these calls are not beyond what the lifecycle needs, or None when nothing explains
    them. `reruns`: the steps run again after Shopify's bucket ran short (one shop's exchanges
    share one bucket), by step; `reconciled`: the open exchanges the periodic reconciliation
    read during the run.
    - a re-run repeats its step's calls up to where the bucket ran short: at most one of each
      of the step's calls per re-run;
    - a further page (`orderIdFrom`) of a paged read: the minimum counts one page, and a goods
      owner holding more matching open orders than a page (one shop's 200 exchanges of the
      same items) is read in more;
    - the reconciliation's Ongoing reads (jobs/reconcile.py), not a lifecycle step."""
    if extra.calls < 0:  # fewer than the lifecycle needs: a step skipped a call
        return None
    steps = PHASES[extra.phase]
    system = 0 if extra.system == "Shopify" else 1
    runs = sum(reruns[step] for step in steps)
    if extra.calls <= runs * minimum(steps, system)[extra.call]:
        return f"{runs} step re-runs after a short Shopify bucket"
    if system == 1 and "orderIdFrom" in extra.call:
        return "further pages of a paged read"
    if system == 1 and reconciled and extra.call.startswith(("GET /orders", "GET /returnOrders")):
        return f"the periodic reconciliation's reads ({reconciled} open exchanges)"
    return None


def print_minimum() -> None:
    """The per-step breakdown of the minimum."""
    print("\nminimum per exchange, by step (Shopify | Ongoing):")
    for step, (shopify, ongoing) in STEPS.items():
        print(f"  {step:<8} {len(shopify):>2} | {len(ongoing)}   "
              f"{', '.join(shopify) or '-'} | {', '.join(ongoing) or '-'}")
    shopify = sum(len(s) for s, _ in STEPS.values())
    ongoing = sum(len(o) for _, o in STEPS.values())
    print(f"  {'total':<8} {shopify:>2} | {ongoing}")


def per_exchange_spread(raw: list[tuple[str, str]], order_ids: set[int]) -> str:
    """How many GET /orders/{id} each exchange order got (e.g. '2 calls: 495, 3 calls: 5')."""
    per_order = Counter(int(path.split("/")[2]) for method, path in raw
                        if method == "GET" and re.fullmatch(r"/orders/\d+", path))
    spread = Counter(per_order.get(order_id, 0) for order_id in order_ids)
    return ", ".join(f"{calls} calls: {count}" for calls, count in sorted(spread.items()))


class Recorder:
    """Ongoing calls with their query parameters (the sandbox keeps method and path only),
    and phase marks on both sandboxes' call logs."""

    def __init__(self, shopify, ongoing):
        self.shopify, self.ongoing, self.calls, self.marks = shopify, ongoing, [], []
        original = ongoing.intake

        def intake(method: str, path: str):
            self.calls.append((method, path, dict(flask_request.args)))  # atomic append
            return original(method, path)

        ongoing.intake = intake

    def mark(self) -> None:
        self.marks.append((len(self.shopify.store.calls), len(self.calls)))

    def split(self) -> tuple[Calls, Calls]:
        """Calls of each phase between consecutive marks (phases in PHASES order)."""
        shopify_calls, ongoing_calls = Calls(), Calls()
        for phase, (start, end) in zip(PHASES, pairwise(self.marks), strict=True):
            seen = Counter()
            for _, operation in self.shopify.store.calls[start[0]:end[0]]:
                if operation in ONE_OFF_SHOPIFY:
                    shopify_calls.one_off[operation] += 1
                else:
                    seen[operation] += 1
            shopify_calls.by_phase[phase] = seen
            ongoing_calls.by_phase[phase] = Counter(
                ongoing_key(m, p, q) for m, p, q in self.calls[start[1]:end[1]])
        return shopify_calls, ongoing_calls
