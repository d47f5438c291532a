"""The collect step: the order's outstanding balance, once: capture, vaulted card, or invoice.

Fulfilment never waits for it (the parcel already left); fulfil runs it early when Shopify holds
the exchange's fulfillment order for payment (AWAITING_PAYMENT)."""
from __future__ import annotations

from clients import shopify_admin as shop_api
from clients.shopify_errors import ShopifyAccessDenied, ShopifyUserError
from models import db
from models.exchange import Exchange
from models.exchange_writes import note, stage, update
from models.money import money_text
from models.shop import shop_grants

MANDATE_NOT_GRANTED = (
    "not tried, sending an invoice: the shop has not granted Swapline the payment-mandate "
    "permission (write_payment_mandate, which includes read_payment_mandate). The merchant "
    "approves it by opening Swapline in Shopify admin.")


def _charged(exchange: Exchange, amount, currency: str) -> bool:
    """Charge the order's vaulted card; False (noted) when there is none or the shop may not,
    e.g. `amount` off Plus, or the payment-mandate scope not granted."""
    mandates = _vaulted_cards(exchange)
    if not mandates:
        return False
    try:
        result = shop_api.charge_mandate(exchange.shop_domain, exchange.order_gid, mandates[0],
                                         f"swapline-exchange-{exchange.id}", amount, currency)
    except (ShopifyUserError, ShopifyAccessDenied) as exc:
        note(exchange.id, "Shopify vaulted card", f"not allowed, sending an invoice: {exc}",
             kind="warning")
        return False
    update(exchange.id, payment_reference=result.get("paymentReferenceId"))
    return True


def _vaulted_cards(exchange: Exchange) -> list[str]:
    """The order's vaulted cards, asked only of a shop that granted the payment-mandate scope:
    Shopify refuses the question otherwise (ACCESS_DENIED), so it is not sent at all."""
    with db.autocommit_session() as s:  # one read: no BEGIN and COMMIT around it
        granted = shop_grants(exchange.shop_domain, "read_payment_mandate", session=s)
    if not granted:
        note(exchange.id, "Shopify vaulted card", MANDATE_NOT_GRANTED, kind="warning")
        return []
    try:
        return shop_api.vaulted_cards(exchange.shop_domain, exchange.order_gid)
    except ShopifyAccessDenied as exc:  # granted scopes changed since Swapline last heard
        note(exchange.id, "Shopify vaulted card", f"not allowed, sending an invoice: {exc}",
             kind="warning")
        return []


def collect(exchange: Exchange) -> str:
    """Collect the order's outstanding balance once: capture, vaulted card, or invoice."""
    domain = exchange.shop_domain
    if exchange.collection and exchange.collection != "invoice":
        return f"already collected ({exchange.collection})"  # during fulfil: AWAITING_PAYMENT
    payment = shop_api.order_payment(domain, exchange.order_gid)
    amount, currency = shop_api.outstanding(payment)
    if amount <= 0:
        if not exchange.collection:
            stage(exchange.id, collection="none")
        return "nothing left to collect"
    if exchange.collection == "invoice":  # fulfil sent it already: one per exchange
        return f"invoice sent: awaiting payment of {money_text(amount, currency)} {currency}"
    authorization = shop_api.open_authorization(payment)
    if authorization:
        tx, unsettled = authorization
        captured = min(amount, unsettled)
        shop_api.capture(domain, exchange.order_gid, tx["id"], captured, currency)
        method, collected = "captured", captured
    elif _charged(exchange, amount, currency):
        method, collected = "mandate", amount
    else:
        shop_api.send_invoice(domain, exchange.order_gid)
        method, collected = "invoice", None
    shown = money_text(amount, currency)
    note(exchange.id, f"Shopify payment ({method})", f"{shown} {currency}", saving={
        "balance": shown, "currency": currency, "collection": method,
        "collected_amount": money_text(collected, currency) if collected is not None else None})
    return "invoice sent: awaiting payment" if method == "invoice" else \
        f"{method} {money_text(collected, currency)} {currency}"
