"""The sandboxes' HTTP server (sandbox/http_server.py): connections kept alive as the real APIs
keep them, a body the app left unread does not spill into the next request, an idle connection
the server closed is replaced by the client, and stop() is prompt and leaves nothing behind."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import urllib3
from flask import Flask, request

from clients.ongoing import OngoingClient, OngoingCredentials
from clients.transport import Transport
from sandbox.http_server import SandboxServer
from sandbox.ongoing import SandboxOngoing
from sandbox.shopify import SandboxShopify

SHOP = "keepalive.myshopify.com"
SHOP_DETAILS = (Path(__file__).resolve().parents[1] / "clients/graphql/ShopDetails.graphql") \
    .read_text()


def ports_app() -> Flask:
    """Answers the client's port (one per TCP connection); /refuse answers 401 unread."""
    app = Flask("ports")

    @app.post("/refuse")
    def refuse():
        return "no", 401

    @app.route("/port", methods=["GET", "POST"])
    def port():
        return {"port": int(request.environ["REMOTE_PORT"]), "body": request.get_data(as_text=True)}

    return app


@pytest.fixture
def served():
    server = SandboxServer(ports_app()).start()
    yield server
    server.stop()


def answers(raw: bytes, port: int, count: int) -> bytes:
    """Send `raw` (several requests) down one connection; what came back up to the end of the
    `count`-th answer (the last one a JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        received = b""
        while received.count(b"HTTP/1.1 ") < count or not received.endswith(b"}\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def kept_port(pool: urllib3.HTTPConnectionPool) -> int | None:
    """The local port of the connection the pool keeps for its next call (None: none open)."""
    conn = pool.pool.queue[-1]  # a LIFO queue: the last connection put back is used next
    return conn.sock.getsockname()[1] if conn is not None and conn.sock is not None else None


def test_two_calls_from_one_pool_share_one_connection(served):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", served.server_port, maxsize=1)
    first, second = (pool.request("GET", "/port") for _ in range(2))
    assert first.json()["port"] == second.json()["port"]
    assert "close" not in first.headers.get("Connection", "").lower()
    assert kept_port(pool) == first.json()["port"]


def test_a_body_left_unread_does_not_corrupt_the_next_request(served):
    body = b"x" * 200_000  # more than one socket read
    refused = b"POST /refuse HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(body),
                                                                                      body)
    chunked = b"POST /refuse HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" \
        b"5\r\nhello\r\n0\r\n\r\n"
    following = b"POST /port HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok"
    received = answers(refused + chunked + following, served.server_port, 3)
    statuses = [line.split(b"\r\n", 1)[0] for line in received.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [b"401 UNAUTHORIZED", b"401 UNAUTHORIZED", b"200 OK"]
    assert json.loads(received[received.rindex(b"\r\n\r\n") + 4:])["body"] == "ok"


def test_a_chunked_body_reaches_the_app_whole(served):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", served.server_port, maxsize=1)
    answer = pool.request("POST", "/port", body=iter([b"hel", b"lo"]), chunked=True)
    assert answer.json()["body"] == "hello"


def test_shopify_refusing_a_token_before_reading_the_body_keeps_the_connection_sound():
    shopify = SandboxShopify("key", "secret-" + "0" * 40).start()
    try:
        shopify.store.add_shop(SHOP)
        token = shopify.store.issue_pair(SHOP)["access_token"]
        pool = urllib3.HTTPConnectionPool("127.0.0.1", shopify.server.server_port, maxsize=1)
        body = json.dumps({"query": SHOP_DETAILS + " " * 100_000}).encode()

        def post(access_token: str) -> urllib3.BaseHTTPResponse:
            return pool.request("POST", "/admin/api/2026-10/graphql.json", body=body,
                                headers={"Content-Type": "application/json",
                                         "X-Swapline-Shop": SHOP,
                                         "X-Shopify-Access-Token": access_token})

        assert post("wrong").status == 401
        port = kept_port(pool)
        answer = post(token)
        assert answer.status == 200 and answer.json()["data"]["shop"]
        assert port is not None and kept_port(pool) == port  # the same connection, kept
    finally:
        shopify.stop()


def ongoing_client(ongoing: SandboxOngoing, transport: Transport) -> OngoingClient:
    account = ongoing.add_account("keepalive", 5, "WSI-keep", "keep-pass")
    credentials = OngoingCredentials("api", account.warehouse, 5, account.username, "keep-pass")
    return OngoingClient(credentials, url_template=ongoing.url_template, http=transport,
                         max_retries=0, timeout=(1.0, 5.0))


def test_the_client_replaces_a_connection_the_server_closed_when_idle():
    ongoing = SandboxOngoing(idle_timeout=0.3).start()
    try:
        transport = Transport(env_proxies=False)
        client = ongoing_client(ongoing, transport)
        client.list_warehouses()
        port, fd, _ = transport.last_connection()
        client.list_warehouses()
        assert transport.last_connection()[0::2] == (port, 0)  # kept alive between calls
        time.sleep(0.8)  # idle past the server's timeout
        with socket.socket(fileno=os.dup(fd)) as kept:
            assert kept.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""  # closed there
        client.list_warehouses()  # no retry allowed: a new connection, no error
        new_port, _, opened = transport.last_connection()
        assert opened == 1 and new_port != port
        assert ongoing.count("GET", "/warehouses") == 3  # each call arrived once
    finally:
        ongoing.stop()


def test_stop_is_prompt_with_idle_kept_connections_and_hanging_calls():
    before = threading.active_count()
    ongoing = SandboxOngoing().start()
    transport = Transport(env_proxies=False)
    client = ongoing_client(ongoing, transport)
    client.list_warehouses()  # its connection stays open, idle
    ongoing.delay_next(40, 30.0)  # more hanging calls than the threads it starts with
    hanging = [threading.Thread(target=_call_ignoring_errors, args=(ongoing.origin,), daemon=True)
               for _ in range(40)]
    for thread in hanging:
        thread.start()
    deadline = time.monotonic() + 10
    while ongoing.count("GET", "/warehouses") < 41 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ongoing.count("GET", "/warehouses") == 41  # every hanging call is being served
    started = time.monotonic()
    client.list_warehouses()  # served at once: the server grew threads for it
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    ongoing.stop()
    assert time.monotonic() - started < 3.0
    for thread in hanging:
        thread.join(timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ongoing.server.server_port), timeout=1).close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before  # no server thread left behind


def _call_ignoring_errors(origin: str) -> None:
    pool = urllib3.PoolManager(retries=False)
    auth = urllib3.make_headers(basic_auth="WSI-keep:keep-pass")
    try:
        pool.request("GET", f"{origin}/api/keepalive/api/v1/warehouses", headers=auth,
                     timeout=urllib3.Timeout(connect=1.0, read=40.0))
    except urllib3.exceptions.HTTPError:
        pass  # the sandbox stopped under it
    pool.clear()
