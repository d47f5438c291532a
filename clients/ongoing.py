"""Ongoing WMS: the Goods Owner REST API v1 client (one instance per goods owner account).

The only module that knows an Ongoing URL: every path below is relative to the base URL built
from ONGOING_API_URL_TEMPLATE. Errors form a family (retriable ones are 429, 5xx and network
trouble); retries follow one policy; calls for one goods owner run one at a time (Ongoing's rule)
inside `serializer`, a process-wide lock per goods owner unless the app passes its own; each
attempt's latency goes to `metrics` when the app hands one over (clients/deps.py).
"""
from __future__ import annotations

import codecs
import json as jsonlib
import logging
import random
import re
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import urllib3

import jsoncodec
from clients.deps import NO_METRICS, Metrics
from clients.transport import Response, Transport, TransportError

MAX_MESSAGE = 500  # characters of Ongoing's error text kept on an exception
MAX_RETRY_AFTER = 30.0  # never wait longer than this on a 429, whatever Retry-After says
MAX_BACKOFF = 8.0
TIMEOUT = (3.05, 20.0)  # seconds: connect, read
ORDERS_PAGE = 100  # maxOrdersToGet per GET /orders when paging (orderIdFrom = last id + 1)
HEADERS = {"Accept": "application/json", "Content-Type": "application/json",
           "Accept-Encoding": "gzip, deflate", "User-Agent": "Swapline"}
SERVER_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
TAG = re.compile(r"<[^>]*>")
log = logging.getLogger(__name__)

Serializer = Callable[[str], AbstractContextManager]


class OngoingError(Exception):
    """Base of every Ongoing failure; `retriable` tells the job whether RQ should try again."""

    retriable = False

    def __init__(self, message: str, *, status: int | None = None, method: str = "",
                 path: str = ""):
        super().__init__(message)
        self.message, self.status, self.method, self.path = message, status, method, path

    def __str__(self) -> str:
        where = f" on {self.method} {self.path}" if self.method else ""
        status = f" {self.status}" if self.status is not None else ""
        return f"Ongoing{status}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class OngoingAuthError(OngoingError):
    """401: wrong API user or password; 403 (`forbidden`): the user lacks API access."""

    @property
    def forbidden(self) -> bool:
        return self.status == 403


class OngoingNotFound(OngoingError):
    """404: unknown warehouse segment, order, return order…"""


class OngoingValidationError(OngoingError):
    """Any other 4xx: Ongoing refused the request; the message is Ongoing's own text."""


class OngoingRateLimited(OngoingError):
    """429: too many calls; `retry_after` is Ongoing's Retry-After in seconds, when sent."""

    retriable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class OngoingServerError(OngoingError):
    """5xx: Ongoing (or whatever answers for its host) failed; worth retrying later."""

    retriable = True


class OngoingNetworkError(OngoingError):
    """Timeout, refused connection, unknown host: no HTTP answer at all."""

    retriable = True

    def __init__(self, message: str, *, never_sent: bool = False, **kwargs):
        super().__init__(message, **kwargs)
        self.never_sent = never_sent  # the connection failed, so the request cannot have arrived


@dataclass(frozen=True)
class OngoingCredentials:
    """One goods owner's API account (the password never appears in repr)."""

    server: str  # host prefix: "api" in production, "wms1" for demo systems
    warehouse: str  # the path segment of the Ongoing login URL
    goods_owner_id: int
    username: str  # the API user, "WSI…"
    password: str = field(repr=False)

    @property
    def key(self) -> str:
        """The serialisation key: calls under one key run one at a time."""
        return f"{self.server}/{self.warehouse}/{self.goods_owner_id}"


def basic_auth(username: str, password: str) -> str:
    """The Authorization header of HTTP Basic (latin-1 as requests sent it, else UTF-8)."""
    pair = f"{username}:{password}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode()
    return "Basic " + b64encode(raw).decode("ascii")


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def process_serializer(key: str) -> Iterator[None]:
    """Hold this process's lock for `key` (the default serializer)."""
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        yield


