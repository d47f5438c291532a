"""Shopify's Admin API client: the GraphQL transport, its cost pacing and its error family.

The only module that sends to a Shopify URL, with clients/shopify_graphql.py (the POST of one
document; the token store and the verifier reach Shopify through this client's ShopifyApp and
HTTP client). With SHOPIFY_API_ORIGIN set, every call that
would go to https://{shop}.myshopify.com goes to that origin instead (same path, shop in
X-Swapline-Shop). The business calls built on `graphql` are in clients/shopify_admin.py.
"""
from __future__ import annotations

import logging
import time
from functools import cache
from pathlib import Path

import httpx
from flask import Flask, current_app
from shopify_app import ShopifyApp

from clients import shopify_tokens
from clients.deps import NO_METRICS, Locks, Metrics, ProcessLocks
from clients.shopify_cost import MAX_WAIT_S, Pacer, cost_of, parse_body
from clients.shopify_errors import ShopifyAuthError, ShopifyThrottled, graphql_error
from clients.shopify_graphql import SHOP_HEADER, AdminGraphQL
from clients.shopify_tokens import TokenStore, drop_access_token

EXTENSION = "swapline.shopify"
GRAPHQL_DIR = Path(__file__).with_name("graphql")
MAX_THROTTLED = 5  # THROTTLED answers waited out in one call before RQ takes over
log = logging.getLogger(__name__)


class OriginTransport(httpx.BaseTransport):
    """Sends https://{shop}.myshopify.com/... to SHOPIFY_API_ORIGIN, naming the shop in a header."""

    def __init__(self, origin: str, inner: httpx.BaseTransport | None = None):
        self.origin = httpx.URL(origin)
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host.endswith(".myshopify.com"):
            request.headers[SHOP_HEADER] = host
            request.url = request.url.copy_with(
                scheme=self.origin.scheme, host=self.origin.host, port=self.origin.port
            )
            request.headers["Host"] = request.url.netloc.decode()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class Shopify:
    """One per app: the ShopifyApp verifier/exchanger, the httpx client its token exchange and
    refresh use, the token store and the Admin GraphQL calls (on their own lean transport).
    `locks` and `metrics` come from the app (clients/deps.py)."""

    def __init__(self, settings, transport: httpx.BaseTransport | None = None, *,
                 locks: Locks | None = None, metrics: Metrics | None = None):
        self.settings = settings
        self.app = ShopifyApp(settings.api_key, settings.api_secret, settings.old_api_secret)
        if transport is None and settings.shopify_origin:
            transport = OriginTransport(settings.shopify_origin)
        self.http = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0), transport=transport)
        self.admin = AdminGraphQL(settings.api_version, settings.shopify_origin)
        self.pacer = Pacer()
        self.metrics = metrics or NO_METRICS
        self.tokens = TokenStore(self.app, self.http, locks or ProcessLocks())

    def graphql(self, shop_domain: str, document: str, variables: dict | None = None) -> dict:
        """Run one of our .graphql documents for a shop; returns `data` or raises ShopifyError.

        A token Shopify rejects (401) is refreshed once and the call repeated; a second 401 means
        the grant is gone, so the token is dropped and the merchant's next app open exchanges anew.
        """
        token = self.tokens.access_token(shop_domain)
        try:
            return self._graphql_paced(shop_domain, document, variables, token)
        except ShopifyAuthError as exc:
            if exc.status != 401:
                raise
        token = self.tokens.access_token(shop_domain, rejected=token)
        try:
            return self._graphql_paced(shop_domain, document, variables, token)
        except ShopifyAuthError as exc:
            if exc.status == 401:
                self.tokens.forget(shop_domain)
                drop_access_token(shop_domain)
            raise

    def _graphql_paced(self, shop_domain: str, document: str, variables: dict | None,
                       token: str) -> dict:
        """One call; THROTTLED waited out as Shopify's throttleStatus says, again while other
        processes drain the bucket meanwhile, up to MAX_WAIT_S of waiting in all.

        A wait Shopify cannot explain (no deficit) or beyond what is left of MAX_WAIT_S is not
        slept here: the retriable error goes to RQ, which retries the job later with its
        backoff (and runs the step again from its start).
        """
        wait = self.pacer.wait_before(shop_domain, document)
        if wait > 0:  # sleep(0) is still a system call, on every call
            time.sleep(wait)
        left = MAX_WAIT_S
        for _ in range(MAX_THROTTLED):
            try:
                return self._graphql_once(shop_domain, document, variables, token)
            except ShopifyThrottled as exc:
                if not 0 < exc.wait <= left:
                    raise
                log.info("Shopify throttled %s; waiting %.2f s for the bucket", document,
                         exc.wait, extra={"shop": shop_domain})
                time.sleep(exc.wait)
                left -= exc.wait
        return self._graphql_once(shop_domain, document, variables, token)

    def _graphql_once(self, shop_domain: str, document: str, variables: dict | None,
                      token: str) -> dict:
        started, outcome = time.perf_counter(), "error"
        try:
            result = self.admin.post(shop_domain, load_document(document), variables, token)
            outcome = "ok" if result.ok else "error"
        finally:
            self.metrics.observe("swapline_shopify_call_seconds",
                                 time.perf_counter() - started, operation=document,
                                 outcome=outcome)
        answer = {"extensions": result.extensions} if result.ok else \
            parse_body(result.response.body if result.response else "")
        self.pacer.heard(shop_domain, document, cost_of(answer.get("extensions")))
        if result.ok:
            return result.data or {}
        raise graphql_error(result, document, answer)


@cache
def load_document(name: str) -> str:
    """The text of clients/graphql/<name>.graphql (each document lives in exactly one file)."""
    return (GRAPHQL_DIR / f"{name}.graphql").read_text()


def init_app(app: Flask, transport: httpx.BaseTransport | None = None, *,
             locks: Locks, metrics: Metrics | None = None) -> None:
    """Create the app's Shopify client (and its token store) with the app's locks and metrics.

    `locks` is required here: inside the app, a token is refreshed under a lock every process
    on every machine shares (the app's Redis); a process-local default would let two machines
    refresh one shop's token at once."""
    client = Shopify(app.config["SETTINGS"], transport, locks=locks, metrics=metrics)
    app.extensions[EXTENSION] = client
    app.extensions[shopify_tokens.EXTENSION] = client.tokens


def shopify() -> Shopify:
    """The current app's Shopify client."""
    return current_app.extensions[EXTENSION]
