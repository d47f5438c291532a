"""How fast this machine runs Python, so that CPU figures of runs on different machines compare.

The benches report CPU milliseconds, and the machines a session gets differ: the same code has
measured 242 µs and 559 µs of CPU per Shopify call on two of them. `reference_ms` times a fixed
piece of work shaped like the app's own (JSON in and out, dicts, string formatting, an HMAC)
in this process: best of a few runs, the least disturbed by other load. A bench prints it beside
its CPU figures; a figure divided by it is a figure in machine-independent units.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

_PAYLOAD = {"id": 1, "admin_graphql_api_id": "gid://shopify/Return/1", "status": "OPEN",
            "return_line_items": [{"id": i, "quantity": 1, "sku": f"SKU-{i}",
                                   "price": {"amount": "19.95", "currency_code": "EUR"}}
                                  for i in range(12)]}
_KEY = b"reference-key"


def _work(rounds: int) -> None:
    for n in range(rounds):
        body = json.dumps(_PAYLOAD).encode()
        hmac.new(_KEY, body, hashlib.sha256).hexdigest()
        data = json.loads(body)
        lines = {f"{line['sku']}:{n}": dict(line, seen=True) for line in data["return_line_items"]}
        " ".join(f"{key}={value['quantity']}" for key, value in sorted(lines.items()))


def reference_ms(rounds: int = 2000, tries: int = 3) -> float:
    """CPU milliseconds this process takes for the reference work (best of `tries`)."""
    best = float("inf")
    for _ in range(tries):
        start = time.process_time()
        _work(rounds)
        best = min(best, time.process_time() - start)
    return 1000 * best


def line(cpu_ms: float | None = None) -> str:
    """The machine's reference time, and `cpu_ms` in its units, as one report line."""
    ref = reference_ms()
    scaled = f"; {cpu_ms:.1f} ms per exchange = {cpu_ms / ref:.3f} reference units" \
        if cpu_ms is not None else ""
    return f"machine: the reference work takes {ref:.0f} ms of CPU here (lower: faster){scaled}"


if __name__ == "__main__":
    print(line())  # noqa: T201
