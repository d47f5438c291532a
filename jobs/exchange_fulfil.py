"""The fulfil step: Ongoing sent the parcel; Shopify fulfils the exchange item with its tracking."""
from __future__ import annotations

from clients import shopify_admin as shop_api
from clients.ongoing_accounts import client_for_shop
from jobs import carriers
from jobs.exchange_collect import collect
from jobs.exchange_rules import PARKED, NeedsAttention
from models.exchange import Exchange
from models.exchange_writes import note, stage
from models.money import money_text
from models.settings import settings_of
from models.types import utcnow


def fulfil(exchange: Exchange) -> str:
    """Ongoing sent it: make sure Shopify has the fulfillment order, release our hold, fulfil."""
    settings = settings_of(exchange.shop_domain)
    order = client_for_shop(settings).get_order(exchange.ongoing_order_id)
    tracking = tracking_of(order)
    if exchange.state == PARKED:
        note(exchange.id, "Sent before release", "the parcel left; fulfilling anyway",
              kind="warning")
    stage(exchange.id, sent_at=utcnow(), ongoing_status=order["orderInfo"]["orderStatus"]
          ["number"], tracking_number=tracking["number"], tracking_url=tracking["url"],
          tracking_company=tracking["company"])
    domain = exchange.shop_domain
    line_items = exchange.line_item_gids or _processed_line_items(exchange)
    fos = shop_api.fulfillment_orders(domain, exchange.order_gid, line_items)
    fo = shop_api.open_fulfillment_order(fos)
    if fo is None:
        if fos:  # everything of ours is fulfilled already (a re-run after Shopify said yes)
            return "already fulfilled in Shopify"
        raise no_fulfillment_order(exchange)
    fo = _clear_holds(exchange, fo, line_items)  # an ON_HOLD order offers no CREATE_FULFILLMENT
    if "CREATE_FULFILLMENT" not in {a["action"] for a in fo["supportedActions"]}:
        raise NeedsAttention("The exchange's fulfillment order belongs to a location Swapline "
                             "cannot fulfil (another fulfillment service).")
    fulfillment = shop_api.fulfil(domain, fo, line_items, tracking, settings.notify_customer)
    note(exchange.id, "Shopify fulfillmentCreate", f"tracking {tracking['number']}",
         fulfillment=fulfillment["id"], saving={
             "fulfillment_gid": fulfillment["id"], "fulfillment_order_gid": fo["id"],
             "fulfilled_at": utcnow()})
    return f"fulfilled with tracking {tracking['number']}"


def _processed_line_items(exchange: Exchange) -> list[str]:
    """The order line items of the exchange, processing the exchange items if create could not."""
    domain = exchange.shop_domain
    ret = shop_api.read_return(domain, exchange.return_gid)
    if any(n["unprocessedQuantity"] > 0 for n in ret["exchangeLineItems"]["nodes"]):
        ret = shop_api.process_exchange_items(domain, ret)
        note(exchange.id, "Shopify returnProcess", "exchange items processed", now=True)
    return shop_api.exchange_line_item_ids(ret)


def no_fulfillment_order(exchange: Exchange) -> NeedsAttention:
    """Processed exchange items without a fulfillment order: what the merchant presses in admin.

    Merchants report that returnProcess makes none for exchange items priced 0, while admin's
    "Process return" does (community.shopify.dev/t/33299); Retry then finds it."""
    return NeedsAttention(
        f"Shopify made no fulfillment order for the exchange items of return "
        f"{exchange.return_name} (it does this for exchange items priced 0), so Swapline can "
        f"neither hold nor fulfil them. In Shopify admin open Orders → {exchange.order_name}; "
        f"the return shows them under “Unreleased exchange items”: click “Process return” "
        f"there and confirm, then press Retry here.")


def tracking_of(order: dict) -> dict:
    """Waybill, URL and carrier from an Ongoing order (outbound tracking, not the return's);
    the carrier by Shopify's name when Shopify links it, else Ongoing's own name."""
    outbound = [t for t in order.get("tracking") or [] if not t.get("isReturn")]
    first = outbound[0] if outbound else {}
    parcels = [p for p in order.get("parcels") or [] if not p.get("isReturnParcel")]
    parcel_url = ((parcels[0].get("tracking") or {}) if parcels else {}).get("trackingUrl")
    transporter = order.get("transporter") or {}
    return {"number": first.get("waybill") or order["orderInfo"].get("wayBill"),
            "url": first.get("trackingUrl") or parcel_url,
            "company": carriers.shopify_company(transporter)
            or transporter.get("transporterName") or transporter.get("name")}


def _clear_holds(exchange: Exchange, fo: dict, line_items: list[str]) -> dict:
    """Release Swapline's hold and Shopify's AWAITING_RETURN_ITEMS; collect, then release any
    AWAITING_PAYMENT that Shopify did not lift itself."""
    domain = exchange.shop_domain
    ours = [h["id"] for h in shop_api.own_holds(fo)]
    returns = [h["id"] for h in fo["fulfillmentHolds"] if h["reason"] == "AWAITING_RETURN_ITEMS"]
    if ours or returns:
        fo = shop_api.release_holds(domain, fo, ours + returns)
        note(exchange.id, "Shopify fulfillmentOrderReleaseHold", f"{len(ours + returns)} released",
             now=True)
    if not _payment_holds(fo):
        return fo
    collect(exchange)
    fo = shop_api.open_fulfillment_order(
        shop_api.fulfillment_orders(domain, exchange.order_gid, line_items))
    if fo is None:
        raise NeedsAttention("Shopify has no open fulfillment order for the exchange items "
                             "after payment; see the order in Shopify admin.")
    return _release_payment_holds(exchange, fo)


def _payment_holds(fo: dict) -> list[str]:
    return [h["id"] for h in fo["fulfillmentHolds"] if h["reason"] == "AWAITING_PAYMENT"]


def _release_payment_holds(exchange: Exchange, fo: dict) -> dict:
    """No source says Shopify lifts AWAITING_PAYMENT once paid, so release it by id ourselves.

    Also when the balance is still unpaid (an invoice is out): the warehouse has already sent the
    parcel, so the hold no longer keeps goods back. Left in place it would hide the tracking from
    the customer, and once the invoice is paid Shopify (or the merchant) could open the order for
    another fulfilment integration to ship a second time. The unpaid balance stays on the order and
    the invoice keeps asking for it; the timeline says so."""
    held = _payment_holds(fo)
    if not held:
        return fo
    amount, currency = shop_api.outstanding(
        shop_api.order_payment(exchange.shop_domain, exchange.order_gid))
    fo = shop_api.release_holds(exchange.shop_domain, fo, held)
    if amount > 0:
        note(exchange.id, "Shopify fulfillmentOrderReleaseHold",
             f"AWAITING_PAYMENT released unpaid ({money_text(amount, currency)} {currency} "
             "outstanding): the parcel already left", kind="warning", now=True)
    else:
        note(exchange.id, "Shopify fulfillmentOrderReleaseHold", "AWAITING_PAYMENT released: paid",
             now=True)
    return fo
