"""The Exchanges pages: the list, one exchange with its live status, the merchant's buttons."""
from __future__ import annotations

import json
import logging
from datetime import datetime

from flask import Blueprint, abort, g, render_template, request
from sqlalchemy import case, func
from sqlmodel import select

from blueprints.pages import embedded, render_page
from jobs import carriers
from jobs import exchange_rules as rules
from jobs.lifecycle import signal
from models import db
from models.alert import Stalled, label, open_alerts, stalled
from models.exchange import Exchange, ExchangeEvent, timeline
from models.settings import settings_of
from models.types import utcnow

bp = Blueprint("exchanges", __name__, url_prefix="/exchanges")
log = logging.getLogger(__name__)
LIST_LIMIT = 200
STATUS_PARTIAL = "_partials/exchange_status.html"
QUEUE_DOWN = ("Saved, but Swapline's job queue is not reachable right now: this runs by itself "
              "within a few minutes of the queue coming back. No need to press again.")


def get_exchange(exchange_id: int) -> Exchange:
    """The current shop's exchange, or 404 (another shop's exchange does not exist here)."""
    query = select(Exchange).where(Exchange.id == exchange_id,
                                   Exchange.shop_domain == g.shop.domain)
    with db.session() as s:
        exchange = s.exec(query).first()
    if exchange is None or exchange.shop_domain != g.shop.domain:
        abort(404)
    return exchange


@bp.get("")
@embedded
def index():
    """The shop's exchanges: needs attention first, then open, then done; filter by state, or
    the stalled ones (an open stalled alert, longest stalled first)."""
    state = request.args.get("state")
    state = state if state in rules.STATES else None
    only_stalled = request.args.get("stalled") == "1" and state is None
    counts = state_counts()
    with db.session() as s:
        stuck = stalled(g.shop.domain, session=s)
    alerts = stalled_by_exchange(stuck)
    rows = [found[0].exchange for found in alerts.values()] if only_stalled \
        else list_exchanges(state)
    total = len(alerts) if only_stalled else \
        counts.get(state, 0) if state else sum(counts.values())
    return render_page("exchanges.html", "_partials/exchange_rows.html", state=state,
                       only_stalled=only_stalled, rows=rows[:LIST_LIMIT], counts=counts,
                       stalled_count=len(alerts), alerts=alerts, total=total,
                       states=rules.STATES, limit=LIST_LIMIT)


def stalled_by_exchange(stuck: list[Stalled]) -> dict[int, list[Stalled]]:
    """The open stalled alerts by exchange id (one exchange may be stalled two ways)."""
    found: dict[int, list[Stalled]] = {}
    for row in stuck:
        found.setdefault(row.exchange.id, []).append(row)
    return found


@bp.get("/<int:exchange_id>")
@embedded
def show(exchange_id: int):
    """One exchange: ids, tracking, money, its timeline and the buttons, updated live."""
    exchange = get_exchange(exchange_id)
    return render_page("exchange.html", STATUS_PARTIAL, **detail(exchange))


@bp.get("/<int:exchange_id>/status")
@embedded
def status(exchange_id: int):
    """The polled status block; 204 (nothing swapped) while the exchange has not changed."""
    exchange = get_exchange(exchange_id)
    context = detail(exchange)
    if request.args.get("v") == context["version"]:
        return "", 204
    return render_template(STATUS_PARTIAL, moved=True, **context)


@bp.post("/<int:exchange_id>/<any(retry, release, 'in-transit', cancel):action>")
@embedded
def act(exchange_id: int, action: str):
    """A merchant's button: queue the event; the lifecycle decides whether it applies."""
    exchange = get_exchange(exchange_id)
    chosen = rules.ACTIONS[action]
    if not signal(exchange.id, chosen.event, shop=g.shop.domain,
                  source=f"merchant: {chosen.label}"):
        return render_template(STATUS_PARTIAL, **detail(exchange, problem=QUEUE_DOWN))
    return render_template(STATUS_PARTIAL, **detail(exchange, message=chosen.done))


def list_exchanges(state: str | None) -> list[Exchange]:
    """Up to LIST_LIMIT of the shop's exchanges, in the order the list shows them."""
    rank = case((Exchange.state == rules.NEEDS_ATTENTION, 0),
                (Exchange.state.in_(rules.FINAL_STATES), 2), else_=1)
    query = select(Exchange).where(Exchange.shop_domain == g.shop.domain)
    if state:
        query = query.where(Exchange.state == state)
    query = query.order_by(rank, Exchange.updated_at.desc(), Exchange.id.desc()).limit(LIST_LIMIT)
    with db.session() as s:
        return list(s.exec(query))


def state_counts() -> dict[str, int]:
    """How many of the shop's exchanges are in each state."""
    query = select(Exchange.state, func.count()).where(Exchange.shop_domain == g.shop.domain) \
        .group_by(Exchange.state)
    with db.session() as s:
        return dict(s.exec(query).all())


def detail(exchange: Exchange, *, message: str = "", problem: str = "") -> dict:
    """Everything the exchange page and its status block show."""
    with db.session() as s:
        events = timeline(exchange.id, session=s)
        alerts = [(label(a.condition), a) for a in open_alerts(exchange.id, session=s)]
    instant = settings_of(exchange.shop_domain).instant_exchange
    actions = [(name, action) for name, action in rules.ACTIONS.items()
               if rules.offered(name, exchange.state, exchange.attention_step,
                                sent=exchange.sent_at is not None, instant_exchange=instant)]
    last = events[-1].id if events else 0
    return {"exchange": exchange, "events": [(e, _source(e)) for e in reversed(events)],
            "actions": actions, "polling": exchange.state in rules.LIVE_STATES,
            "version": f"{exchange.updated_at.timestamp():.6f}-{last}",
            "tracking_href": _web_url(exchange.tracking_url), "instant_exchange": instant,
            "tracking_linked": bool(exchange.tracking_url)
            or carriers.linked(exchange.tracking_company),
            "alerts": alerts, "message": message, "problem": problem}


def _source(event: ExchangeEvent) -> str:
    """Who or what caused a timeline line (a webhook topic, the merchant's button)."""
    try:
        return str(json.loads(event.detail or "{}").get("source") or "")
    except (ValueError, AttributeError):
        return ""


def _web_url(url: str | None) -> str | None:
    """A tracking URL comes from the warehouse: link it only when it is plain http(s)."""
    return url if url and url.strip().lower().startswith(("https://", "http://")) else None


def age(created_at: datetime, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: '12 min', '3 h', '2 d'."""
    minutes = int(max(0, ((now or utcnow()) - created_at).total_seconds()) // 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else "< 1 min"
    return f"{minutes // 60} h" if minutes < 24 * 60 else f"{minutes // (24 * 60)} d"


def utc_text(moment: datetime | None) -> str:
    """A timestamp as the page shows it (UTC, to the minute)."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


@bp.app_context_processor  # App Home's lists use them too
def exchange_helpers() -> dict:
    return {"age": age, "utc_text": utc_text, "state_label": rules.label,
            "state_tone": rules.tone, "final_states": rules.FINAL_STATES,
            "needs_attention": rules.NEEDS_ATTENTION, "completed": rules.COMPLETED}
