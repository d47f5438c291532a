"""Payment mutations: orderCapture, orderCreateMandatePayment, orderInvoiceSend.

- orderCapture: the parent must be a successful, unexpired AUTHORIZATION of the order with enough
  unsettled amount; never more than that (userError). Authorizations are not multi-capturable, so
  after one capture nothing is left to capture (as with most gateways). Creates a CAPTURE and
  lowers totalOutstanding (a capture beyond the balance shows as a negative outstanding).
- orderCreateMandatePayment: a mandate of the order; one idempotencyKey charges once (a repeat
  returns the first payload and charges nothing); `amount` (Plus shops only) or, when null, the
  outstanding balance; completes at once (job done) as a SALE (autoCapture) or an AUTHORIZATION.
- orderInvoiceSend: records the invoice (to, amount); userError when there is no address to use.
"""
from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sandbox.graphql_fulfillment import user_error
from sandbox.graphql_views import order_view, transaction_view
from sandbox.shopify_store import Transaction, gid, money, next_id, now_iso, parse_gid, settle

MANDATE_ERROR = "ORDER_MANDATE_PAYMENT_ERROR_CODE"
INVOICE_ERROR = "ORDER_INVOICE_SEND_UNSUCCESSFUL"


def _amount(value) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def capture(store, shop, args: dict) -> dict:
    given = args["input"]
    order = shop.get("orders", given["id"], "Order")
    problem, parent, amount = _capture_problem(order, given)
    if problem:
        return {"transaction": None, "userErrors": [user_error(*problem)]}
    txn = Transaction(next_id(), "CAPTURE", amount, parent_id=parent.id)
    order.transactions.append(txn)
    parent.closed = True  # not multi-capturable: one capture settles the authorization
    settle(shop, order, amount)
    return {"transaction": transaction_view(order, txn), "userErrors": []}


def _capture_problem(order, given: dict) -> tuple[tuple | None, Transaction | None, Decimal]:
    if order is None:
        return ("Order does not exist.", ["input", "id"]), None, Decimal(0)
    number = parse_gid(given["parentTransactionId"], "OrderTransaction")
    parent = next((t for t in order.transactions if t.id == number), None)
    amount = _amount(given["amount"])
    if parent is None or parent.kind != "AUTHORIZATION" or parent.status != "SUCCESS":
        return ("Parent transaction must be a successful authorization of this order.",
                ["input", "parentTransactionId"]), None, Decimal(0)
    if parent.expires_at and parent.expires_at <= now_iso():
        return ("The authorization has expired.", ["input", "parentTransactionId"]), None, \
            Decimal(0)
    if amount is None or amount <= 0:
        return ("Amount must be greater than 0.", ["input", "amount"]), None, Decimal(0)
    if given.get("currency") and given["currency"] != order.currency:
        return (f"Currency must be the presentment currency {order.currency}.",
                ["input", "currency"]), None, Decimal(0)
    capturable = order.unsettled(parent)
    if amount > capturable:
        return (f"Amount {money(amount)} is more than the capturable amount "
                f"{money(capturable)}.", ["input", "amount"]), None, Decimal(0)
    return None, parent, amount


def mandate_payment(store, shop, args: dict) -> dict:
    order = shop.get("orders", args["id"], "Order")
    if order is None:
        return _mandate_error("Order does not exist.", ["id"])
    key = args["idempotencyKey"]
    if key in order.mandate_payments:
        return {**order.mandate_payments[key], "_replay": True}
    if parse_gid(args["mandateId"], "PaymentMandate") not in order.mandate_ids:
        return _mandate_error("Payment mandate does not exist on this order.", ["mandateId"])
    given = args.get("amount")
    if given is not None and not shop.plus:
        return _mandate_error("The amount argument is only available to Shopify Plus stores.",
                              ["amount"])
    amount = order.outstanding if given is None else _amount(given["amount"])
    if given is not None and given["currencyCode"] != order.currency:
        return _mandate_error(f"Currency must be {order.currency}.", ["amount", "currencyCode"])
    if amount is None or amount <= 0:
        return _mandate_error("Nothing to charge: the amount must be greater than 0.",
                              ["amount"])
    auto_capture = args.get("autoCapture") is not False
    txn = Transaction(next_id(), "SALE" if auto_capture else "AUTHORIZATION", amount)
    order.transactions.append(txn)
    if auto_capture:
        settle(shop, order, amount)
    payload = {"job": {"__typename": "Job", "id": gid("Job", next_id()), "done": True},
               "paymentReferenceId": f"pr_{secrets.token_hex(8)}", "userErrors": []}
    order.mandate_payments[key] = {**payload, "_amount": money(amount),
                                   "_transaction": gid("OrderTransaction", txn.id)}
    return payload


def _mandate_error(message: str, field: list[str]) -> dict:
    return {"job": None, "paymentReferenceId": None,
            "userErrors": [user_error(message, field, MANDATE_ERROR)]}


def invoice_send(store, shop, args: dict) -> dict:
    order = shop.get("orders", args["id"], "Order")
    if order is None:
        return {"order": None, "userErrors": [user_error("Order does not exist.", ["id"],
                                                         INVOICE_ERROR)]}
    to = (args.get("email") or {}).get("to") or order.email
    if not to:
        return {"order": None, "userErrors": [user_error(
            "The order has no email address to send the invoice to.", ["id"], INVOICE_ERROR)]}
    order.invoices.append({"to": to, "amount": money(order.outstanding),
                           "currency": order.currency,
                           "sent_at": datetime.now(UTC).isoformat(timespec="seconds")})
    return {"order": order_view(shop, order), "userErrors": []}
