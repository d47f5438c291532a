"""The embedded pages: App Home and the bounce page; every view is verified with a session token."""
from __future__ import annotations

import logging
from functools import wraps

from flask import Blueprint, Response, current_app, g, make_response, render_template, request

import logs
from clients.shopify import shopify
from clients.shopify_errors import ShopifyAuthError, ShopifyError
from clients.shopify_session import session_token_of
from clients.shopify_tokens import install, needs_token
from jobs.shops import enqueue_details_sync
from models import db
from models.settings import OPTIONAL_ORDER_CODES
from models.shop import get_shop

bp = Blueprint("app_home", __name__)
PATCH_ID_TOKEN_PATH = "/auth/patch-id-token"
log = logging.getLogger(__name__)


def _request_input() -> dict:
    return {"method": request.method, "headers": dict(request.headers), "url": request.url,
            "body": ""}


def _respond(res) -> Response:
    """Turn a shopifyapp `Res` into a Flask response, headers exactly as given."""
    return Response(res.body, status=res.status, headers=res.headers)


def _unauthorized(is_fetch: bool, result) -> Response:
    if is_fetch:
        return Response("Unauthorized", status=401,
                        headers={"X-Shopify-Retry-Invalid-Session-Request": "1"})
    return _respond(result.invalid_token_response)


def authenticate() -> tuple | Response:
    """Verify the request's session token; on the shop's first load exchange it for a token."""
    result = shopify().app.verify_app_home_req(_request_input(), PATCH_ID_TOKEN_PATH)
    if not result.ok:
        return _respond(result.response)
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


@bp.app_context_processor
def embedded_context() -> dict:
    settings = current_app.config["SETTINGS"]
    return {"api_key": settings.api_key,
            "sandbox_origin": settings.shopify_origin if settings.sandbox else None}


def render_page(page: str, partial: str, **context) -> str:
    """The whole page, or only its partial for an htmx request (boosted links get pages)."""
    if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        return render_template(partial, **context)
    return render_template(page, **context)


@bp.get("/")
@embedded
def home():
    """App Home: the setup checklist until every step is done, then the exchange overview."""
    from blueprints.exchanges import STATE_LABELS, STATES  # that module imports this one
    from models.exchange_stats import overview
    from models.settings import settings_of

    checklist = setup_checklist(settings_of(g.shop.domain))
    stats = None
    if all(done for _, done, _ in checklist):
        with db.session() as s:
            stats = overview(g.shop.domain, STATES, session=s)
    return render_template("home.html", shop=g.shop, checklist=checklist, stats=stats,
                           state_labels=STATE_LABELS)


def setup_checklist(row) -> list[tuple[str, bool, str]]:
    """(step, done, settings anchor) for the home page."""
    # A warehouse without a Returned order status (Ongoing's standard list) is set up too.
    statuses = [number for code, number in row.order_statuses().items()
                if code not in OPTIONAL_ORDER_CODES] + list(row.return_statuses().values())
    return [
        ("Connect to Ongoing (Authentication and API server)", row.connection_ok_at is not None,
         "auth"),
        ("Choose the warehouse", row.warehouse_id is not None, "warehouse"),
        ("Map the order and return-order status codes", None not in statuses,
         "statuses"),
        ("Set the webhook auth token", row.webhook_token_set, "webhook"),
        ("Receive the first Ongoing webhook", row.first_ongoing_webhook_at is not None,
         "webhook"),
    ]


@bp.get(PATCH_ID_TOKEN_PATH)
def patch_id_token():
    """The bounce page: App Bridge fetches a fresh id_token and reloads the original URL."""
    result = shopify().app.app_home_patch_id_token(_request_input())
    if not result.ok:
        return _respond(result.response)
    html = render_template("patch_id_token.html", shop=request.args.get("shop", ""),
                           reload=request.args.get("shopify-reload", ""))
    return Response(html, status=200, headers={**result.response.headers,
                                               "Content-Type": "text/html; charset=utf-8"})
