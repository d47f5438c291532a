"""Never shipped twice: the merchant's own Shopify→Ongoing connector may import an exchange a
second time (reference/connector-risk.md). Create tags the Shopify order so the 3PL can filter
it out (`tag_order`); release first looks in Ongoing for another open order of the same customer
holding an exchange item (`check_before_release`) and stops there if it finds one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlmodel import select

from clients import shopify_admin as shop_api
from clients.ongoing import OngoingClient
from clients.shopify_errors import ShopifyGraphQLError, ShopifyRefusal
from jobs.exchange_rules import ACTIONS, RELEASE, RELEASE_IF_REQUESTED, NeedsAttention
from models import db
from models.alert import DOUBLE_SHIPMENT_PREFIX as DOUBLE_SHIPMENT  # the alert's condition
from models.exchange import Exchange, exchange_order_ids
from models.exchange_signal import ExchangeSignal
from models.exchange_writes import note
from models.settings import ShopSettings

# The source the Exchanges page gives its Release now button (blueprints/exchanges.py `act`).
RELEASE_NOW = f"merchant: {ACTIONS['release'].label}"
# (event, source) of the signal the lifecycle's runner is applying, as recorded (`applying`).
_APPLYING: ContextVar[tuple[str, str] | None] = ContextVar("swapline_applying", default=None)


@contextmanager
def applying(event: str, source: str) -> Iterator[None]:
    """The runner applies a signal recorded with this event and source (jobs/lifecycle.py):
    the guard below reads them here instead of from the database."""
    token = _APPLYING.set((event, source))
    try:
        yield
    finally:
        _APPLYING.reset(token)


def tag_order(exchange: Exchange, settings: ShopSettings) -> None:
    """Add the shop's exchange tag to the Shopify order (Shopify keeps a tag once).

    A refusal is a timeline warning, not a failed exchange: the tag only helps a connector that
    filters on it, the exchange is sound without it, and the check before release still guards
    against a second order. Throttling and outages are raised, so the step retries as usual."""
    tag = settings.exchange_tag
    try:
        shop_api.add_tags(exchange.shop_domain, exchange.order_gid, [tag])
    except (ShopifyRefusal, ShopifyGraphQLError) as exc:
        note(exchange.id, "Shopify tagsAdd", f"order not tagged {tag!r} ({exc}); a 3PL "
             "import that filters on the tag may pick this exchange up", kind="warning")
        return
    note(exchange.id, "Shopify tagsAdd", f"order tagged {tag}")


def released_by_merchant(exchange: Exchange) -> bool:
    """Whether the release being applied is the merchant's Release now: the signal this
    exchange's job is applying (taken, not done) came from that button, directly or kept
    until create finished. The runner hands the signal over (`applying`); read from the
    database only outside it."""
    event, source = _APPLYING.get() or _applying_signal(exchange)
    if event == RELEASE_IF_REQUESTED:
        source = exchange.release_reason or ""
    return event in (RELEASE, RELEASE_IF_REQUESTED) and source == RELEASE_NOW


def _applying_signal(exchange: Exchange) -> tuple[str, str]:
    """The exchange's latest signal taken and not done: the one its job is applying."""
    query = (select(ExchangeSignal.event, ExchangeSignal.source)
             .where(ExchangeSignal.exchange_id == exchange.id,
                    ExchangeSignal.done_at.is_(None), ExchangeSignal.attempts > 0)
             .order_by(ExchangeSignal.id.desc()).limit(1))
    with db.autocommit() as connection:  # one read: one round trip
        return tuple(connection.execute(query).first() or ("", ""))


def check_before_release(exchange: Exchange, client: OngoingClient,
                         settings: ShopSettings) -> None:
    """NeedsAttention when Ongoing holds another open order (below Sent, created since the
    exchange was detected) for the same customer with one of the exchange's items.

    Release now skips it: the merchant has decided to ship."""
    if released_by_merchant(exchange):
        note(exchange.id, "Connector check", "skipped: released by the merchant (Release now)")
        return
    orders = client.find_open_orders_since(exchange.created_at, exchange.skus,
                                           status_below=settings.order_status_sent)
    own_id, skus = exchange.ongoing_order_id, set(exchange.skus)
    own = next((o for o in orders if _id(o) == own_id), None) or client.get_order(own_id)
    same, suspects = None, []
    for order in orders:
        if _id(order) == own_id or not (items := sorted(skus & _skus(order))):
            continue
        same = same or same_customer(own.get("consignee"))  # our key once, not once per order
        if same(order.get("consignee")):
            suspects.append((order, items))
    exchanges = _exchange_orders(exchange, [_id(order) for order, _ in suspects])
    for order, items in suspects:
        if _id(order) in exchanges:
            continue
        info = order["orderInfo"]
        raise NeedsAttention(
            f"{DOUBLE_SHIPMENT} Ongoing order {info['orderNumber']} (created "
            f"{info.get('createdDate')}, status {info['orderStatus']['number']}) is for the same "
            f"customer and also holds {', '.join(items)}: your Shopify→Ongoing integration may "
            "have imported this exchange. Cancel one of the two orders in Ongoing, then press "
            "Retry; or press Release now to ship this one anyway.")
    note(exchange.id, "Connector check", f"no other open Ongoing order for this customer with "
         f"{', '.join(exchange.skus)} ({len(orders)} checked)")


def same_customer(ours: dict | None) -> Callable[[dict | None], bool]:
    """Whether a consignee is ours: same Ongoing customer number when both have one; else same
    name and post code. Compared without case or spaces. Our key is made once: the check
    compares it with every open order Ongoing returns (hundreds for a popular item)."""
    ours = ours or {}
    number = _plain(ours.get("customerNumber"))
    name, post_code = _plain(ours.get("name")), _plain(ours.get("postCode"))
    named = bool(name and post_code)

    def same(theirs: dict | None) -> bool:
        theirs = theirs or {}
        if number and (their_number := _plain(theirs.get("customerNumber"))):
            return their_number == number
        return named and _plain(theirs.get("name")) == name and \
            _plain(theirs.get("postCode")) == post_code

    return same


def _plain(value) -> str:
    return "".join(str(value or "").split()).casefold()


def _id(order: dict) -> int | None:
    return (order.get("orderInfo") or {}).get("orderId")


def _skus(order: dict) -> set[str]:
    return {(line.get("article") or {}).get("articleNumber")
            for line in order.get("orderLines") or []}


def _exchange_orders(exchange: Exchange, order_ids: list[int | None]) -> set[int]:
    """Those of the orders Swapline made for this shop's exchanges (a second exchange of the
    same customer is not a double shipment): one query, however many orders Ongoing returned."""
    ids = [order_id for order_id in order_ids if order_id is not None]
    if not ids:
        return set()
    with db.autocommit() as connection:  # one read: one round trip, no BEGIN and COMMIT
        return exchange_order_ids(exchange.shop_domain, ids, connection=connection)