class OngoingClient:
    """Business-named calls to one goods owner's Ongoing account, retried by one policy."""

    def __init__(self, credentials: OngoingCredentials, *, url_template: str,
                 http: Transport | None = None,
                 timeout: tuple[float, float] | None = None, max_retries: int = 2,
                 backoff: float = 0.5, serializer: Serializer | None = None,
                 metrics: Metrics | None = None):
        if not SERVER_LABEL.match(credentials.server or ""):
            raise OngoingValidationError("the API server must be a host name like 'api' or 'wms1'")
        if not (credentials.warehouse or "").strip():
            raise OngoingValidationError("the warehouse name is missing")
        self.credentials = credentials
        self.goods_owner_id = int(credentials.goods_owner_id)
        self.base_url = url_template.format(
            server=credentials.server, warehouse=quote(credentials.warehouse, safe="")
        ).rstrip("/")
        self.http = http or Transport()
        self.headers = {**HEADERS, "Authorization": basic_auth(credentials.username,
                                                               credentials.password)}
        timeout = timeout or TIMEOUT
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self.max_retries, self.backoff = max_retries, backoff
        self.serializer = serializer or process_serializer
        self.metrics = metrics or NO_METRICS

    def __repr__(self) -> str:
        return f"OngoingClient({self.base_url!r}, goods_owner_id={self.goods_owner_id})"

    # --- business calls (every one is idempotent: GET, upsert PUT, PATCH to a value, DELETE) ---

    def list_warehouses(self) -> list[dict]:
        """The goods owner's warehouses: [{id, code, name, address}]."""
        return _expect(self._request("GET", "/warehouses", idempotent=True), list)

    def list_order_statuses(self) -> list[dict]:
        """The system's order statuses: [{number, text}]."""
        body = self._request("GET", "/orders/statuses", idempotent=True)
        return _expect(body, list, "orderStatuses")

    def list_return_order_statuses(self) -> list[dict]:
        """The system's return-order statuses: [{number, text}]."""
        body = self._request("GET", "/returnOrders/statuses", idempotent=True)
        return _expect(body, list, "returnOrderStatuses")

    def find_articles(self, article_numbers: list[str]) -> list[dict]:
        """Articles (with inventoryInfo) by article number; none asked, none returned."""
        if not article_numbers:  # an empty filter would make Ongoing return every article
            return []
        params = {"goodsOwnerId": self.goods_owner_id, "articleNumbers": list(article_numbers)}
        return _expect(self._request("GET", "/articles", params=params, idempotent=True), list)

    def create_or_update_order(self, order: dict) -> dict:
        """Upsert an outbound order keyed on orderNumber; returns {orderId, message}."""
        body = {**order, "goodsOwnerId": self.goods_owner_id}
        return _expect(self._request("PUT", "/orders", json=body, idempotent=True), dict)

    def get_order(self, order_id: int) -> dict:
        """One order (GetOrderModel) by Ongoing's orderId."""
        return _expect(self._request("GET", f"/orders/{int(order_id)}", idempotent=True), dict)

    def find_order_by_number(self, order_number: str) -> dict | None:
        """The order with this orderNumber, or None when Ongoing has none."""
        params = {"goodsOwnerId": self.goods_owner_id, "orderNumber": order_number}
        orders = _expect(self._request("GET", "/orders", params=params, idempotent=True), list)
        # Exact match only: a loose filter must never make us take another order for ours.
        return next((o for o in orders
                     if (o.get("orderInfo") or {}).get("orderNumber") == order_number), None)

    def find_orders(self, order_numbers: list[str]) -> list[dict]:
        """The orders with these orderNumbers, in one call (sent as repeated `orderNumbers`)."""
        if not order_numbers:
            return []
        params = {"goodsOwnerId": self.goods_owner_id, "orderNumbers": list(order_numbers),
                  "maxOrdersToGet": len(order_numbers)}
        return _expect(self._request("GET", "/orders", params=params, idempotent=True), list)

    def set_order_status(self, order_id: int, status_number: int) -> dict:
        """Move an order to a status number; returns {orderId, message}."""
        body = {"orderStatusNumber": int(status_number)}
        path = f"/orders/{int(order_id)}/orderStatus"
        return _expect(self._request("PATCH", path, json=body, idempotent=True), dict)

    def cancel_order(self, order_id: int) -> dict:
        """Cancel an order the warehouse has not started on; returns {orderId, message}."""
        return _expect(self._request("DELETE", f"/orders/{int(order_id)}", idempotent=True), dict)

    def cancel_return_order(self, return_order_id: int) -> dict:
        """Cancel a return order whose goods have not arrived; returns {returnOrderId, message}."""
        path = f"/returnOrders/{int(return_order_id)}"
        return _expect(self._request("DELETE", path, idempotent=True), dict)

    def create_or_update_return_order(self, return_order: dict) -> dict:
        """Upsert a return order keyed on returnOrderNumber; returns {returnOrderId, message}."""
        body = {**return_order, "goodsOwnerId": self.goods_owner_id}
        return _expect(self._request("PUT", "/returnOrders", json=body, idempotent=True), dict)

    def get_return_order(self, return_order_id: int) -> dict:
        """One return order (GetReturnOrderModel) by Ongoing's returnOrderId."""
        path = f"/returnOrders/{int(return_order_id)}"
        return _expect(self._request("GET", path, idempotent=True), dict)

    def find_return_orders(self, *, return_order_numbers: list[str] | None = None,
                           status_from: int | None = None,
                           status_to: int | None = None) -> list[dict]:
        """Return orders filtered by number and/or status range (an empty number list → [])."""
        if return_order_numbers is not None and not return_order_numbers:
            return []
        params = {"goodsOwnerId": self.goods_owner_id, "returnOrderNumbers": return_order_numbers,
                  "returnOrderStatusFrom": status_from, "returnOrderStatusTo": status_to}
        params = {k: v for k, v in params.items() if v is not None}
        return _expect(self._request("GET", "/returnOrders", params=params, idempotent=True), list)

    def set_return_order_status(self, return_order_id: int, status_number: int) -> dict:
        """Move a return order to a status number; returns Ongoing's answer."""
        body = {"returnOrderStatusNumber": int(status_number)}
        path = f"/returnOrders/{int(return_order_id)}/returnOrderStatus"
        return _expect(self._request("PATCH", path, json=body, idempotent=True), dict)

    # --- transport ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict | None = None,
                 json: dict | None = None, idempotent: bool) -> dict | list:
        """Send one call, retrying what the policy allows; returns the decoded JSON body.

        Each attempt holds the serializer; the backoff sleeps between attempts do not.
        """
        attempt = 0
        while True:
            try:
                return self._send(method, path, params, json)
            except OngoingError as exc:
                if not self._should_retry(exc, attempt, idempotent):
                    raise
                delay = self._retry_delay(exc, attempt)
                log.warning("Ongoing %s: retrying in %.2f s after %s", self.credentials.key,
                            delay, exc)
                time.sleep(delay)
                attempt += 1

    def _should_retry(self, exc: OngoingError, attempt: int, idempotent: bool) -> bool:
        if attempt >= self.max_retries or not exc.retriable:
            return False
        # A non-idempotent call may already have reached Ongoing unless the connection failed.
        return idempotent or (isinstance(exc, OngoingNetworkError) and exc.never_sent)

    def _retry_delay(self, exc: OngoingError, attempt: int) -> float:
        delay = min(self.backoff * 2 ** attempt, MAX_BACKOFF)
        delay *= 0.5 + random.random() / 2  # jitter: between half and all of the step
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    def _send(self, method: str, path: str, params: dict | None,
              json: dict | None) -> dict | list:
        url = self.base_url + path
        if params:
            url += "?" + urlencode(_pairs(params))
        body = None if json is None else jsoncodec.dumps(json, ensure_ascii=True)
        with self.serializer(self.credentials.key):
            started, status = time.perf_counter(), "error"
            try:
                response = self.http.request(method, url, headers=self.headers, body=body,
                                             timeout=self.timeout, redirect=True)
                status = f"{response.status // 100}xx"
            except TransportError as exc:
                if not exc.network:  # a bad URL template, not a network fault
                    raise OngoingError(exc.what, method=method, path=path) from None
                status = "network"
                raise OngoingNetworkError(exc.what, never_sent=exc.never_sent, method=method,
                                          path=path) from None
            finally:  # the attempt alone: not the wait for the serializer, not the backoff
                self.metrics.observe("swapline_ongoing_call_seconds",
                                     time.perf_counter() - started, method=method, status=status)
            if response.status >= 400:  # raised inside: a failed attempt lets the serializer go
                raise _http_error(response, method, path)
        if not response.data:
            return {}
        try:
            return jsoncodec.loads(response.data)
        except ValueError:
            raise OngoingError("Ongoing answered with something other than JSON",
                               status=response.status, method=method, path=path) from None

    # --- added business calls -------------------------------------------------------------------

    def find_open_orders_since(self, created_from: datetime, article_numbers: list[str], *,
                               status_below: int) -> list[dict]:
        """Orders created at or after `created_from` with a line for any of these articles and
        a status below `status_below` (Cancelled, above Sent, is left out), page by page.

        No time limit is documented for orderCreatedTimeFrom (only orderUpdatedTimeFrom must be
        at most 2 days old), so an old `created_from` is fine."""
        if not article_numbers:  # an empty filter would make Ongoing return every order
            return []
        params = {"goodsOwnerId": self.goods_owner_id, "articleNumbers": list(article_numbers),
                  "orderCreatedTimeFrom": created_from.astimezone(UTC).isoformat(
                      timespec="milliseconds"),
                  "orderStatusTo": int(status_below) - 1, "maxOrdersToGet": ORDERS_PAGE}
        found: list[dict] = []
        while True:
            page = _expect(self._request("GET", "/orders", params=params, idempotent=True), list)
            found += page
            if len(page) < ORDERS_PAGE:
                return found
            params = {**params, "orderIdFrom": max(o["orderInfo"]["orderId"] for o in page) + 1}


