"""The shops' offline tokens: exchanged on a shop's first load, stored encrypted, refreshed once
under a lock every process shares when near expiry, dropped when Shopify refuses them."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx
from flask import current_app
from shopify_app import ShopifyApp
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from clients.deps import Locks, job_run
from clients.shopify_errors import ShopifyAuthError, token_or_raise
from clients.shopify_session import SessionToken
from models import crypto, db
from models.shop import Shop, StoredToken, get_shop, stored_token
from models.types import utcnow

EXTENSION = "swapline.shopify_tokens"
REFRESH_MARGIN = timedelta(minutes=5)  # Shopify's own libraries refresh 5 min early
log = logging.getLogger(__name__)


class TokenStore:
    """Token exchange and refresh through the app's ShopifyApp, stored in the shop's row.

    `locks` are shared by every process (the app hands over its Redis): one worker refreshes a
    shop's token while the others wait for it, since a refresh invalidates the previous pair."""

    def __init__(self, app: ShopifyApp, http: httpx.Client, locks: Locks):
        self.app, self.http, self.locks = app, http, locks
        # domain -> (RQ job run, token, expiry): a job's calls read the shop's row once
        self.in_job: dict[str, tuple[tuple, str, datetime | None]] = {}

    def exchange(self, session_token: SessionToken):
        """Swap a verified session token for an expiring offline access token."""
        result = self.app.exchange_using_token_exchange(
            "offline", id_token={"exchangeable": True, "token": session_token.token,
                                 "claims": session_token.claims},
            expiring=True, http_client=self.http,
        )
        return token_or_raise(result, "token exchange")

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
        return token_or_raise(result, "token refresh")

    def install(self, session_token: SessionToken) -> Shop:
        """First load of a shop without a usable token: exchange and store it.

        Two first loads at once both exchange; the loser of the insert race re-reads the winner's
        row and stores its own (equally valid) token over it.
        """
        token = self.exchange(session_token)
        try:
            with db.session() as s:
                shop = save_token(session_token.shop, token, session=s)
        except IntegrityError:
            with db.session() as s:
                shop = save_token(session_token.shop, token, session=s)
        log.info("offline token stored", extra={"shop": session_token.shop})
        return shop

    def access_token(self, domain: str, *, rejected: str | None = None) -> str:
        """A valid access token for a shop, refreshed once, under a per-shop lock, when near
        expiry. `rejected` is a token Shopify just answered 401 to: refresh unless another
        worker already replaced it. Inside an RQ job the token read is kept for the job's
        later calls (until near expiry); a rejection reads the row again. Not kept past the
        job: a token dropped (uninstall, a refused grant) or refreshed by another worker would
        then cost a refused Shopify call, far dearer than the one-statement read it saves."""
        run = job_run()
        if rejected is None and run is not None:
            kept = self.in_job.get(domain)
            if kept is not None and kept[0] == run and not _near_expiry(kept[2]):
                return kept[1]
        self.forget(domain)
        token, expires = self._read_or_refresh(domain, rejected)
        if run is not None:
            self.in_job[domain] = (run, token, expires)
        return token

    def forget(self, domain: str) -> None:
        """Drop the token kept for the running job (Shopify refused it, or it was dropped)."""
        self.in_job.pop(domain, None)

    def _read_or_refresh(self, domain: str, rejected: str | None) -> tuple[str, datetime | None]:
        with db.autocommit() as connection:  # one statement: no BEGIN and COMMIT around it
            shop = stored_token(domain, connection=connection)
        if shop is None or not shop.installed:
            raise ShopifyAuthError(
                f"{domain} has no offline token (app not opened or uninstalled)")
        if not _needs_refresh(shop, rejected):
            plain, rotated = crypto.decrypt_current(shop.access_token_enc)
            if rotated is not None:  # a token under an older key is re-encrypted here
                with db.session() as s:
                    crypto.swap(Shop, shop.id, "access_token_enc", shop.access_token_enc,
                                rotated, session=s)
            return plain, shop.access_token_expires_at
        with self.locks.lock(f"swapline:token-refresh:{domain}", timeout=60,
                             blocking_timeout=60):
            try:
                return self._refresh_locked(domain, rejected)
            except ShopifyAuthError:
                drop_access_token(domain)  # the grant is gone; only a new app open can fix it
                raise

    def _refresh_locked(self, domain: str, rejected: str | None) -> tuple[str, datetime | None]:
        with db.session() as s:
            shop = get_shop(domain, session=s)
            if shop is None or not shop.installed:
                raise ShopifyAuthError(f"{domain} was uninstalled during refresh")
            if _needs_refresh(shop, rejected):  # still stale inside the lock: this one refreshes
                if not shop.refresh_token_enc:
                    raise ShopifyAuthError(f"{domain} has no refresh token")
                save_token(domain, self.refresh(shop), session=s)
                log.info("offline token refreshed", extra={"shop": domain})
            return crypto.decrypt(shop.access_token_enc), shop.access_token_expires_at


def tokens() -> TokenStore:
    """The current app's token store (made with its Shopify client, clients.shopify.init_app)."""
    return current_app.extensions[EXTENSION]


def install(session_token: SessionToken) -> Shop:
    """Exchange a shop's first session token and store the pair (TokenStore.install)."""
    return tokens().install(session_token)


def access_token(domain: str, *, rejected: str | None = None) -> str:
    """A valid access token for a shop (TokenStore.access_token)."""
    return tokens().access_token(domain, rejected=rejected)


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


def needs_token(shop: Shop | None) -> bool:
    """True when the shop has no token we can use or refresh."""
    if shop is None or not shop.installed:
        return True
    if shop.refresh_token_expires_at and shop.refresh_token_expires_at <= utcnow():
        return True
    return False


def _needs_refresh(shop: Shop | StoredToken, rejected: str | None) -> bool:
    if rejected is not None and crypto.decrypt(shop.access_token_enc) == rejected:
        return True
    return _near_expiry(shop.access_token_expires_at)


def _near_expiry(expires: datetime | None) -> bool:
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


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
