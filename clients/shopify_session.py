"""App Bridge session tokens: the verified token of a request and the shop it speaks for.

The signature, expiry and audience are checked by ShopifyApp (the client's `app`); what is left
here is Swapline's own check that `iss` and `dest` agree on one valid myshopify host."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


@dataclass(frozen=True)
class SessionToken:
    """A verified App Bridge session token."""

    shop: str  # full myshopify domain
    user_id: str | None
    token: str
    claims: dict


def shop_from_claims(claims: dict) -> str | None:
    """The shop domain when `iss` and `dest` agree on one valid myshopify host, else None."""
    dest = urlparse(str(claims.get("dest", ""))).hostname or ""
    iss = urlparse(str(claims.get("iss", "")))
    if not SHOP_DOMAIN.match(dest) or iss.hostname != dest or iss.path.rstrip("/") != "/admin":
        return None
    if not all(claims.get(k) for k in ("sub", "jti", "sid")):
        return None
    return dest


def session_token_of(result) -> SessionToken | None:
    """The session token of a passed ShopifyApp verification (`verify_app_home_req`), or None
    when its claims do not name one valid shop."""
    claims = result.id_token.claims
    domain = shop_from_claims(claims)
    if domain is None:
        return None
    return SessionToken(domain, result.user_id, result.id_token.token, claims)
