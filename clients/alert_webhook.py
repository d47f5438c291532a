"""The merchant's alert webhook: one signed JSON POST per alert message.

Signed like return events (DESIGN.md): `X-Swapline-Signature` is the hex HMAC-SHA256 of the raw
body with the shop's events secret. Redirects are not followed: a public URL must not bounce
our server to an internal one.
"""
from __future__ import annotations

import hashlib
import hmac
import json

import requests

SIGNATURE_HEADER = "X-Swapline-Signature"
TIMEOUT = (5, 10)  # connect, read


class WebhookError(Exception):
    """The alert webhook did not answer 2xx; the message says what it did."""


def signature(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body with the shop's events secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def post_alert(url: str, payload: dict, secret: str, *,
               session: requests.Session | None = None) -> int:
    """POST the payload, signed; the HTTP status of a 2xx answer, else WebhookError."""
    body = body_of(payload)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, secret),
               "User-Agent": "Swapline-Alerts"}
    try:
        response = (session or requests).post(url, data=body, headers=headers,
                                              timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise WebhookError(f"not reachable: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"answered HTTP {response.status_code}")
    return response.status_code
