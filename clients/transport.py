"""The HTTP transport of the Shopify GraphQL and Ongoing REST calls: libcurl (pycurl), one easy
handle per thread that keeps its connections alive between calls, with what the environment
says about proxies and CA files read once.

Why libcurl: an outside call is most of an exchange's CPU after the database. Per call, measured
against the sandboxes (bench/client_calls.py): requests ~520 µs, httpx with shopify_app ~680 µs,
urllib3 ~270-380 µs (http.client parses each answer's headers with the email package), libcurl
~120 µs. The answer is read whole into memory (our APIs answer small JSON documents).

Proxies follow requests' rules (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, lower or upper
case; socks5:// too), decided once per origin per process, and given to libcurl explicitly, so
libcurl's own reading of the environment never applies: a change of environment needs a
restart, like every other setting. A proxy URL's user and password are sent as
Proxy-Authorization (Basic). CA certificates: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or
SSL_CERT_FILE (a file or a hashed directory), else certifi's bundle. No cookies are kept.

Timeouts: `connect` bounds the connection (and TLS), `read` the whole attempt (urllib3's bounded
each wait for more bytes of the answer; libcurl has no such timeout): an attempt never outlasts
`read`, which the goods-owner lock relies on (clients/ongoing_accounts.py). A kept-alive
connection the server has closed is replaced before use. A request with a body is never sent
twice by the transport (see `_send_once`); libcurl may send a bodiless one (a GET) again on a
fresh connection when the kept one ended with no answer at all. Answers compressed as the
caller's Accept-Encoding allowed are decoded. HTTP/1.1 only, as the sandboxes speak it.

Each thread has its own handle (a handle is not to be shared by threads at once). A forked
process keeps every handle of the parent's threads referenced and never closes one (closing it
would end the parent's TLS sessions), and makes its own. Headers must be one line of ASCII each
(no header injection); a redirect is followed only when asked, to http or https, changing the
method as urllib3 did (303 to GET without the body; 301, 302, 307 and 308 keep both).
"""
from __future__ import annotations

import math
import os
import threading
import weakref
from io import BytesIO
from urllib.parse import urlsplit

import certifi
import pycurl
import urllib3
from requests.utils import get_environ_proxies, select_proxy
from urllib3 import HTTPHeaderDict

MAX_REDIRECTS = 30  # requests' limit; Authorization is never sent on to another host (libcurl)
FOLLOW_OBEYING_CODES = 2  # CURLFOLLOW_OBEYCODE (libcurl 8.13): a custom method changes as codes say
# libcurl's own additions that our calls must not carry: "Expect: 100-continue" before a large
# body (a round trip, or a second's wait on a server that ignores it) and a form Content-Type.
NO_DEFAULTS = ("Expect:",)
_NEVER_CONNECTED = {pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT}
_NOT_A_REQUEST = {pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_URL_MALFORMAT}
_PROXY = {pycurl.E_COULDNT_RESOLVE_PROXY, getattr(pycurl, "E_PROXY", 97)}
_TLS = {pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION,
        pycurl.E_SSL_CERTPROBLEM, pycurl.E_SSL_CIPHER, pycurl.E_SSL_CACERT_BADFILE,
        pycurl.E_SSL_ISSUER_ERROR, pycurl.E_SSL_CRL_BADFILE}
_FORKED: list[pycurl.Curl] = []  # handles inherited over a fork: kept, never closed
_LIVE: weakref.WeakSet[pycurl.Curl] = weakref.WeakSet()  # every thread's handle in this process
_FORKING: list[pycurl.Curl] = []
HEADER_SETS = 64  # header sets kept made, per Transport
METHOD = -1  # not a libcurl option: the request's method and body size, set by _set_method
_NOTHING = object()


def _before_fork() -> None:
    # Held strongly across the fork: the child frees the other threads' thread-local values
    # before its after-fork hooks run, and freeing a handle would end the parent's TLS sessions.
    _FORKING[:] = list(_LIVE)


def _after_fork_in_child() -> None:
    _FORKED.extend(_FORKING)
    _FORKING.clear()
    _LIVE.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_FORKING.clear,
                    after_in_child=_after_fork_in_child)


