"""The outside calls' HTTP transport (clients/transport.py): kept-alive connections, a connection
the server closed, timeouts, proxies from the environment, no cookies, errors."""
from __future__ import annotations

import base64
import contextlib
import gzip
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from clients.transport import Response, Transport, TransportError
from tests.tls import self_signed

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
        if self.path.endswith("/gzip") and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=abc; Path=/")
        self.end_headers()
        self.wfile.write(body)
        if self.path.endswith("/close"):
            self.close_connection = True  # a server's idle timeout, no Connection: close sent

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        """Records the body too; /moved[CODE]/x redirects (307, or CODE) to /x on the host of
        `redirect_to`."""
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append((self.number, self.requestline, dict(self.headers)))
        self.server.bodies.append(body)
        if self.path.endswith("/vanish"):  # acted on, then the connection ends unanswered
            self.close_connection = True
            return
        if "/moved" in self.path:
            code, rest = self.path.split("/moved")[1].split("/", 1)
            self.send_response(int(code or 307))
            self.send_header("Location", f"{self.server.redirect_to}/{rest}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(201)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_PATCH = do_DELETE = do_POST  # noqa: N815 - http.server's naming

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append((self.number, self.requestline, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", "12")  # a GET's length, without its body
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def recorder(host: str, context=None) -> Iterator[ThreadingHTTPServer]:
    """A Recorder server on 127.0.0.1, called by `host` in its `url`; HTTPS with `context`;
    stopped when the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.daemon_threads = True
    httpd.connections, httpd.seen, httpd.bodies = 0, [], []
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    httpd.url = f"{'https' if context else 'http'}://{host}:{httpd.server_port}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server():
    with recorder("127.0.0.1") as httpd:
        yield httpd


def get(transport: Transport, url: str) -> Response:
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


def send(transport: Transport, method: str, url: str, body: bytes, **headers):
    return transport.request(method, url, headers={"Accept": "application/json", **headers},
                             body=body, timeout=TIMEOUT, redirect=True)


def test_a_body_goes_with_our_headers_alone(server):
    transport = Transport(env_proxies=False)
    big = b"x" * 5000  # libcurl would ask "Expect: 100-continue" before a body this large
    for method in ("POST", "PUT", "PATCH"):
        answer = send(transport, method, f"{server.url}/a", big, **{"Content-Type": "text/plain"})
        assert answer.status == 201 and answer.headers["retry-after"] == "7"
    answer = send(transport, "POST", f"{server.url}/a", b"{}")
    assert [line.split()[0] for _, line, _ in server.seen] == ["POST", "PUT", "PATCH", "POST"]
    assert server.bodies == [big, big, big, b"{}"]
    for _, _, headers in server.seen:
        assert "Expect" not in headers and headers.get("Content-Type") in (None, "text/plain")
    assert "Content-Type" not in server.seen[-1][2]  # no form type made up for a bare body


def test_a_redirect_is_followed_and_authorization_stays_with_its_host(server):
    other = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    other.connections, other.seen, other.bodies = 0, [], []
    threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True).start()
    try:
        server.redirect_to = f"http://localhost:{other.server_port}"
        answer = send(Transport(env_proxies=False), "POST", f"{server.url}/moved/b", b"{}",
                      Authorization="Basic c2VjcmV0")
        assert answer.status == 201
        [(_, line, headers)] = other.seen
        assert line == "POST /b HTTP/1.1" and "Authorization" not in headers
        assert other.bodies == [b"{}"]
    finally:
        other.shutdown()
        other.server_close()


def test_a_forked_process_makes_its_own_connection_and_leaves_the_parents(server):
    transport = Transport(env_proxies=False)
    assert get(transport, f"{server.url}/a").status == 200
    port = transport.last_connection()[0]
    child = multiprocessing.get_context("fork").Process(
        target=lambda: os._exit(0 if get(transport, f"{server.url}/b").status == 200 else 1))
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert get(transport, f"{server.url}/c").status == 200
    assert transport.last_connection()[0::2] == (port, 0)  # the parent's, still sound
    assert [number for number, _, _ in server.seen] == [1, 2, 1]


class Listener(threading.Thread):
    """A bare TCP server on 127.0.0.1: each connection served by `_serve` in a thread of its own,
    until `close`."""

    def __init__(self):
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.start()

    def run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class Socks5(Listener):
    """A SOCKS5 proxy without authentication (RFC 1928: CONNECT by IPv4 address or by name),
    relaying each connection; `asked` records the targets clients named."""

    def __init__(self):
        self.asked = []
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        with client:
            greeting = client.recv(2)
            client.recv(greeting[1])  # the methods offered: we take "no authentication"
            client.sendall(b"\x05\x00")
            _, command, _, kind = client.recv(4)
            host = socket.inet_ntoa(client.recv(4)) if kind == 1 else \
                client.recv(client.recv(1)[0]).decode()
            port = int.from_bytes(client.recv(2), "big")
            self.asked.append((command, host, port))
            with socket.create_connection((host, port)) as target:
                client.sendall(b"\x05\x00\x00\x01" + bytes(6))
                threading.Thread(target=_pipe, args=(target, client), daemon=True).start()
                _pipe(client, target)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass


def test_a_socks5_proxy_from_the_environment_carries_the_call(server, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    proxy = Socks5()
    try:
        monkeypatch.setenv("ALL_PROXY", f"socks5h://127.0.0.1:{proxy.port}")  # named there
        url = server.url.replace("127.0.0.1", "localhost")
        assert get(Transport(), f"{url}/a").data == b'{"ok": true}'
        assert proxy.asked == [(1, "localhost", server.server_port)]
        assert [line for _, line, _ in server.seen] == ["GET /a HTTP/1.1"]
    finally:
        proxy.close()


def test_a_compressed_answer_is_decoded_as_asked(server):
    transport = Transport(env_proxies=False)
    answer = transport.request("GET", f"{server.url}/gzip", timeout=TIMEOUT,
                               headers={"Accept-Encoding": "gzip, deflate"})
    assert answer.data == b'{"ok": true}' and answer.headers["Content-Encoding"] == "gzip"
    assert server.seen[0][2]["Accept-Encoding"] == "gzip, deflate"


def test_a_body_that_may_have_arrived_is_never_sent_again(server):
    transport = Transport(env_proxies=False)
    assert send(transport, "POST", f"{server.url}/a", b"{}").status == 201  # a kept connection
    with pytest.raises(TransportError) as caught:
        send(transport, "POST", f"{server.url}/vanish", b'{"m": 1}')
    assert caught.value.network and not caught.value.never_sent
    assert server.bodies == [b"{}", b'{"m": 1}']  # once: libcurl would have sent it again
    assert send(transport, "POST", f"{server.url}/a", b"{}").status == 201  # and goes on


@pytest.fixture
def tls_server(tmp_path):
    """A local HTTPS server whose certificate (localhost) only its own CA file vouches for."""
    import ssl

    folder = self_signed(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    with recorder("localhost", context) as httpd:
        httpd.ca = folder / "cert.pem"
        yield httpd


def test_tls_trusts_the_named_ca_file_and_nothing_else(tls_server, monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TransportError) as caught:  # certifi's bundle does not know it
        get(Transport(env_proxies=False), f"{tls_server.url}/a")
    assert caught.value.what == "connection failed (SSLError)" and caught.value.never_sent
    assert tls_server.seen == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.ca))
    assert get(Transport(env_proxies=False), f"{tls_server.url}/a").data == b'{"ok": true}'


@pytest.fixture
def other():
    """A second recorder, on another host name (localhost) than `server` (127.0.0.1)."""
    with recorder("localhost") as httpd:
        yield httpd


def test_redirects_change_the_method_as_urllib3_did(server, other):
    server.redirect_to = other.url
    transport = Transport(env_proxies=False)
    for method, code in (("PATCH", 303), ("POST", 302), ("PUT", 301), ("POST", 308)):
        send(transport, method, f"{server.url}/moved{code}/x", b'{"b": 1}')
    lines = [line for _, line, _ in other.seen]
    assert lines == ["GET /x HTTP/1.1", "POST /x HTTP/1.1", "PUT /x HTTP/1.1", "POST /x HTTP/1.1"]
    assert other.bodies == [b'{"b": 1}'] * 3  # the 303's GET went without it


class Vanishing(Listener):
    """A bare HTTP/1.1 server: a GET is answered on the kept connection; a POST's body is read,
    recorded in `bodies`, and the connection closed unanswered (acted on, then dropped)."""

    def __init__(self):
        self.bodies = []
        super().__init__()
        self.url = f"http://localhost:{self.port}"

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as stream:
            while request := stream.readline():
                headers = {}
                while (line := stream.readline()) not in (b"\r\n", b""):
                    name, value = line.decode().split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                if request.startswith(b"POST"):
                    self.bodies.append(stream.read(int(headers["content-length"])))
                    return
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_a_redirected_body_is_not_sent_again_on_a_dead_connection(server):
    target = Vanishing()
    server.redirect_to = target.url
    transport = Transport(env_proxies=False)
    assert get(transport, f"{target.url}/warm").data == b"ok"  # a kept connection there
    with pytest.raises(TransportError) as caught:
        send(transport, "POST", f"{server.url}/moved/gone", b'{"x": 1}')
    assert not caught.value.never_sent
    assert target.bodies == [b'{"x": 1}']  # once: libcurl would have sent it again
    target.close()


def test_a_timeout_under_a_millisecond_still_ends_the_call(server):
    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        Transport(env_proxies=False).request("GET", f"{server.url}/slow", headers={},
                                             timeout=urllib3.Timeout(connect=1.0, read=0.0004))
    assert time.monotonic() - started < 0.5  # not libcurl's "0 means no limit"


def test_a_header_that_is_not_one_ascii_line_is_refused_before_sending(server):
    for value in ("a\r\nX-Injected: 1", "caf\u00e9"):
        with pytest.raises(TransportError, match="could not send") as caught:
            Transport(env_proxies=False).request("GET", f"{server.url}/a", timeout=TIMEOUT,
                                                 headers={"X-Token": value})
        assert not caught.value.network
    assert server.seen == []


def test_a_fork_leaves_other_threads_kept_tls_connections_sound(tls_server, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.ca))
    transport, results = Transport(env_proxies=False), []
    warmed, forked = threading.Event(), threading.Event()

    def other_thread():
        results.append(send(transport, "POST", f"{tls_server.url}/a", b"{}").status)
        warmed.set()
        forked.wait(10)
        results.append(send(transport, "POST", f"{tls_server.url}/a", b"{}").status)
        results.append(transport.last_connection()[2])  # connections it had to open

    thread = threading.Thread(target=other_thread)
    thread.start()
    warmed.wait(10)
    child = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    child.start()
    child.join(10)
    forked.set()
    thread.join(10)
    assert results == [201, 201, 0]  # the same TLS connection, still sound


def test_one_handle_carries_nothing_of_a_request_into_the_next(server, other):
    """Options are set only when they change: every kind of request after every other, on one
    handle, goes exactly as it would on a fresh one."""
    server.redirect_to = other.url
    transport = Transport(env_proxies=False)
    calls = [  # (method, path, body, headers, what the server saw: line, body or None)
        ("POST", "/a", b'{"a": 1}', {"Content-Type": "application/json", "X-Token": "t"}),
        ("GET", "/b", None, {"Accept-Encoding": "gzip"}),
        ("DELETE", "/c", None, {}),
        ("HEAD", "/d", None, {}),
        ("GET", "/e", None, {}),
        ("PATCH", "/f", b"{}", {}),
        ("PUT", "/g", b"x" * 3000, {"User-Agent": "mine"}),
        ("POST", "/moved303/h", b'{"b": 2}', {}),  # on as a GET without its body
        ("POST", "/i", b"", {}),
        ("GET", "/j", None, {}),
    ]
    for method, path, body, headers in calls:
        answer = transport.request(method, f"{server.url}{path}", headers=headers, body=body,
                                   timeout=TIMEOUT, redirect=True)
        assert answer.status in (200, 201)
        if method == "GET":
            assert answer.data == b'{"ok": true}'
    assert transport.last_connection()[2] == 0  # the last call, too, on a kept connection
    seen = {line.split()[1]: (line.split()[0], headers) for _, line, headers in server.seen}
    seen["/h"] = next(("GET", h) for _, line, h in other.seen if line == "GET /h HTTP/1.1")
    assert {path: method for path, (method, _) in seen.items()} == {
        "/a": "POST", "/b": "GET", "/c": "DELETE", "/d": "HEAD", "/e": "GET", "/f": "PATCH",
        "/g": "PUT", "/moved303/h": "POST", "/h": "GET", "/i": "POST", "/j": "GET"}
    assert server.bodies == [b'{"a": 1}', b"", b"{}", b"x" * 3000, b'{"b": 2}', b""]
    sent = {path: {k.lower(): v for k, v in headers.items()} for path, (_, headers) in seen.items()}
    assert sent["/a"]["content-type"] == "application/json" and sent["/a"]["x-token"] == "t"
    assert sent["/b"]["accept-encoding"] == "gzip"
    for path in ("/b", "/c", "/d", "/e", "/h", "/j"):  # nothing of a body, a type or a token
        assert not {"content-length", "content-type", "x-token"} & set(sent[path]), path
    for path in ("/c", "/d", "/e", "/f", "/g", "/h", "/i", "/j"):
        assert "accept-encoding" not in sent[path], path
    assert sent["/f"]["content-length"] == "2" and "content-type" not in sent["/f"]
    assert sent["/g"]["user-agent"] == "mine" and sent["/g"]["content-length"] == "3000"
    assert sent["/i"]["content-length"] == "0"
    assert all("user-agent" not in sent[p] for p in sent if p != "/g")
    assert all("expect" not in headers for headers in sent.values())


def test_one_handle_takes_each_origins_proxy_and_timeouts_afresh(server, other, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the recorder plays the proxy
    monkeypatch.setenv("NO_PROXY", "localhost")  # `other` is called directly
    transport = Transport()
    for path in ("/1", "/2"):
        assert get(transport, f"http://shop.example{path}").status == 200
        assert get(transport, f"{other.url}{path}").status == 200
    assert [line for _, line, _ in server.seen] == [f"GET http://shop.example/{n} HTTP/1.1"
                                                   for n in (1, 2)]
    assert [line for _, line, _ in other.seen] == ["GET /1 HTTP/1.1", "GET /2 HTTP/1.1"]
    with pytest.raises(TransportError, match="timed out"):
        get(transport, f"{other.url}/slow")  # 0.3 s for the whole call
    unbounded = urllib3.Timeout(connect=1.0, read=None)
    assert transport.request("GET", f"{other.url}/slow", headers={},
                             timeout=unbounded).status == 200  # no limit left over
