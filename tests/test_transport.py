"""The outside calls' HTTP transport (clients/transport.py): kept-alive connections, a connection
the server closed, timeouts, proxies from the environment, no cookies, errors."""
from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from clients.transport import Transport, TransportError

TIMEOUT = urllib3.Timeout(connect=1.0, read=0.3)


class Recorder(BaseHTTPRequestHandler):
    """Answers every request 200 on a kept-alive HTTP/1.1 connection; the server's `seen` gets
    (connection number, request line, headers). Behaviour per path: /slow sleeps past the
    client's read timeout; /close answers, then drops the connection without saying so."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.number = self.server.connections

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append((self.number, self.requestline, dict(self.headers)))
        if self.path.endswith("/slow"):
            time.sleep(0.6)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=abc; Path=/")
        self.end_headers()
        self.wfile.write(body)
        if self.path.endswith("/close"):
            self.close_connection = True  # a server's idle timeout, no Connection: close sent

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.daemon_threads = True
    httpd.connections, httpd.seen = 0, []
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def get(transport: Transport, url: str) -> urllib3.BaseHTTPResponse:
    return transport.request("GET", url, headers={"Accept": "application/json"}, timeout=TIMEOUT)


def test_calls_share_one_kept_alive_connection(server):
    transport = Transport(env_proxies=False)
    for _ in range(3):
        assert get(transport, f"{server.url}/a").status == 200
    assert [number for number, _, _ in server.seen] == [1, 1, 1]


def test_a_connection_the_server_closed_is_replaced_without_an_error(server):
    transport = Transport(env_proxies=False)
    assert get(transport, f"{server.url}/close").status == 200
    time.sleep(0.05)  # the server has closed its end
    assert get(transport, f"{server.url}/a").data == b'{"ok": true}'
    assert [number for number, _, _ in server.seen] == [1, 2]


def test_no_cookie_is_kept(server):
    transport = Transport(env_proxies=False)
    get(transport, f"{server.url}/a")
    get(transport, f"{server.url}/a")
    assert all("Cookie" not in headers for _, _, headers in server.seen)


def test_a_slow_answer_is_a_read_timeout_after_the_request_was_sent(server):
    with pytest.raises(TransportError) as caught:
        get(Transport(env_proxies=False), f"{server.url}/slow")
    assert caught.value.what == "timed out waiting for the answer"
    assert caught.value.network and not caught.value.never_sent


def test_nothing_listening_was_never_sent():
    with pytest.raises(TransportError) as caught:
        get(Transport(env_proxies=False), "http://127.0.0.1:1/a")
    assert caught.value.never_sent and caught.value.network
    assert caught.value.what == "could not connect (host unknown or refusing connections)"


def test_a_url_that_is_not_http_is_not_a_network_fault():
    for url in ("ftp://example.com/a", "http://exa mple.com:x/a"):
        with pytest.raises(TransportError, match="could not send") as caught:
            get(Transport(env_proxies=False), url)
        assert not caught.value.network


def test_the_proxy_named_by_the_environment_is_used_and_no_proxy_is_honoured(server,
                                                                              monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the recorder plays the proxy
    monkeypatch.setenv("NO_PROXY", "direct.example,localhost")
    transport = Transport()
    assert get(transport, "http://shop.example/admin/x").status == 200
    [(_, line, headers)] = server.seen
    assert line == "GET http://shop.example/admin/x HTTP/1.1" and headers["Host"] == "shop.example"
    with pytest.raises(TransportError, match="could not connect"):  # not through the proxy
        get(transport, "http://direct.example/x")
    monkeypatch.delenv("HTTP_PROXY")  # read once: the route of an origin is kept
    assert get(transport, "http://shop.example/admin/y").status == 200
    assert len(server.seen) == 2


def test_a_proxy_user_in_the_url_is_sent_as_proxy_authorization(server, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    proxy = server.url.replace("http://", "http://us%40er:p%3Ass@")  # quoted, as in a URL
    monkeypatch.setenv("HTTP_PROXY", proxy)
    assert get(Transport(), "http://shop.example/admin/x").status == 200
    [(_, _, headers)] = server.seen
    sent = {name.lower(): value for name, value in headers.items()}
    assert sent["proxy-authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()


def test_without_env_proxies_the_environment_is_ignored(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert get(Transport(env_proxies=False), f"{server.url}/a").status == 200
