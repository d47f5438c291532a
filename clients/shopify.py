"""Shopify: session-token checks, token exchange and refresh, the token store, Admin GraphQL.

The only module that knows a Shopify URL. With SHOPIFY_API_ORIGIN set, every call that would go
to https://{shop}.myshopify.com goes to that origin instead (same path, shop in X-Swapline-Shop).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import httpx
from flask import Flask, current_app
from shopify_app import ShopifyApp
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from clients.shopify_cost import MAX_WAIT_S, Pacer, cost_of, error_codes, parse_body
from models import crypto, db
from models.shop import Shop, get_shop
from models.types import utcnow

EXTENSION = "swapline.shopify"
GRAPHQL_DIR = Path(__file__).with_name("graphql")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
REFRESH_MARGIN = timedelta(minutes=5)  # Shopify's own libraries refresh 5 min early
SHOP_HEADER = "X-Swapline-Shop"
log = logging.getLogger(__name__)


class ShopifyError(RuntimeError):
    """Base of every Shopify failure; `retriable` tells the job whether RQ should try again."""

    retriable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class ShopifyAuthError(ShopifyError):
    """The shop's token is missing, expired beyond refresh, or rejected (reinstall/reopen)."""


class ShopifyGraphQLError(ShopifyError):
    """Shopify refused the document or its variables (a bug or a user error, not transient);
    `paths` are the answer's error paths (e.g. ["order"]: that field could not be given)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "",
                 paths: tuple = ()):
        super().__init__(message, status=status, code=code)
        self.paths = paths


class ShopifyProtectedData(ShopifyGraphQLError):
    """Shopify withheld protected customer data (the app lacks its approval, a Partner Dashboard
    matter, not a scope): `data` is the rest of the answer, with the withheld fields null."""

    def __init__(self, message: str, *, status: int | None = None, paths: tuple = (),
                 data: dict | None = None):
        super().__init__(message, status=status, code="PROTECTED_CUSTOMER_DATA", paths=paths)
        self.data = data or {}


class ShopifyAccessDenied(ShopifyGraphQLError):
    """The shop has not granted a scope the document needs: only the merchant can fix it."""


class ShopifyRetriableError(ShopifyError):
    """Throttled, 5xx or network trouble: safe to retry later."""

    retriable = True


class ShopifyThrottled(ShopifyRetriableError):
    """THROTTLED: the shop's cost bucket is short; `wait` seconds refill it (0 when unknown)."""

    def __init__(self, message: str, *, wait: float, status: int | None = None):
        super().__init__(message, status=status, code="THROTTLED")
        self.wait = wait


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


@dataclass(frozen=True)
class SessionToken:
    """A verified App Bridge session token."""

    shop: str  # full myshopify domain
    user_id: str | None
    token: str
    claims: dict


class Shopify:
    """One per app: the ShopifyApp verifier/exchanger and the HTTP client it uses."""

    def __init__(self, settings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self.app = ShopifyApp(settings.api_key, settings.api_secret, settings.old_api_secret)
        if transport is None and settings.shopify_origin:
            transport = OriginTransport(settings.shopify_origin)
        self.http = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0), transport=transport)
        self.pacer = Pacer()

    def exchange(self, session_token: SessionToken):
        """Swap a verified session token for an expiring offline access token."""
        result = self.app.exchange_using_token_exchange(
            "offline", id_token={"exchangeable": True, "token": session_token.token,
                                 "claims": session_token.claims},
            expiring=True, http_client=self.http,
        )
        return _token_or_raise(result, "token exchange")

    def refresh(self, shop: Shop):
        """Refresh a shop's token pair (the caller holds the shop's refresh lock)."""
        result = self.app.refresh_token_exchanged_access_token(
            {"shop": shop.domain.removesuffix(".myshopify.com"), "access_mode": "offline",
             "refresh_token": crypto.decrypt(shop.refresh_token_enc or ""),
             # Expiry left empty: we decided to refresh (5 min margin), the library only calls.
             "expires": None,
             "refresh_token_expires": _iso(shop.refresh_token_expires_at)},
            http_client=self.http,
        )
        return _token_or_raise(result, "token refresh")

    def graphql(self, shop_domain: str, document: str, variables: dict | None = None) -> dict:
        """Run one of our .graphql documents for a shop; returns `data` or raises ShopifyError.

        A token Shopify rejects (401) is refreshed once and the call repeated; a second 401 means
        the grant is gone, so the token is dropped and the merchant's next app open exchanges anew.
        """
        token = access_token(shop_domain)
        try:
            return self._graphql_paced(shop_domain, document, variables, token)
        except ShopifyAuthError as exc:
            if exc.status != 401:
                raise
        token = access_token(shop_domain, rejected=token)
        try:
            return self._graphql_paced(shop_domain, document, variables, token)
        except ShopifyAuthError as exc:
            if exc.status == 401:
                drop_access_token(shop_domain)
            raise

    def _graphql_paced(self, shop_domain: str, document: str, variables: dict | None,
                       token: str) -> dict:
        """One call, THROTTLED waited out once when Shopify's throttleStatus says how long.

        A wait Shopify cannot explain (no deficit) or longer than MAX_WAIT_S is not slept here:
        the retriable error goes to RQ, which retries the job later with its backoff.
        """
        time.sleep(self.pacer.wait_before(shop_domain, document))
        try:
            return self._graphql_once(shop_domain, document, variables, token)
        except ShopifyThrottled as exc:
            if not 0 < exc.wait <= MAX_WAIT_S:
                raise
            log.info("Shopify throttled %s; waiting %.2f s for the bucket", document, exc.wait,
                     extra={"shop": shop_domain})
            time.sleep(exc.wait)
        return self._graphql_once(shop_domain, document, variables, token)

    def _graphql_once(self, shop_domain: str, document: str, variables: dict | None,
                      token: str) -> dict:
        from jobs import metrics  # late, as access_token imports jobs.queue

        started, outcome = time.perf_counter(), "error"
        try:
            result = self.app.admin_graphql_request(
                load_document(document), shop=shop_domain.removesuffix(".myshopify.com"),
                access_token=token, api_version=self.settings.api_version, variables=variables,
                http_client=self.http,
            )
            outcome = "ok" if result.ok else "error"
        finally:
            metrics.observe("swapline_shopify_call_seconds", time.perf_counter() - started,
                            operation=document, outcome=outcome)
        answer = {"extensions": result.extensions} if result.ok else \
            parse_body(result.response.body if result.response else "")
        self.pacer.heard(shop_domain, document, cost_of(answer.get("extensions")))
        if result.ok:
            return result.data or {}
        raise _graphql_error(result, document, answer)