def _pairs(params: dict) -> list[tuple[str, object]]:
    """Query pairs as requests built them: a list repeats its key, None is left out."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                pairs.append((key, item))
    return pairs


def _http_error(response: Response, method: str, path: str) -> OngoingError:
    status = response.status
    where = {"status": status, "method": method, "path": path}
    message = _message(response)
    if status in (401, 403):
        return OngoingAuthError(message, **where)
    if status == 404:
        return OngoingNotFound(message, **where)
    if status == 429:
        return OngoingRateLimited(message, retry_after=_retry_after(response), **where)
    if status >= 500:
        return OngoingServerError(message, **where)
    return OngoingValidationError(message, **where)


def _message(response: Response) -> str:
    """Ongoing's own words: `message` or `Message` from JSON, else the text; no HTML, capped."""
    text = response.data.decode(_charset(response), errors="replace")
    try:
        body = jsonlib.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict):
        body = body.get("message") or body.get("Message") or ""
    text = " ".join(TAG.sub(" ", str(body or "")).split())
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE - 1] + "…"
    return text or f"HTTP {response.status} {response.reason or ''}".strip()


def _charset(response: Response) -> str:
    """The answer's charset (UTF-8 when it names none or one Python does not know)."""
    kind = response.headers.get("Content-Type", "")
    name = kind.partition("charset=")[2].split(";")[0].strip(' "') or "utf-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def _retry_after(response: Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:  # absent, or an HTTP date: fall back to our own backoff
        return None


def _expect(body, kind: type, key: str | None = None):
    """The body (or body[key]) when it has the documented type, else a loud OngoingError."""
    value = body.get(key) if key and isinstance(body, dict) else body
    if not isinstance(value, kind):
        raise OngoingError(f"unexpected response shape: wanted {key or kind.__name__}")
    return value
