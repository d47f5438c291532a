"""Handlers of Shopify webhook topics, one function per topic; HANDLERS is the dispatch table."""
from __future__ import annotations

import json
import logging

from sqlmodel import delete, select

from jobs import exchange_triggers
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange
from models.shop import Shop, forget_tokens, get_shop
from models.types import utcnow

log = logging.getLogger(__name__)


class PayloadError(ValueError):
    """A verified payload that does not carry what its topic promises."""


def _payload(delivery: WebhookDelivery) -> dict:
    data = json.loads(delivery.payload)
    if not isinstance(data, dict):
        raise PayloadError(f"{delivery.topic} payload is not an object")
    return data


def _signed_domain(delivery: WebhookDelivery, data: dict, key: str) -> str:
    """The shop named inside the signed body; it must match the (unsigned) shop header."""
    domain = data.get(key)
    if domain != delivery.shop_domain:
        raise PayloadError(f"{delivery.topic}: body names {domain!r}, header another shop")
    return domain


def app_uninstalled(delivery: WebhookDelivery) -> str:
    """app/uninstalled: forget the shop's tokens so nothing usable stays behind."""
    domain = _signed_domain(delivery, _payload(delivery), "myshopify_domain")
    with db.session() as s:
        shop = get_shop(domain, session=s)
        if shop is None:
            return "unknown shop"
        forget_tokens(shop)
    return "tokens forgotten"


def app_scopes_update(delivery: WebhookDelivery) -> str:
    """app/scopes_update: store the scopes the shop grants now (its `current` list)."""
    data = _payload(delivery)
    current = data.get("current")
    if isinstance(current, str):  # tolerate a comma-separated string as well as a list
        current = current.split(",")
    if not isinstance(current, list) or not all(isinstance(s, str) for s in current):
        raise PayloadError("app/scopes_update payload has no `current` scope list")
    with db.session() as s:
        shop = get_shop(delivery.shop_domain, session=s)
        if shop is None:
            return "unknown shop"
        shop.scopes = ",".join(sorted({c.strip() for c in current if c.strip()}))
        shop.updated_at = utcnow()
    return f"scopes now {shop.scopes or '(none)'}"


def customers_data_request(delivery: WebhookDelivery) -> str:
    """customers/data_request: report which stored rows mention the customer's orders."""
    data = _payload(delivery)
    _signed_domain(delivery, data, "shop_domain")
    found = _rows_for_orders(delivery.shop_domain, data.get("orders_requested") or [])
    log.info("data request %s: %d stored deliveries mention the customer's orders",
             data.get("data_request", {}).get("id"), len(found))
    return f"{len(found)} rows found"


def customers_redact(delivery: WebhookDelivery) -> str:
    """customers/redact: delete the stored rows that mention the customer's orders."""
    data = _payload(delivery)
    _signed_domain(delivery, data, "shop_domain")
    ids = [i for i in _rows_for_orders(delivery.shop_domain, data.get("orders_to_redact") or [])
           if i != delivery.id]
    with db.session() as s:
        s.exec(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return f"{len(ids)} rows deleted"


def shop_redact(delivery: WebhookDelivery) -> str:
    """shop/redact: delete every row of the shop (48 h after uninstall, per Shopify)."""
    domain = _signed_domain(delivery, _payload(delivery), "shop_domain")
    with db.session() as s:
        s.exec(delete(WebhookDelivery).where(WebhookDelivery.shop_domain == domain))
        s.exec(delete(Exchange).where(Exchange.shop_domain == domain))
        s.exec(delete(Shop).where(Shop.domain == domain))
    return "shop deleted"


def _rows_for_orders(domain: str, order_ids: list) -> list[int]:
    """Ids of the shop's deliveries whose payload names one of the orders."""
    numbers = [int(i) for i in order_ids if str(i).isdigit()]
    needles = [n for i in numbers for n in (f"gid://shopify/Order/{i}\"", f'"order_id": {i},',
                                            f'"order_id": {i}}}', f'"order_id":{i},')]
    if not needles:
        return []
    with db.session() as s:
        rows = s.exec(select(WebhookDelivery.id, WebhookDelivery.payload)
                      .where(WebhookDelivery.shop_domain == domain))
        return [row_id for row_id, payload in rows if any(n in payload for n in needles)]


HANDLERS = {
    "app/uninstalled": app_uninstalled,
    "app/scopes_update": app_scopes_update,
    "customers/data_request": customers_data_request,
    "customers/redact": customers_redact,
    "shop/redact": shop_redact,
    "returns/approve": exchange_triggers.detect,
    "returns/update": exchange_triggers.return_updated,
    "returns/process": exchange_triggers.detect,
    "returns/close": exchange_triggers.return_closed,
    "returns/cancel": exchange_triggers.return_cancelled,
    "returns/decline": exchange_triggers.return_cancelled,
    "returns/reopen": exchange_triggers.return_reopened,
}
