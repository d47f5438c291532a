"""clients/shopify_graphql.py sends and classifies a document exactly as shopify_app's
admin_graphql_request does: both are run against one scripted server and compared."""
from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from shopify_app.graphql import admin_graphql

from clients import shopify_graphql
from clients.shopify import OriginTransport
from clients.shopify_graphql import AdminGraphQL

SHOP = "alpha-shop.myshopify.com"
QUERY = "query ShopDetails { shop { name } }"
OK = (200, {"data": {"shop": {"name": "Alpha"}}, "extensions": {"cost": {"requestedQueryCost": 1}}})


class Scripted(BaseHTTPRequestHandler):
    """Answers POSTs from the server's `script` (status, JSON body or text[, headers]), then 200
    OK; records (path, headers, body) in `seen`."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, dict(self.headers), body))
        status, answer, *extra = self.server.script.popleft() if self.server.script else OK
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        for name, value in (extra[0] if extra else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.daemon_threads = True
    httpd.seen, httpd.script = [], deque()
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    httpd.origin = f"http://127.0.0.1:{httpd.server_port}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def slept(monkeypatch):
    """The in-call retry waits of both implementations, not slept; jitter fixed."""
    waits: list[float] = []

    class Clock:
        @staticmethod
        def sleep(seconds: float) -> None:
            waits.append(seconds)

    for module in (admin_graphql, shopify_graphql):
        monkeypatch.setattr(module, "time", Clock)
        monkeypatch.setattr(module.random, "randint", lambda a, b: 50)
    return waits


def library(server, variables=None):
    """What shopify_app's admin_graphql_request sends and answers (as the client used it)."""
    http = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0),
                        transport=OriginTransport(server.origin))
    return admin_graphql.admin_graphql_request(
        QUERY, shop=SHOP.removesuffix(".myshopify.com"), access_token="shpat_x",
        api_version="2026-10", variables=variables, http_client=http)


def ours(server, variables=None):
    return AdminGraphQL("2026-10", server.origin).post(SHOP, QUERY, variables, "shpat_x")


def summary(result) -> tuple:
    return (result.ok, result.shop, result.log.code, result.response.status,
            result.response.body if not result.ok else "", result.data, result.extensions)


@pytest.mark.parametrize("variables", [None, {}, {"id": "gid://shopify/Order/1", "n": "å€"}])
def test_the_same_request_is_sent(server, variables):
    library(server, variables), ours(server, variables)
    (path, theirs, their_body), (our_path, mine, our_body) = server.seen
    assert our_path == path == "/admin/api/2026-10/graphql.json"
    assert our_body == their_body
    for name in ("X-Shopify-Access-Token", "User-Agent", "Content-Type", "X-Swapline-Shop",
                 "Host", "Accept", "Accept-Encoding"):
        assert mine[name] == theirs[name], name
    assert mine["X-Swapline-Shop"] == SHOP


ANSWERS = {
    "ok": [OK],
    "graphql errors": [(200, {"errors": [{"message": "x", "extensions": {"code": "THROTTLED"}}],
                              "extensions": {"cost": {"requestedQueryCost": 5}}})],
    "not json": [(200, "<html>")],
    "unauthorized": [(401, {"errors": "[API] Invalid API key or access token"})],
    "bad request": [(400, {"errors": [{"message": "syntax"}]})],
    "forbidden": [(403, {"errors": "no"})],
    "not found": [(404, {"errors": "Not Found"})],
    "server error": [(500, {"errors": "boom"})],
    "429 then ok": [(429, {"errors": "slow down"}, {"Retry-After": "2"}), OK],
    "429 persists": [(429, {"errors": "slow down"}, {"Retry-After": "0"})] * 3,
    "503 twice then ok": [(503, {"errors": "x"}), (502, {"errors": "x"}), OK],
    "504 persists": [(504, {"errors": "x"})] * 3,
}


@pytest.mark.parametrize("name", ANSWERS)
def test_answers_are_classified_and_retried_alike(server, slept, name):
    server.script.extend(ANSWERS[name])
    theirs, their_waits, their_calls = library(server), list(slept), len(server.seen)
    slept.clear()
    server.script.extend(ANSWERS[name])
    mine = ours(server)
    assert summary(mine) == summary(theirs)
    assert slept == their_waits and len(server.seen) == 2 * their_calls


def test_no_answer_is_a_network_error():
    result = AdminGraphQL("2026-10", "http://127.0.0.1:1").post(SHOP, QUERY, None, "shpat_x")
    assert (result.ok, result.log.code, result.response.status) == (False, "network_error", 0)


def test_without_an_origin_the_shops_own_host_is_called():
    url, headers = AdminGraphQL("2026-10")._target("alpha-shop", "shpat_x")
    assert url == f"https://{SHOP}/admin/api/2026-10/graphql.json"
    assert "X-Swapline-Shop" not in headers and headers["X-Shopify-Access-Token"] == "shpat_x"
