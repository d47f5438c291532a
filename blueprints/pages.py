"""What every embedded page shares: session-token verification (`embedded`) and rendering a
whole page or only its partial for htmx (`render_page`). Imported by each page blueprint."""
from __future__ import annotations

import logging
from functools import wraps

from flask import Response, g, make_response, render_template, request

import logs
from clients.shopify import shopify
from clients.shopify_errors import ShopifyAuthError, ShopifyError
from clients.shopify_session import session_token_of
from clients.shopify_tokens import install, needs_token
from jobs.shops import enqueue_details_sync
from models import db
from models.shop import get_shop

PATCH_ID_TOKEN_PATH = "/auth/patch-id-token"
log = logging.getLogger(__name__)


def request_input() -> dict:
    return {"method": request.method, "headers": dict(request.headers), "url": request.url,
            "body": ""}


def respond(res) -> Response:
    """Turn a shopifyapp `Res` into a Flask response, headers exactly as given."""
    return Response(res.body, status=res.status, headers=res.headers)


def _unauthorized(is_fetch: bool, result) -> Response:
    if is_fetch:
        return Response("Unauthorized", status=401,
                        headers={"X-Shopify-Retry-Invalid-Session-Request": "1"})
    return respond(result.invalid_token_response)


def authenticate() -> tuple | Response:
    """Verify the request's session token; on the shop's first load exchange it for a token."""
    result = shopify().app.verify_app_home_req(request_input(), PATCH_ID_TOKEN_PATH)
    if not result.ok:
        return respond(result.response)
    is_fetch = "Authorization" in request.headers
    token = session_token_of(result)
    if token is None:
        log.warning("session token with an invalid iss/dest pair refused")
        return _unauthorized(is_fetch, result)
    domain = token.shop
    logs.bind(shop=domain)  # unbound with the request's own context at teardown
    with db.session() as s:
        shop = get_shop(domain, session=s)
    if needs_token(shop):
        try:
            shop = install(token)
        except ShopifyAuthError:
            return _unauthorized(is_fetch, result)
        except ShopifyError as exc:
            log.warning("token exchange unavailable: %s", exc, extra={"shop": domain})
            return Response("Shopify is not reachable right now; please retry.", status=503)
        enqueue_details_sync(domain)
    return shop, result.response.headers


def embedded(view):
    """Decorator: the view runs with g.shop set, or the verification's own response is sent."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        outcome = authenticate()
        if isinstance(outcome, Response):
            return outcome
        g.shop, headers = outcome
        response = make_response(view(*args, **kwargs))
        response.headers.update(headers)  # CSP frame-ancestors and Link, exactly as given
        response.headers.add("Vary", "HX-Request")
        return response

    return wrapper


def render_page(page: str, partial: str, **context) -> str:
    """The whole page, or only its partial for an htmx request (boosted links get pages)."""
    if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        return render_template(partial, **context)
    return render_template(page, **context)
