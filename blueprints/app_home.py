"""The embedded pages: App Home and the bounce page; every view is verified with a session token."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, render_template, request

from blueprints.pages import PATCH_ID_TOKEN_PATH, embedded, request_input, respond
from clients.shopify import shopify
from jobs import exchange_rules
from models import db
from models.alert import stalled
from models.exchange_stats import overview
from models.settings import OPTIONAL_ORDER_CODES, settings_of

bp = Blueprint("app_home", __name__)
STALLED_LIMIT = 20  # the home page lists the longest stalled; the Exchanges list has them all


@bp.app_context_processor
def embedded_context() -> dict:
    settings = current_app.config["SETTINGS"]
    return {"api_key": settings.api_key,
            "sandbox_origin": settings.shopify_origin if settings.sandbox else None}


@bp.get("/")
@embedded
def home():
    """App Home: the setup checklist until every step is done, then the exchange overview."""
    checklist = setup_checklist(settings_of(g.shop.domain))
    stats, stuck = None, []
    if all(done for _, done, _ in checklist):
        with db.session() as s:
            stats = overview(g.shop.domain, exchange_rules.STATES, exchange_rules.NEEDS_ATTENTION,
                             session=s)
            stuck = stalled(g.shop.domain, session=s)
    return render_template("home.html", shop=g.shop, checklist=checklist, stats=stats,
                           stalled=stuck[:STALLED_LIMIT], stalled_total=len(stuck),
                           state_labels=exchange_rules.LABELS,
                           needs_attention=exchange_rules.NEEDS_ATTENTION)


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
    result = shopify().app.app_home_patch_id_token(request_input())
    if not result.ok:
        return respond(result.response)
    html = render_template("patch_id_token.html", shop=request.args.get("shop", ""),
                           reload=request.args.get("shopify-reload", ""))
    return Response(html, status=200, headers={**result.response.headers,
                                               "Content-Type": "text/html; charset=utf-8"})