class TransportError(Exception):
    """No HTTP answer. `what` says why in words safe for a log line (no URL, no credentials);
    `never_sent`: the connection itself failed, so the request cannot have arrived."""

    def __init__(self, what: str, *, never_sent: bool = False, network: bool = True):
        super().__init__(what)
        self.what, self.never_sent, self.network = what, never_sent, network


class Response:
    """An answer, read whole: what the clients read of one (as urllib3's response had it). Its
    headers are parsed when first asked for (a success's seldom are)."""

    def __init__(self, status: int, lines: list[bytes], data: bytes):
        self.status, self.data, self._lines = status, data, lines
        self._parsed: tuple[str, HTTPHeaderDict] | None = None

    @property
    def reason(self) -> str:
        return self._parse()[0]

    @property
    def headers(self) -> HTTPHeaderDict:
        return self._parse()[1]

    def _parse(self) -> tuple[str, HTTPHeaderDict]:
        if self._parsed is None:
            self._parsed = _headers(self._lines)
        return self._parsed


def ca_file(env=os.environ) -> str:
    """The CA bundle to verify TLS with (read once, when a Transport is made)."""
    return env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or \
        env.get("SSL_CERT_FILE") or certifi.where()


class Transport:
    """Kept-alive connections to every origin the app calls, a handle per thread.

    `env_proxies=False` sends every call straight to its host (the sandbox origin)."""

    def __init__(self, *, env_proxies: bool = True):
        self.env_proxies = env_proxies
        self.ca_certs = ca_file()
        directory = os.path.isdir(self.ca_certs)
        # the one source named, and not libcurl's built-in other one besides (as urllib3 did)
        self.trust, self.other = (pycurl.CAPATH, pycurl.CAINFO) if directory else \
            (pycurl.CAINFO, pycurl.CAPATH)
        self.routes: dict[tuple[str, str], str] = {}  # (scheme, host) → proxy URL, "" direct
        self.header_sets: dict[tuple, tuple[list[str], str | None]] = {}
        self.local = threading.local()

    def route(self, url: str) -> str:
        """The proxy for this URL's origin ("" for none), decided once per origin."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        proxy = self.routes.get(key)
        if proxy is None:
            proxy = (select_proxy(url, get_environ_proxies(url)) or "") \
                if self.env_proxies else ""
            self.routes[key] = proxy  # a race writes the same answer twice
        return proxy

    def _handle(self) -> _Handle:
        """This thread's handle (made anew in a forked process)."""
        pid, handle = getattr(self.local, "handle", (None, None))
        if pid != os.getpid():
            if handle is not None:
                _FORKED.append(handle.curl)
            handle = _Handle(self)
            _LIVE.add(handle.curl)
            self.local.handle = (os.getpid(), handle)
        return handle

    def last_connection(self) -> tuple[int, int, int]:
        """(local port, socket, connections opened) of this thread's last call: which kept
        connection it used, or whether it opened one (for tests and diagnostics)."""
        curl = self._handle().curl
        return (curl.getinfo(pycurl.LOCAL_PORT), curl.getinfo(pycurl.ACTIVESOCKET),
                curl.getinfo(pycurl.NUM_CONNECTS))

    def request(self, method: str, url: str, *, headers: dict, body: bytes | None = None,
                timeout: urllib3.Timeout, redirect: bool = False) -> Response:
        """One exchange, its whole answer read; TransportError when no answer came."""
        if not url.startswith(("https://", "http://")):
            raise TransportError("could not send the request (not an http or https URL)",
                                 network=False)
        handle = self._handle()
        curl, chunks, lines = handle.curl, handle.chunks, []
        chunks.clear()  # what a failed call before this one read
        kind = _method(method, None if body is None else len(body))
        handle.prepare(url, self.route(url), self._header_lines(headers, kind), kind, timeout,
                       redirect)
        if body is not None:
            _send_once(curl, body, lines)
        curl.setopt(pycurl.HEADERFUNCTION, lines.append)
        try:
            curl.perform()
        except pycurl.error as exc:
            raise failure(exc.args[0], curl) from None
        data = b"".join(chunks)
        chunks.clear()
        return Response(curl.getinfo(pycurl.RESPONSE_CODE), lines, data)

    def _header_lines(self, headers: dict, kind: tuple) -> tuple[list[str], str | None]:
        """(HTTPHEADER's lines, ACCEPT_ENCODING) for these headers, checked and made once per
        set of headers and kind of request (a few per client: kept, up to HEADER_SETS)."""
        posts = kind[1] is not None
        key = (posts, *headers.items())
        try:
            made = self.header_sets.get(key)
        except TypeError:  # a value that is not hashable (never ours): made for this call only
            return _header_lines(headers, posts)
        if made is None:
            made = _header_lines(headers, posts)
            if len(self.header_sets) >= HEADER_SETS:
                self.header_sets.clear()  # a token per shop: a few sets, but never unbounded
            self.header_sets[key] = made
        return made


