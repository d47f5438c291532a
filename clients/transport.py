"""The HTTP transport of the Shopify GraphQL and Ongoing REST calls: urllib3's connection pools,
kept alive between calls, with what the environment says about proxies and CA files read once.

Why not requests/httpx per call: a call through requests cost ~520 µs of CPU, through httpx and
shopify_app's admin_graphql_request ~680 µs, straight through urllib3 ~270 µs
(bench/client_calls.py). requests with trust_env also read os.environ for proxies on every call.

Proxies follow requests' rules (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, lower or upper
case), decided once per origin per process: a change of environment needs a restart, like every
other setting. CA certificates: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or SSL_CERT_FILE, else
certifi's bundle (as requests and httpx did). No cookies are kept: urllib3 has no cookie jar.
"""
from __future__ import annotations

import os
import threading
from urllib.parse import unquote, urlsplit

import certifi
import urllib3
from requests.utils import get_environ_proxies, select_proxy
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

# No retry of our own here (the clients' policies decide); redirects only when asked, at most 30
# (requests' limit), Authorization dropped on a redirect to another host (urllib3's default).
NO_RETRY = urllib3.Retry(total=None, connect=0, read=False, status=0, other=0, redirect=30,
                         raise_on_redirect=False)
POOL_SIZE = 10  # connections kept per origin: one per thread that calls it at once


class TransportError(Exception):
    """No HTTP answer. `what` says why in words safe for a log line (no URL, no credentials);
    `never_sent`: the connection itself failed, so the request cannot have arrived."""

    def __init__(self, what: str, *, never_sent: bool = False, network: bool = True):
        super().__init__(what)
        self.what, self.never_sent, self.network = what, never_sent, network


def ca_file(env=os.environ) -> str:
    """The CA bundle to verify TLS with (read once, when a Transport is made)."""
    return env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or \
        env.get("SSL_CERT_FILE") or certifi.where()


class Transport:
    """Kept-alive connections to every origin the app calls, shared by threads.

    `env_proxies=False` sends every call straight to its host (the sandbox origin)."""

    def __init__(self, *, env_proxies: bool = True):
        self.env_proxies = env_proxies
        self.ca_certs = ca_file()
        self.direct = self._manager(None)
        self.routes: dict[tuple[str, str], urllib3.PoolManager] = {}  # (scheme, host) → manager
        self.guard = threading.Lock()

    def _manager(self, proxy: str | None) -> urllib3.PoolManager:
        trust = "ca_cert_dir" if os.path.isdir(self.ca_certs) else "ca_certs"  # as requests
        options = {"maxsize": POOL_SIZE, trust: self.ca_certs, "retries": NO_RETRY}
        if not proxy:
            return urllib3.PoolManager(**options)
        return urllib3.proxy_from_url(proxy, proxy_headers=proxy_headers(proxy), **options)

    def route(self, url: str) -> urllib3.PoolManager:
        """The pool manager for this URL's origin: direct, or through its proxy."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        manager = self.routes.get(key)
        if manager is None:
            proxy = select_proxy(url, get_environ_proxies(url)) if self.env_proxies else None
            with self.guard:
                manager = self.routes.get(key) or \
                    (self._manager(proxy) if proxy else self.direct)
                self.routes[key] = manager
        return manager

    def request(self, method: str, url: str, *, headers: dict, body: bytes | None = None,
                timeout: urllib3.Timeout, redirect: bool = False) -> urllib3.BaseHTTPResponse:
        """One exchange, its whole answer read; TransportError when no answer came."""
        if not url.startswith(("https://", "http://")):
            raise TransportError("could not send the request (not an http or https URL)",
                                 network=False)
        try:
            return self.route(url).urlopen(method, url, body=body, headers=headers,
                                           timeout=timeout, redirect=redirect)
        except (HTTPError, OSError) as exc:
            raise failure(exc) from None

    def clear(self) -> None:
        """Close every kept connection."""
        with self.guard:
            managers = {id(m): m for m in (self.direct, *self.routes.values())}
            self.routes.clear()
        for manager in managers.values():
            manager.clear()


def proxy_headers(proxy: str) -> dict:
    """Proxy-Authorization for a proxy URL with a user (http://user:pw@host:3128), as requests
    sent it; urllib3 itself ignores a proxy URL's credentials."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    return urllib3.make_headers(
        proxy_basic_auth=f"{unquote(parts.username)}:{unquote(parts.password or '')}")


def failure(exc: Exception) -> TransportError:
    """The TransportError of a urllib3 exception, in the words requests' errors gave."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    if isinstance(reason, LocationValueError):
        return TransportError(f"could not send the request ({type(reason).__name__})",
                              network=False)
    if isinstance(reason, NewConnectionError):  # before ConnectTimeoutError: a subclass of it
        return TransportError("could not connect (host unknown or refusing connections)",
                              never_sent=True)
    if isinstance(reason, ConnectTimeoutError):
        return TransportError("timed out connecting", never_sent=True)
    if isinstance(reason, ReadTimeoutError):
        return TransportError("timed out waiting for the answer")
    name = "ProxyError" if isinstance(reason, ProxyError) else \
        "SSLError" if isinstance(reason, SSLError) else "ConnectionError"
    return TransportError(f"connection failed ({name})")