def _token_or_raise(result, what: str):
    if result.ok and result.access_token is not None:
        return result.access_token
    status = result.response.status if result.response else None
    retriable = status in (0, 429) or (status or 0) >= 500
    error = ShopifyRetriableError if retriable else ShopifyAuthError
    raise error(f"{what} failed: {result.log.code}", status=status, code=result.log.code)


def _graphql_error(result, document: str, answer: dict) -> ShopifyError:
    status = result.response.status if result.response else None
    code = result.log.code
    if code == "graphql_errors":
        return _answer_error(document, answer, status)
    if status == 401:
        return ShopifyAuthError(f"{document}: access token rejected", status=status, code=code)
    if status in (0, 429) or (status or 0) >= 500:
        return ShopifyRetriableError(f"{document}: {code}", status=status, code=code)
    return ShopifyGraphQLError(f"{document}: {code}", status=status, code=code)


def _answer_error(document: str, answer: dict, status: int | None) -> ShopifyError:
    """A 200 with top-level `errors`: throttled (retriable), too expensive or refused (terminal)."""
    codes = error_codes(answer)
    if "THROTTLED" in codes:
        cost = cost_of(answer.get("extensions"))
        wait = cost.wait_for(cost.requested) if cost else 0.0
        return ShopifyThrottled(f"{document}: throttled (bucket short, {wait:.1f} s to refill)",
                                wait=wait, status=status)
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    paths = tuple(tuple(e.get("path") or ()) for e in errors)
    if errors and all(_protected_data(e) for e in errors):  # before ACCESS_DENIED: it may share
        return ShopifyProtectedData(  # that code, but only the developer can fix it
            f"{document}: {_first_error(answer)}", status=status, paths=paths,
            data=answer.get("data"))
    if "ACCESS_DENIED" in codes:
        return ShopifyAccessDenied(
            f"{document}: {_first_error(answer)} The shop has not granted Swapline this "
            "permission; the merchant approves it by opening Swapline in Shopify admin.",
            status=status, code="ACCESS_DENIED")
    if "MAX_COST_EXCEEDED" in codes:
        limit = answer["errors"][codes.index("MAX_COST_EXCEEDED")].get("extensions", {})
        return ShopifyGraphQLError(
            f"{document}: Shopify refuses this query as too expensive (cost "
            f"{limit.get('cost')}, limit {limit.get('maxCost', 1000)} points per query); "
            "the document must read fewer items per page", status=status,
            code="MAX_COST_EXCEEDED")
    message = _first_error(answer)
    return ShopifyGraphQLError(f"{document}: {message}", status=status,
                               code=next((c for c in codes if c), "graphql_errors"), paths=paths)


def _protected_data(error: dict) -> bool:
    """A protected-customer-data refusal: by its documentation link when present, else by
    Shopify's wording ("This app is not approved to access the X object" / "to use the x
    field"; shopify.dev/docs/apps/launch/protected-customer-data)."""
    link = str((error.get("extensions") or {}).get("documentation") or "")
    return "protected-customer-data" in link or \
        "is not approved to " in str(error.get("message") or "")


def _first_error(answer: dict) -> str:
    try:
        return str(answer["errors"][0]["message"])[:300]
    except (KeyError, IndexError, TypeError):
        return "GraphQL errors"


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@cache
def load_document(name: str) -> str:
    """The text of clients/graphql/<name>.graphql (each document lives in exactly one file)."""
    return (GRAPHQL_DIR / f"{name}.graphql").read_text()


