"""Sandbox Ongoing: a local server speaking the Goods Owner REST API v1's real shapes.

Routes are /<server>/<warehouse>/api/v1/…, so ONGOING_API_URL_TEMPLATE is
http://127.0.0.1:<port>/{server}/{warehouse}/api/v1 (`SandboxOngoing.url_template`). Servers
`api` and `wms1` exist; only the endpoints clients/ongoing.py uses do; anything else is refused
loudly (404/405, logged).

Statuses (numbers matter; texts are Ongoing's default English ones):
- orders: Ongoing's standard list, 150 Error, 200 Open, 300 Released, 320 Allocated, 400 Picked,
  450 Sent, 500 Collected, 1000 Cancelled; new orders start at `Account.initial_status` (200).
  A 3PL-added 800 Returned is an option: `Account.add_order_status(*THREE_PL_RETURNED)`.
- return orders (Ongoing documents no default set; these follow DESIGN's example mapping):
  100 Notified (new ones), 200 Returned, 900 Cancelled.
Rules:
- PUT /orders updates an order only below 320 Allocated (then the warehouse is working on it);
  unknown article numbers are refused.
- PATCH …/orderStatus: the number must exist; Cancelled is final; from Allocated on an order
  cannot be cancelled; from Picked on it only moves forward.
- DELETE /orders/{id} cancels below 320; repeating it on a cancelled order answers 200 again.
- PUT /returnOrders updates a return order only while Notified; PATCH to Returned books the
  returned items on the return lines and on the original order's lines; Cancelled is final.
Test hooks (plain methods): add_account, Account.add_article, move_order / move_return_order
(the warehouse at work; move_order fires the registered webhook), add_connector_order (the
merchant's own Shopify→Ongoing integration imports an order, at a chosen time), fail_next /
delay_next, outage (every call fails for a while, some hang), calls.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime

import requests
from flask import jsonify

from sandbox.http_server import IDLE_TIMEOUT, SandboxServer
from sandbox.ongoing.api import create_sandbox_app
from sandbox.ongoing.store import (
    SERVERS,
    Account,
    Order,
    _next_id,
    _order_lines,
    set_order_status,
    set_return_order_status,
    webhook_payload,
)


class SandboxOngoing:
    """Runs the sandbox on a port (sandbox/http_server.py, connections kept alive, closed after
    `idle_timeout` seconds idle); holds accounts, calls and faults."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 idle_timeout: float = IDLE_TIMEOUT):
        self.lock = threading.RLock()
        self.accounts: list[Account] = []
        self.calls: list[tuple[str, str]] = []  # (method, path below /api/v1), for tests
        self._failures: deque[tuple[int, float | None]] = deque()
        self._delays: deque[float] = deque()
        self._outage: tuple[float, float, int] | None = None  # (until, hang seconds, every)
        self._outage_calls = 0
        self.server = SandboxServer(create_sandbox_app(self), host=host, port=port,
                                    idle_timeout=idle_timeout)
        self.origin = self.server.origin
        self.url_template = f"{self.origin}/{{server}}/{{warehouse}}/api/v1"

    def start(self) -> SandboxOngoing:
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving; calls hanging in a delay or an outage end at once."""
        self.server.stop()

    def add_account(self, warehouse: str, goods_owner_id: int, username: str, password: str, *,
                    api_access: bool = True, server: str = "api", **options) -> Account:
        """Create a goods owner's API user in `warehouse` on `server` (api or wms1)."""
        if server not in SERVERS:
            raise ValueError(f"the sandbox knows servers {SERVERS}, not {server!r}")
        account = Account(server, warehouse, goods_owner_id, username, password,
                          api_access=api_access, **options)
        with self.lock:
            self.accounts.append(account)
        return account

    def accounts_at(self, server: str, warehouse: str) -> list[Account]:
        with self.lock:
            return [a for a in self.accounts if (a.server, a.warehouse) == (server, warehouse)]

    def register_webhook(self, account: Account, url: str, token: str) -> None:
        """Point the account's *Order status is changed* webhook at `url` with X-Auth-Token."""
        with self.lock:
            account.webhook, account.webhook_id = (url, token), _next_id("webhook")

    def move_order(self, order_id: int, status_number: int, *,
                   tracking: dict | None = None) -> requests.Response | None:
        """The warehouse moves an order (tracking: waybill, trackingUrl, transporter at Sent).

        Fires the account's webhook when one is registered and returns its response.
        """
        with self.lock:
            account, order = self._find_order(order_id)
            if status_number not in account.order_statuses:
                raise ValueError(f"order status {status_number} does not exist")
            set_order_status(order, status_number, tracking)
            hook = account.webhook
            payload = webhook_payload(account, order) if hook else None
        if hook is None:
            return None
        url, token = hook
        return requests.post(url, json=payload, headers={"X-Auth-Token": token}, timeout=10)

    def add_connector_order(self, account: Account, number: str, consignee: dict,
                            lines: list[tuple[str, int]], *, created: datetime | None = None,
                            status: int | None = None) -> int:
        """An order the merchant's own connector put in Ongoing (not Swapline): `created` sets
        its createdDate (default now), `status` its status (default the account's first).
        Returns its orderId."""
        body = {"goodsOwnerId": account.goods_owner_id, "orderNumber": number,
                "deliveryDate": f"{datetime.now(UTC).date().isoformat()}T00:00:00Z",
                "consignee": consignee}
        raw = [{"rowNumber": str(n), "articleNumber": sku, "numberOfItems": qty}
               for n, (sku, qty) in enumerate(lines, start=1)]
        with self.lock:
            if account.order_by_number(number) is not None:
                raise ValueError(f"order number {number} exists already")
            order = Order(_next_id("order"), number, body, _order_lines(account, raw, []),
                          status if status is not None else account.initial_status)
            if created is not None:
                order.created = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] \
                    + "Z"
            account.orders[order.id] = order
            return order.id

    def move_return_order(self, return_order_id: int, status_number: int) -> None:
        """The warehouse moves a return order (to Returned: the parcel arrived)."""
        with self.lock:
            for account in self.accounts:
                if return_order_id in account.return_orders:
                    if status_number not in account.return_order_statuses:
                        raise ValueError(f"return order status {status_number} does not exist")
                    ret = account.return_orders[return_order_id]
                    return set_return_order_status(account, ret, status_number)
        raise KeyError(f"no sandbox return order {return_order_id}")

    def _find_order(self, order_id: int) -> tuple[Account, Order]:
        for account in self.accounts:
            if order_id in account.orders:
                return account, account.orders[order_id]
        raise KeyError(f"no sandbox order {order_id}")

    def fail_next(self, n: int, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next n API calls with `status` (and Retry-After when given)."""
        with self.lock:
            self._failures.extend([(status, retry_after)] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        """Make the next n API calls wait `seconds` before answering (for timeouts)."""
        with self.lock:
            self._delays.extend([seconds] * n)

    def outage(self, seconds: float, *, hang: float = 25.0, hang_every: int = 3) -> None:
        """For `seconds` from now every API call fails: 500 or 503 (the IIS page), and every
        `hang_every`-th one first hangs `hang` seconds (past a client's read timeout)."""
        with self.lock:
            self._outage = (time.monotonic() + seconds, hang, hang_every)
            self._outage_calls = 0

    def _outage_fault(self) -> tuple[float, tuple[int, None]] | None:
        if self._outage is None or time.monotonic() >= self._outage[0]:
            return None
        _, hang, every = self._outage
        self._outage_calls += 1
        if self._outage_calls % every == 0:
            return hang, (503, None)
        return 0, (500 if self._outage_calls % 2 else 503, None)

    def reset(self) -> None:
        """Forget recorded calls and pending faults (accounts and their data stay)."""
        with self.lock:
            self._outage = None
            self.calls.clear()
            self._failures.clear()
            self._delays.clear()

    def count(self, method: str, path: str) -> int:
        """How many recorded calls were `method path` (path below /api/v1)."""
        with self.lock:
            return self.calls.count((method, path))

    def intake(self, method: str, path: str):
        """Record a call, then apply the next pending delay and failure, if any."""
        with self.lock:
            self.calls.append((method, path))
            delay = self._delays.popleft() if self._delays else 0
            failure = self._failures.popleft() if self._failures else None
            outage = self._outage_fault()
            if outage is not None:
                delay, failure = outage
        if delay:
            self.server.wait(delay)
        if failure is None:
            return None
        status, retry_after = failure
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        if status in (502, 503, 504):
            page = f"<html><body><h1>{status} Service unavailable</h1><p>IIS</p></body></html>"
            return page, status, {**headers, "Content-Type": "text/html"}
        if status >= 500:
            return jsonify(Message="An error has occurred."), status, headers
        return jsonify(message=f"sandbox: injected {status}"), status, headers
