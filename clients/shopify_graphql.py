"""The POST of one Admin GraphQL document, sent and classified exactly as shopify_app's
`admin_graphql_request` does, on the lean transport (clients/transport.py).

Why not call admin_graphql_request: with httpx under it a call cost ~680 µs of CPU, most of it
re-validating, re-encoding and logging what is the same for every call (bench/client_calls.py).
Kept from it, byte for byte where it matters: the URL, the headers (X-Shopify-Access-Token, its
User-Agent, Content-Type), the JSON body ({"query", "variables" when any}), its in-call retries
(429: twice, 1 s apart; 502/503/504: twice, after 1 s and 2 s plus jitter) and its result
(shopify_app's GQLResult, codes such as graphql_errors, unauthorized, http_error_503,
network_error), which clients/shopify_errors.py turns into Swapline's errors. Redirects are not
followed (httpx's default).
"""
from __future__ import annotations

import random
import time

import urllib3
from shopify_app.types import GQLResult, Log, Res
from shopify_app.utils import _get_user_agent

import jsoncodec
from clients.transport import Response, Transport, TransportError

SHOP_HEADER = "X-Swapline-Shop"
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
MAX_RETRIES = 2  # admin_graphql_request's default
TRANSIENT = (502, 503, 504)
# admin_graphql_request looks for "Retry-After" in a dict of httpx's lower-cased header names,
# never finds it, and waits its default of 1 s: so do we (RQ's retry handles longer limits).
RATE_LIMIT_WAIT = 1
HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate",
           "Content-Type": "application/json", "User-Agent": _get_user_agent()}


class AdminGraphQL:
    """Posts documents to https://{shop}.myshopify.com/admin/api/{version}/graphql.json, or to
    `origin` (SHOPIFY_API_ORIGIN) with the shop named in X-Swapline-Shop."""

    def __init__(self, api_version: str, origin: str | None = None,
                 http: Transport | None = None):
        self.api_version, self.origin = api_version, origin.rstrip("/") if origin else None
        # The sandbox origin is called directly, as httpx did under its own transport.
        self.http = http or Transport(env_proxies=origin is None)
        self.path = f"/admin/api/{api_version}/graphql.json"

    def post(self, shop: str, query: str, variables: dict | None, token: str) -> GQLResult:
        """One document for `shop` (its myshopify domain), retried as shopify_app retries."""
        url, headers = self._target(shop, token)
        request = {"query": query, **({"variables": variables} if variables else {})}
        body = jsoncodec.dumps(request)
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self.http.request("POST", url, headers=headers, body=body,
                                             timeout=TIMEOUT)
            except TransportError:
                return _failed("network_error", Res(status=0, body="", headers={}))
            status = response.status
            if status == 429 and attempt < MAX_RETRIES:
                time.sleep(RATE_LIMIT_WAIT)
            elif status in TRANSIENT and attempt < MAX_RETRIES:
                time.sleep(2 ** attempt + random.randint(0, 100) / 1000)
            else:
                return _result(shop, response)
        raise AssertionError("unreachable: the last attempt always returns")

    def _target(self, shop: str, token: str) -> tuple[str, dict]:
        host = shop.removesuffix(".myshopify.com") + ".myshopify.com"
        headers = {**HEADERS, "X-Shopify-Access-Token": token}
        if self.origin is None:
            return f"https://{host}{self.path}", headers
        return self.origin + self.path, {**headers, SHOP_HEADER: host}


def _result(shop: str, response: Response) -> GQLResult:
    status = response.status
    if status == 429:
        return _failed("rate_limited", Res(status=429, body='{"error":"Too many requests"}',
                                            headers={"Content-Type": "application/json"}))
    if status in TRANSIENT:
        return _failed(f"http_error_{status}", Res(status=status, body="", headers={}))
    if status == 401:
        return _failed("unauthorized", Res(status=401, body="", headers={}))
    text = response.data.decode("utf-8", errors="replace")
    if status != 200:
        return _failed(f"http_error_{status}",
                       Res(status=status, body=text, headers=dict(response.headers)))
    res = Res(status=status, body=text, headers={})  # no one reads a success's headers
    try:
        answer = jsoncodec.loads(text)
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    if answer.get("errors"):
        return _failed("graphql_errors", res)
    return GQLResult(ok=True, shop=shop.removesuffix(".myshopify.com"),
                     log=Log(code="success", detail="GraphQL request successful."),
                     http_logs=[], response=res, data=answer.get("data"),
                     extensions=answer.get("extensions"))


def _failed(code: str, res: Res) -> GQLResult:
    return GQLResult(ok=False, shop=None, log=Log(code=code, detail=code), http_logs=[],
                     response=res, data=None, extensions=None)