def init_app(app: Flask, transport: httpx.BaseTransport | None = None) -> None:
    """Create the app's Shopify client."""
    app.extensions[EXTENSION] = Shopify(app.config["SETTINGS"], transport)


def shopify() -> Shopify:
    """The current app's Shopify client."""
    return current_app.extensions[EXTENSION]


# --- session tokens -------------------------------------------------------------------------

def shop_from_claims(claims: dict) -> str | None:
    """The shop domain when `iss` and `dest` agree on one valid myshopify host, else None."""
    dest = urlparse(str(claims.get("dest", ""))).hostname or ""
    iss = urlparse(str(claims.get("iss", "")))
    if not SHOP_DOMAIN.match(dest) or iss.hostname != dest or iss.path.rstrip("/") != "/admin":
        return None
    if not all(claims.get(k) for k in ("sub", "jti", "sid")):
        return None
    return dest


# --- token store ----------------------------------------------------------------------------

def save_token(domain: str, token, *, session: Session) -> Shop:
    """Store a fresh token pair for a shop, creating the row if needed (one row per shop)."""
    shop = get_shop(domain, session=session)
    if shop is None:
        shop = Shop(domain=domain, installed_at=utcnow())
        session.add(shop)
    shop.access_token_enc = crypto.encrypt(token.token)
    shop.access_token_expires_at = _parse_iso(token.expires)
    shop.refresh_token_enc = crypto.encrypt(token.refresh_token) if token.refresh_token else None
    shop.refresh_token_expires_at = _parse_iso(token.refresh_token_expires)
    shop.scopes = token.scope or ""
    if shop.uninstalled_at is not None:
        shop.uninstalled_at, shop.installed_at = None, utcnow()
    shop.updated_at = utcnow()
    return shop


def install(session_token: SessionToken) -> Shop:
    """First load of a shop without a usable token: exchange and store it.

    Two first loads at once both exchange; the loser of the insert race re-reads the winner's
    row and stores its own (equally valid) token over it.
    """
    token = shopify().exchange(session_token)
    try:
        with db.session() as s:
            shop = save_token(session_token.shop, token, session=s)
    except IntegrityError:
        with db.session() as s:
            shop = save_token(session_token.shop, token, session=s)
    log.info("offline token stored", extra={"shop": session_token.shop})
    return shop


def needs_token(shop: Shop | None) -> bool:
    """True when the shop has no token we can use or refresh."""
    if shop is None or not shop.installed:
        return True
    if shop.refresh_token_expires_at and shop.refresh_token_expires_at <= utcnow():
        return True
    return False


def access_token(domain: str, *, rejected: str | None = None) -> str:
    """A valid access token for a shop, refreshed once, under a per-shop lock, when near expiry.

    `rejected` is a token Shopify just answered 401 to: refresh unless another worker already
    replaced it.
    """
    with db.session() as s:
        shop = get_shop(domain, session=s)
        if shop is None or not shop.installed:
            raise ShopifyAuthError(f"{domain} has no offline token (app not opened or uninstalled)")
        if not _needs_refresh(shop, rejected):
            # Read inside the session: a token under an older key is re-encrypted and saved here.
            plain, rotated = crypto.decrypt_current(shop.access_token_enc)
            if rotated is not None:
                crypto.swap(Shop, shop.id, "access_token_enc", shop.access_token_enc, rotated,
                            session=s)
            return plain
    from jobs.queue import jobs  # the lock lives in the same Redis as the queue

    with jobs().connection.lock(f"swapline:token-refresh:{domain}", timeout=60,
                                blocking_timeout=60):
        try:
            return _refresh_locked(domain, rejected)
        except ShopifyAuthError:
            drop_access_token(domain)  # the grant is gone; only a new app open can fix it
            raise


def _refresh_locked(domain: str, rejected: str | None) -> str:
    with db.session() as s:
        shop = get_shop(domain, session=s)
        if shop is None or not shop.installed:
            raise ShopifyAuthError(f"{domain} was uninstalled during refresh")
        if _needs_refresh(shop, rejected):  # still stale inside the lock: this worker refreshes
            if not shop.refresh_token_enc:
                raise ShopifyAuthError(f"{domain} has no refresh token")
            save_token(domain, shopify().refresh(shop), session=s)
            log.info("offline token refreshed", extra={"shop": domain})
        return crypto.decrypt(shop.access_token_enc)


def _needs_refresh(shop: Shop, rejected: str | None) -> bool:
    if rejected is not None and crypto.decrypt(shop.access_token_enc) == rejected:
        return True
    expires = shop.access_token_expires_at
    return expires is not None and expires - REFRESH_MARGIN <= utcnow()


def drop_access_token(domain: str) -> None:
    """Shopify refuses the shop's tokens: drop them; the next app open exchanges a new pair."""
    with db.session() as s:
        shop = get_shop(domain, session=s)
        if shop is not None:
            shop.access_token_enc = shop.refresh_token_enc = None
            shop.access_token_expires_at = shop.refresh_token_expires_at = None
            shop.updated_at = utcnow()
    log.warning("Shopify rejected the shop's tokens; dropped until the app is opened again",
                extra={"shop": domain})
