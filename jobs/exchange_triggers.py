"""What Shopify's return webhooks mean for exchanges: detection from a Shopify return, and the
events (release, cancel, return_updated) its later webhooks carry. Ongoing's webhooks and return
events are handled in jobs/event_topics.py."""
from __future__ import annotations

import json

from sqlalchemy import String, bindparam, cast, func, insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from clients import shopify_admin as shop_api
from jobs.exchange_rules import CANCEL, CREATE, DETECTED, RELEASE, RETURN_UPDATED
from jobs.lifecycle import signal
from models import db
from models.delivery import WebhookDelivery
from models.exchange import Exchange
from models.exchange_writes import line, note
from models.plain_sql import execute
from models.rows import new_values, unattached
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
    known = _exchange_id(domain, gid)
    if known:
        note(known, f"webhook {delivery.topic}", "already known", kind="webhook")
        return "exchange already known"
    ret = shop_api.read_return(domain, gid, hand_over=True)  # create, next in this job, reuses it
    if ret is None or ret["status"] != "OPEN" or not ret["exchangeLineItems"]["nodes"]:
        return "not an open return with exchange items"
    exchange = _new_exchange(domain, ret)
    if exchange is None:
        return "exchange already known"
    signal(exchange.id, CREATE, shop=domain, source=delivery.topic, now=True,
           lines=[line(exchange.id, "webhook", f"webhook {delivery.topic}", "exchange detected")],
           delivery_id=delivery.id)
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
    values = new_values(Exchange, shop_domain=domain, state=DETECTED, return_gid=ret["id"],
                        return_name=ret["name"], order_gid=order["id"], order_name=order["name"],
                        items=items, returned_items=returned, workflow=workflow)
    try:
        with db.transaction() as connection:
            if connection.dialect.name == "postgresql":
                execute(connection, _ORDER_LOCK, {"key": f"{domain} {order['id']}"})
            values["id"], values["ongoing_order_number"] = execute(connection, _INSERT, {
                **values, "c_domain": domain, "c_order_gid": order["id"],
                "c_number": f"{prefix}-{order['name'].lstrip('#')}-"}, columns=True).first()
    except IntegrityError:  # the same return detected twice at once: the other one won
        return None
    return unattached(Exchange, values, persistent=True)


# Built once (Core, no ORM session and flush): the new exchange's row, its Ongoing order
# number ending in one more than the shop's exchanges of the order so far, counted in the
# INSERT (the unique return still refuses a second detection of the same one). Two returns of
# one order detected at once would count the same (each statement reads its own snapshot) and
# share one Ongoing order, which PUT /orders upserts by number: on PostgreSQL the INSERT waits
# for a transaction lock on the shop's order, so its snapshot, taken after the wait, counts the
# other's row. SQLite runs one writer at a time: its INSERT counts what the last one wrote.
_ORDER_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
_COUNT = select(func.count() + 1).select_from(Exchange.__table__).where(
    Exchange.__table__.c.shop_domain == bindparam("c_domain"),
    Exchange.__table__.c.order_gid == bindparam("c_order_gid")).scalar_subquery()
_INSERT = insert(Exchange.__table__).values(
    ongoing_order_number=bindparam("c_number", type_=String) + cast(_COUNT, String)) \
    .returning(Exchange.__table__.c.id, Exchange.__table__.c.ongoing_order_number)


def _exchange_id(domain: str, gid: str | None) -> int | None:
    """The id of the shop's exchange for a Shopify return (one indexed read of one column)."""
    if gid is None:
        return None
    with db.autocommit() as connection:
        return execute(connection, _BY_RETURN, {"domain": domain, "gid": gid}).scalar()


_BY_RETURN = select(Exchange.__table__.c.id).where(
    Exchange.__table__.c.shop_domain == bindparam("domain"),
    Exchange.__table__.c.return_gid == bindparam("gid"))


def _signal_return(delivery: WebhookDelivery, event: str, *, moment: str | None = None,
                   exchange_id: int | None = None) -> str:
    """Signal `event` to the return's exchange, with the webhook's timeline line (and `moment`
    set once) in the signal's transaction."""
    exchange_id = exchange_id or _exchange_id(delivery.shop_domain,
                                              _return_gid(json.loads(delivery.payload)))
    if exchange_id is None:
        return "no exchange for this return"
    signal(exchange_id, event, shop=delivery.shop_domain, source=delivery.topic, now=True,
           lines=[line(exchange_id, "webhook", f"webhook {delivery.topic}", event)],
           moment=moment, delivery_id=delivery.id)
    return f"{event} queued for exchange {exchange_id}"


def return_closed(delivery: WebhookDelivery) -> str:
    """returns/close: a close signal releases with or without Instant Exchange; the "return not
    booked in" alert counts from here."""
    return _signal_return(delivery, RELEASE, moment="return_closed_at")


def return_cancelled(delivery: WebhookDelivery) -> str:
    """returns/cancel and returns/decline: cancel the exchange unless picking started."""
    return _signal_return(delivery, CANCEL)


def return_updated(delivery: WebhookDelivery) -> str:
    """returns/update: a known exchange re-reads its return (exchange items may have been
    removed); an unknown return may be one to detect."""
    known = _exchange_id(delivery.shop_domain, _return_gid(json.loads(delivery.payload)))
    if known is None:
        return detect(delivery)
    return _signal_return(delivery, RETURN_UPDATED, exchange_id=known)


def return_reopened(delivery: WebhookDelivery) -> str:
    """returns/reopen: only noted; a released exchange stays released."""
    exchange_id = _exchange_id(delivery.shop_domain, _return_gid(json.loads(delivery.payload)))
    if exchange_id:
        note(exchange_id, "webhook returns/reopen", "noted", kind="webhook")
    return "noted"
