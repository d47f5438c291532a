"""Reporting shared by the benches: percentiles, checks (a label and whether it held), what the
processes' logs and the exchanges' timelines say, and the end state of a lifecycle run."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from bench.shops import EXCHANGE_SKU, Case, Shop, exchanges_by_return
from models import db

LOG_MARKERS = ("WARNING", "ERROR", "CRITICAL", "Traceback")  # JSON app lines and gunicorn's


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values`, in milliseconds (NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] * 1000


def print_checks(checks: dict[str, bool], indent: str = "  ",
                 words: tuple[str, str] = ("ok", "FAILED")) -> None:
    """One line per check: its label, then whether it held."""
    for label, held in checks.items():
        print(f"{indent}{label} -> {words[0] if held else words[1]}")


def scalar(sql: str) -> int:
    """The one value `sql` selects from the app's database."""
    with db.engine().connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def log_problems(log: Path) -> None:
    """Print how many warning/error lines gunicorn and the app wrote, and the first few."""
    lines = log.read_text(errors="replace").splitlines()
    bad = [line for line in lines if any(marker in line for marker in LOG_MARKERS)]
    print(f"server log: {len(lines)} lines, {len(bad)} warnings/errors")
    for line in bad[:5]:
        print("  " + line[:200])


def log_report(logs: list[Path]) -> None:
    """Per log: its lines, its warnings/errors, and the five commonest kinds of them."""
    for log in logs:
        if not log.exists():
            continue
        lines = log.read_text(errors="replace").splitlines()
        bad = [line for line in lines if any(marker in line for marker in LOG_MARKERS)]
        kinds = Counter(_gist(line) for line in bad)
        print(f"{log.name}: {len(lines)} lines, {len(bad)} warnings/errors")
        for gist, count in kinds.most_common(5):
            print(f"  x{count} {gist[:180]}")


def _gist(line: str) -> str:
    try:
        data = json.loads(line)
        return f"{data.get('level')} {data.get('logger')}: {data.get('msg')}"
    except ValueError:
        return line.strip()


def timeline_report() -> None:
    """Errors, warnings and ignored events the exchanges' timelines recorded."""
    with db.engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT kind, name, count(*) FROM exchange_event WHERE kind IN "
            "('error', 'warning', 'ignored') GROUP BY kind, name ORDER BY 3 DESC")).all()
    if rows:
        print("timeline errors/warnings/ignored events: " +
              "; ".join(f"{kind} {name!r} x{count}" for kind, name, count in rows))
    else:
        print("timeline: no errors, warnings or ignored events")


def end_state(shopify, shops: list[Shop], cases: list[Case]) -> dict[str, bool]:
    """Every exchange completed, once in Ongoing, fulfilled and captured once in Shopify."""
    found = exchanges_by_return()
    exchanges = [found.get((c.shop, c.return_gid)) for c in cases]
    n = len(cases)
    completed = sum(1 for e in exchanges if e is not None and e.state == "completed")
    exch_orders = Counter(o.number for s in shops for o in s.account.orders.values()
                          if o.number.startswith("EXCH-"))
    return_orders = sum(len(s.account.return_orders) for s in shops)
    fulfil = sum(shopify.store.applied("FulfillmentCreate", s.domain) for s in shops)
    capture = sum(shopify.store.applied("OrderCapture", s.domain) for s in shops)
    per_order_ok = 0
    for case in cases:
        state = shopify.store.order_state(case.shop, case.order_gid)
        exchange_fulfilments = [f for f in state["fulfillments"]
                                if any(li["sku"] == EXCHANGE_SKU for li in f["line_items"])]
        per_order_ok += len(exchange_fulfilments) == 1 and state["total_outstanding"] == "0.00"
    unprocessed = scalar("SELECT count(*) FROM webhook_delivery WHERE processed_at IS NULL")
    deliveries = scalar("SELECT count(*) FROM webhook_delivery")
    numbers_ok = len(exch_orders) == n and set(exch_orders.values()) == {1} and all(
        e is not None and exch_orders.get(e.ongoing_order_number) == 1 for e in exchanges)
    return {
        f"exchanges completed: {completed}/{n}": completed == n,
        f"Ongoing exchange orders: {sum(exch_orders.values())} for {n} exchanges, "
        f"{len(exch_orders)} distinct numbers": numbers_ok,
        f"Ongoing return orders: {return_orders}/{n}": return_orders == n,
        f"applied FulfillmentCreate: {fulfil}/{n}": fulfil == n,
        f"applied OrderCapture: {capture}/{n}": capture == n,
        f"orders with exactly one exchange fulfilment and nothing outstanding: "
        f"{per_order_ok}/{n}": per_order_ok == n,
        f"webhook deliveries: {deliveries}/{3 * n}, unprocessed: {unprocessed}":
            unprocessed == 0 and deliveries == 3 * n,
    }