class _Handle:
    """One thread's libcurl handle, and the options it holds. What is the same for every request
    of its Transport is set once; what a request decides (URL, proxy, method and body, headers,
    timeouts, redirects) is set by every request, but only when it differs from what the handle
    holds from the last one: every such option is decided by each request, so none of one
    request's can reach the next. (curl.reset() and setting them all cost ~5 us a call.)"""

    def __init__(self, transport: Transport):
        self.curl = curl = pycurl.Curl()
        self.chunks: list[bytes] = []
        self.held: dict[int, object] = {}
        curl.setopt(transport.trust, transport.ca_certs)
        curl.unsetopt(transport.other)  # the one source named, not libcurl's other one besides
        curl.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
        # HTTP/1.1 as the sandboxes speak it (and urllib3 did): what the tests prove is what runs
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.NOPROXY, "")  # the route decides; not libcurl's env reading
        # when a redirect is followed, as urllib3: 303 -> GET without body, 301/302/307/308 keep
        curl.setopt(pycurl.POSTREDIR, pycurl.REDIR_POST_301 | pycurl.REDIR_POST_302)
        curl.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.MAXREDIRS, MAX_REDIRECTS)
        curl.setopt(pycurl.WRITEFUNCTION, self.chunks.append)

    def prepare(self, url: str, proxy: str, header_lines: tuple[list[str], str | None],
                kind: tuple, timeout: urllib3.Timeout, redirect: bool) -> None:
        """Set what this request decides (unchanged options are left as they are)."""
        self.curl.setopt(pycurl.URL, url)
        self._set(pycurl.PROXY, proxy)
        connect, read = _seconds(timeout.connect_timeout), _seconds(timeout._read)
        if _seconds(timeout.total) is not None:
            read = min(read, timeout.total) if read is not None else timeout.total
        # 0: libcurl's default (300 s to connect; no limit on the whole), as after a reset
        self._set(pycurl.CONNECTTIMEOUT_MS, 0 if connect is None else _ms(connect))
        self._set(pycurl.TIMEOUT_MS, 0 if read is None else _ms(read))
        self._set(pycurl.FOLLOWLOCATION, FOLLOW_OBEYING_CODES if redirect else 0)
        sent, encoding = header_lines
        self._set(pycurl.ACCEPT_ENCODING, encoding)  # libcurl decodes only what it asked for
        self._set(pycurl.HTTPHEADER, sent)
        self._set(METHOD, kind)

    def _set(self, option: int, value) -> None:
        held = self.held.get(option, _NOTHING)
        if held is value or held == value:
            return
        self.held.pop(option, None)  # unknown until set: a failed setopt is redone next time
        if option == METHOD:
            _set_method(self.curl, value)
        elif value is None:
            self.curl.unsetopt(option)
        else:
            self.curl.setopt(option, value)
        self.held[option] = value


def _method(method: str, body_size: int | None) -> tuple[bool, int | None, str | None]:
    """(HEAD, the size of the body to POST or None, the custom method or None) of a request."""
    if method == "GET" and body_size is None:
        return False, None, None
    if method == "HEAD":
        return True, None, None
    if body_size is None and method != "POST":
        return False, None, method  # no body, no Content-Length
    return False, body_size or 0, None if method == "POST" else method


