"""bench.merchant_day's traffic: a merchant's day as hourly profiles, the shops and exchanges set
up for it (half the shops on Shopify's legacy return workflow, half on the 2025-07 processing
workflow), and the schedule of one replayed window of the day.

Every order of the day gets an Ongoing "Order status is changed" notice at Sent (70% of the
shipping in two windows, 10-12 and 14-16), ~1% of orders come back at the 3PL's Returned code
(warehouse hours), and 2% of orders have an exchange: returns/approve in office hours, returns/
process for the processing workflow (Shopify sends it after Swapline's returnProcess), returns/
close later, and a Sent notice for the exchange order once Swapline has released it. Orders
Swapline does not run (foreign orders) are never created in the sandbox Ongoing: the app has no
reason to read them, only to recognise the notice as not its own."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlmodel import select

from bench.load import Delivery, ongoing_delivery
from bench.shops import EXCHANGE_SKU, RETURNED_SKU, TOKEN, Case, Shop, setup_shop
from clients.ongoing import OngoingClient, OngoingCredentials
from models import db
from models.settings import ShopSettings, apply, settings_of
from sandbox.ongoing.store import ORDER_RETURNED, SENT, THREE_PL_RETURNED, Order, set_order_status

HOUR = 3600.0
EXCHANGE_SHARE, RETURNED_SHARE = 0.02, 0.01  # of the day's orders
SHIPPING_WINDOWS, WINDOW_SHARE = (10, 11, 14, 15), 0.70  # hours starting each window hour
SHIPPING_HOURS = range(7, 20)  # the rest of the shipping, evenly
RETURNED_HOURS, OFFICE_HOURS = range(8, 17), range(8, 18)
FOREIGN_ID_BASE = 500_000_000  # Ongoing order ids of foreign orders: far from the sandbox's
# classes of webhooks, as reported
FOREIGN_SENT, FOREIGN_RETURNED = "foreign Sent", "foreign Returned"
APPROVE, PROCESS, CLOSE, EXCHANGE_SENT = ("returns/approve", "returns/process", "returns/close",
                                          "exchange Sent")
CLASSES = (FOREIGN_SENT, FOREIGN_RETURNED, APPROVE, PROCESS, CLOSE, EXCHANGE_SENT)


def profile(hours, share: float = 1.0, peaks=(), peak_share: float = 0.0) -> list[float]:
    """24 hourly weights summing to 1: `peak_share` over the `peaks` hours, the rest evenly
    over the other `hours`."""
    rest = [h for h in hours if h not in peaks]
    return [peak_share / len(peaks) if h in peaks else
            (share - peak_share) / len(rest) if h in rest else 0.0 for h in range(24)]


SENT_PROFILE = profile(SHIPPING_HOURS, peaks=SHIPPING_WINDOWS, peak_share=WINDOW_SHARE)
RETURNED_PROFILE = profile(RETURNED_HOURS)
OFFICE_PROFILE = profile(OFFICE_HOURS)


def share(weights: list[float], start: float, end: float) -> float:
    """The part of a profile's day inside [start, end) hours."""
    return sum(w * max(0.0, min(end, h + 1) - max(start, h)) for h, w in enumerate(weights))


def moment(rng: random.Random, weights: list[float], start: float, end: float) -> float:
    """A random time of day (seconds) in [start, end) hours, following the profile (evenly when
    it is empty there)."""
    parts = [(max(start, h), min(end, h + 1), w) for h, w in enumerate(weights)
             if min(end, h + 1) > max(start, h)]
    mass = [(b - a) * w for a, b, w in parts]
    a, b, _ = rng.choices(parts, weights=mass if sum(mass) else None)[0]
    return rng.uniform(a, b) * HOUR


@dataclass(order=True)
class Event:
    at: float  # seconds of the day
    seq: int
    kind: str = field(compare=False)  # one of CLASSES
    shop: Shop = field(compare=False)
    ref: object = field(compare=False)  # a foreign order number, or the Case


def volumes(args) -> dict[str, int]:
    """Per shop, how many of each the window holds (orders by the Sent profile)."""
    orders = args.orders_per_day * share(SENT_PROFILE, args.start, args.end)
    return {"orders": round(orders), "exchanges": max(1, round(EXCHANGE_SHARE * orders)),
            "returned": round(RETURNED_SHARE * args.orders_per_day *
                              share(RETURNED_PROFILE, args.start, args.end))}


