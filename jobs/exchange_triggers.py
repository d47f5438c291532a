"""What Shopify's return webhooks mean for exchanges: detection from a Shopify return, and the
events (release, cancel, return_updated) its later webhooks carry. Ongoing's webhooks and return
events are handled in jobs/event_topics.py."""
from __future__ import annotations

import json

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from clients import shopify_admin as shop_api
from jobs.exchange_rules import CANCEL, CREATE, DETECTED, RELEASE, RETURN_UPDATED
from jobs.lifecycle import signal
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange, find_by_return, mark_once, note
from models.settings import settings_of


def _return_gid(payload: dict) -> str | None:
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid.startswith("gid://shopify/Return/"):
        return gid
    return f"gid://shopify/Return/{payload['id']}" if str(payload.get("id", "")).isdigit() \
        else None


def detect(delivery: WebhookDelivery) -> str:
    """returns/approve|update|process: re-read the return; an open one with exchange items
    becomes an Exchange (once) and its create step is queued."""
    domain, gid = delivery.shop_domain, _return_gid(json.loads(delivery.payload))
    if gid is None:
        return "no return id in the payload"
    with db.session() as s:
        known = find_by_return(domain, gid, session=s)
    if known:
        note(known.id, f"webhook {delivery.topic}", "already known", kind="webhook")
        return "exchange already known"
    ret = shop_api.read_return(domain, gid)
    if ret is None or ret["status"] != "OPEN" or not ret["exchangeLineItems"]["nodes"]:
        return "not an open return with exchange items"
    exchange = _new_exchange(domain, ret)
    if exchange is None:
        return "exchange already known"
    note(exchange.id, f"webhook {delivery.topic}", "exchange detected", kind="webhook")
    signal(exchange.id, CREATE, shop=domain, source=delivery.topic, now=True)
    return f"exchange {exchange.id} detected"


def _new_exchange(domain: str, ret: dict) -> Exchange | None:
    nodes = ret["exchangeLineItems"]["nodes"]
    variants = shop_api.variants(domain, [n["variantId"] for n in nodes if n["variantId"]])
    items = [{"exchange_line_item_id": n["id"], "variant_id": n["variantId"],
              "sku": variants.get(n["variantId"], {}).get("sku") or
              (n["lineItems"][0]["sku"] if n["lineItems"] else None),
              "price": variants.get(n["variantId"], {}).get("price"),
              "title": variants.get(n["variantId"], {}).get("displayName"),
              "quantity": n["processedQuantity"] + n["unprocessedQuantity"]} for n in nodes
             if n["processedQuantity"] + n["unprocessedQuantity"] > 0]
    returned = [{"return_line_item_id": n["id"], "quantity": n["quantity"],
                 "sku": n["fulfillmentLineItem"]["lineItem"]["sku"]}
                for n in ret["returnLineItems"]["nodes"] if n.get("fulfillmentLineItem")]
    workflow = "legacy" if any(n["lineItems"] for n in nodes) else "processing"
    order = ret["order"]
    prefix = settings_of(domain).order_number_prefix
    try:
        with db.session() as s:
            count = len(s.exec(select(Exchange.id).where(Exchange.shop_domain == domain,
                                                         Exchange.order_gid == order["id"])).all())
            exchange = Exchange(shop_domain=domain, state=DETECTED, return_gid=ret["id"],
                                return_name=ret["name"],
                                order_gid=order["id"], order_name=order["name"], items=items,
                                returned_items=returned, workflow=workflow,
                                ongoing_order_number=f"{prefix}-{order['name'].lstrip('#')}-"
                                                     f"{count + 1}")
            s.add(exchange)
        return exchange
    except IntegrityError:  # the same return detected twice at once: the other one won
        return None


def _signal_return(delivery: WebhookDelivery, event: str) -> str:
    gid = _return_gid(json.loads(delivery.payload))
    with db.session() as s:
        exchange = find_by_return(delivery.shop_domain, gid, session=s) if gid else None
    if exchange is None:
        return "no exchange for this return"
    note(exchange.id, f"webhook {delivery.topic}", event, kind="webhook")
    signal(exchange.id, event, shop=delivery.shop_domain, source=delivery.topic, now=True)
    return f"{event} queued for exchange {exchange.id}"


def return_closed(delivery: WebhookDelivery) -> str:
    """returns/close: a close signal releases with or without Instant Exchange."""
    gid = _return_gid(json.loads(delivery.payload))
    with db.session() as s:
        exchange = find_by_return(delivery.shop_domain, gid, session=s) if gid else None
    if exchange is not None:  # the "return not booked in" alert counts from here
        mark_once(exchange.id, "return_closed_at")
    return _signal_return(delivery, RELEASE)


def return_cancelled(delivery: WebhookDelivery) -> str:
    """returns/cancel and returns/decline: cancel the exchange unless picking started."""
    return _signal_return(delivery, CANCEL)


def return_updated(delivery: WebhookDelivery) -> str:
    """returns/update: a known exchange re-reads its return (exchange items may have been
    removed); an unknown return may be one to detect."""
    gid = _return_gid(json.loads(delivery.payload))
    with db.session() as s:
        known = find_by_return(delivery.shop_domain, gid, session=s) if gid else None
    if known is None:
        return detect(delivery)
    return _signal_return(delivery, RETURN_UPDATED)


def return_reopened(delivery: WebhookDelivery) -> str:
    """returns/reopen: only noted; a released exchange stays released."""
    gid = _return_gid(json.loads(delivery.payload))
    with db.session() as s:
        exchange = find_by_return(delivery.shop_domain, gid, session=s) if gid else None
    if exchange:
        note(exchange.id, "webhook returns/reopen", "noted", kind="webhook")
    return "noted"