def _set_method(curl: pycurl.Curl, kind: tuple[bool, int | None, str | None]) -> None:
    head, size, custom = kind
    curl.setopt(pycurl.HTTPGET, 1)  # a bare GET again: no POST, no NOBODY, no upload
    if custom is None:
        curl.unsetopt(pycurl.CUSTOMREQUEST)
    else:
        curl.setopt(pycurl.CUSTOMREQUEST, custom)
    if head:
        curl.setopt(pycurl.NOBODY, 1)
    if size is not None:
        curl.setopt(pycurl.POST, 1)
        curl.setopt(pycurl.POSTFIELDSIZE, size)


def _header_lines(headers: dict, posts: bool) -> tuple[list[str], str | None]:
    sent, named, encoding = [], set(), None
    for name, value in headers.items():
        line = f"{name}: {value}"
        if not line.isascii() or "\r" in line or "\n" in line:
            raise TransportError("could not send the request (a header that is not one "
                                 "line of ASCII)", network=False)
        named.add(name.lower())
        if name.lower() == "accept-encoding":  # libcurl decodes only what it asked for
            encoding = value
        else:
            sent.append(line)
    if "user-agent" not in named:
        sent.append("User-Agent:")  # not pycurl's, naming its versions
    if posts and "content-type" not in named:
        sent.append("Content-Type:")  # not libcurl's form type
    return sent + list(NO_DEFAULTS), encoding


def _send_once(curl: pycurl.Curl, body: bytes, lines: list[bytes]) -> None:
    """Give libcurl the body to read, rewindable once per answer that came since the last
    rewind (a 307/308 sends it on to the new place). libcurl would otherwise send it again by
    itself when a kept-alive connection ends with no answer, although the server may have acted
    on it (a load balancer dropping a slow call): that ends as SEND_FAIL_REWIND, an error that
    may have arrived."""
    reader, answered = BytesIO(body), [0]

    def seek(offset: int, origin: int) -> int:
        if len(lines) <= answered[0]:
            return pycurl.SEEKFUNC_CANTSEEK
        answered[0] = len(lines)
        reader.seek(offset, origin)
        return pycurl.SEEKFUNC_OK

    curl.setopt(pycurl.READFUNCTION, reader.read)
    curl.setopt(pycurl.SEEKFUNCTION, seek)


def _ms(seconds: float) -> int:
    """libcurl's milliseconds, at least 1: its 0 means no limit at all."""
    return max(1, math.ceil(seconds * 1000))


def _seconds(value) -> float | None:
    return value if isinstance(value, (int, float)) else None


def _headers(lines: list[bytes]) -> tuple[str, HTTPHeaderDict]:
    """(reason, headers) of the last answer among libcurl's header lines (a redirect's or a 100
    Continue's come first; each begins with its status line)."""
    reason, found = "", HTTPHeaderDict()
    for raw in lines:
        text = raw.decode("iso-8859-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            parts = text.split(" ", 2)
            reason, found = (parts[2] if len(parts) > 2 else ""), HTTPHeaderDict()
        elif ":" in text:
            name, value = text.split(":", 1)
            found.add(name.strip(), value.strip())
    return reason, found


def failure(code: int, curl: pycurl.Curl) -> TransportError:
    """The TransportError of a libcurl error, in the words the app's logs have always used.
    Whether the request may have arrived: not when no byte of any request (a redirect's
    included) was sent."""
    unsent = curl.getinfo(pycurl.REQUEST_SIZE) == 0  # bytes of requests sent, redirects' too
    if code in _NOT_A_REQUEST:
        return TransportError("could not send the request (not a valid URL)", network=False)
    if code in _NEVER_CONNECTED:
        return TransportError("could not connect (host unknown or refusing connections)",
                              never_sent=unsent)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        if unsent:
            return TransportError("timed out connecting", never_sent=True)
        return TransportError("timed out waiting for the answer")
    if code == pycurl.E_SEND_FAIL_REWIND:  # the body went, the connection ended unanswered
        return TransportError("connection failed (ConnectionError)")
    name = "ProxyError" if code in _PROXY else "SSLError" if code in _TLS else "ConnectionError"
    return TransportError(f"connection failed ({name})", never_sent=unsent)