def schedule(args, shops: list[Shop], cases: list[Case]) -> list[Event]:
    """Every webhook of the window, in time order (exchange Sent: the earliest moment; it waits
    until Swapline has released the exchange order)."""
    rng, per, events = random.Random(args.seed), volumes(args), []
    start, end, span = args.start, args.end, args.end - args.start
    for k, shop in enumerate(shops):
        events += [Event(moment(rng, SENT_PROFILE, start, end), 0, FOREIGN_SENT, shop,
                         f"F{SENT}-{k}-{i}") for i in range(per["orders"])]
        events += [Event(moment(rng, RETURNED_PROFILE, start, end), 0, FOREIGN_RETURNED, shop,
                         f"F{ORDER_RETURNED}-{k}-{i}") for i in range(per["returned"])]
    by_domain = {s.domain: s for s in shops}
    for case in cases:
        shop = by_domain[case.shop]
        approve = moment(rng, OFFICE_PROFILE, start, start + 0.5 * span)
        close = approve + rng.uniform(0.1, 0.25) * span * HOUR
        events.append(Event(approve, 0, APPROVE, shop, case))
        if case.workflow == "processing":
            events.append(Event(approve + 0.02 * span * HOUR, 0, PROCESS, shop, case))
        events.append(Event(close, 0, CLOSE, shop, case))
        sent = moment(rng, SENT_PROFILE, min(close / HOUR + 0.05 * span, end - 0.01), end)
        events.append(Event(sent, 0, EXCHANGE_SENT, shop, case))
    events.sort(key=lambda e: e.at)
    for i, event in enumerate(events):
        event.seq = i
    return events


def foreign_delivery(shop: Shop, number: str, status: int) -> Delivery:
    """The notice Ongoing sends when an order Swapline does not run reaches `status` (shipped
    first, so a Returned one carries its old tracking as Ongoing's would)."""
    _, k, i = number.rsplit("-", 2)
    order = Order(FOREIGN_ID_BASE + int(k) * 1_000_000 + int(i), number,
                  {"goodsOwnerOrderId": number, "consigneeOrderNumber": None},
                  [{"ordered": 1, "picked": 0, "returned": 0}], 200)
    set_order_status(order, SENT)
    if status != SENT:
        set_order_status(order, status)
    return ongoing_delivery(shop.webhook_key, shop.account, order, TOKEN)


@dataclass
class DayCase(Case):
    workflow: str = "processing"
    closed_at: object = None  # when the returns/close was posted


def setup(args, shopify, ongoing) -> tuple[list[Shop], list[DayCase]]:
    """The shops (odd ones on the legacy workflow; every one with the 3PL's Returned code) and
    their exchanges, each with a Shopify order, its shipped original in Ongoing and an open
    return. Needs an app context."""
    per = volumes(args)["exchanges"]
    shops = [setup_shop(k, per, shopify, ongoing) for k in range(args.shops)]
    cases: list[DayCase] = []
    for k, shop in enumerate(shops):
        workflow = "legacy" if k % 2 else "processing"
        shopify.store.set_workflow(shop.domain, workflow)
        shop.account.add_order_status(*THREE_PL_RETURNED)
        with db.session() as s:
            row = s.exec(select(ShopSettings).where(
                ShopSettings.id == settings_of(shop.domain).id)).one()
            apply(row, {"order_status_returned": ORDER_RETURNED})
        client = OngoingClient(OngoingCredentials(
            "api", shop.account.warehouse, shop.account.goods_owner_id, shop.account.username,
            shop.account.password), url_template=ongoing.url_template)
        cases += [new_case(len(cases) + i, shop, client, shopify, ongoing, workflow)
                  for i in range(per)]
    return shops, cases


def new_case(n: int, shop: Shop, client, shopify, ongoing, workflow: str) -> DayCase:
    """One exchange to be: the Shopify order, its original shipped long ago, the open return."""
    order = shopify.store.create_order(shop.domain, items=[(RETURNED_SKU, 1)],
                                       capture_mode="authorization", name=f"#{1000 + n}")
    original = client.create_or_update_order({
        "orderNumber": str(1000 + n), "deliveryDate": "2026-11-01T00:00:00Z",
        "consignee": {"name": "A Customer", "address1": "Street 1", "postCode": "11122",
                      "city": "Stockholm", "countryCode": "SE"},
        "orderLines": [{"rowNumber": "1", "articleNumber": RETURNED_SKU, "numberOfItems": 1}]})
    ongoing.move_order(original["orderId"], SENT)
    ret = shopify.store.create_return(shop.domain, order["id"], returned=[(RETURNED_SKU, 1)],
                                      exchange=[(EXCHANGE_SKU, 1)])
    return DayCase(n, shop.domain, shop.account, order["id"], ret["id"], workflow=workflow)
