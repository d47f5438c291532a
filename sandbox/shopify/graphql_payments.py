"""Payment mutations: orderCapture, orderCreateMandatePayment, orderInvoiceSend.

Refusals use live Shopify 2026-04 wording (recordings named in tests/test_conformance_payments.py).
- orderCapture: the parent must be a successful, unexpired AUTHORIZATION of the order with enough
  unsettled amount; never more than that (userError). Authorizations are not multi-capturable, so
  after one capture nothing is left to capture (as with most gateways). Creates a CAPTURE and
  lowers totalOutstanding (a capture beyond the balance shows as a negative outstanding).
- orderCreateMandatePayment: a mandate of the order; one idempotencyKey charges once (a repeat
  returns the first payload and charges nothing); `amount` (Plus shops only) or, when null, the
  outstanding balance; completes at once (job done) as a SALE (autoCapture) or an AUTHORIZATION.
- orderInvoiceSend: records the invoice (to, amount); userError when there is no address to use
  or `email.to` is not an address.
"""
from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sandbox.shopify.graphql_fulfillment import user_error
from sandbox.shopify.graphql_views import order_view, transaction_view
from sandbox.shopify.store import Transaction, gid, money, next_id, now_iso, parse_gid, settle

MANDATE_ERROR = "ORDER_MANDATE_PAYMENT_ERROR_CODE"
INVOICE_ERROR = "ORDER_INVOICE_SEND_UNSUCCESSFUL"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    """The first userError with live Shopify's wording (most have no field), or the parent."""
    if order is None:
        return ("Order does not exist.", ["input", "id"]), None, Decimal(0)
    number = parse_gid(given["parentTransactionId"], "OrderTransaction")
    parent = next((t for t in order.transactions if t.id == number), None)
    amount = _amount(given["amount"])
    if parent is None or parent.kind != "AUTHORIZATION" or parent.status != "SUCCESS":
        return ("Unable to find parent transaction", None), None, Decimal(0)
    if given.get("currency") and given["currency"] != order.currency:
        # Live: also when omitted on a multi-currency order; sandbox orders have one currency.
        return (f"Currency Currency must match parent transaction {order.currency}",
                ["currency"]), None, Decimal(0)
    if amount is None or amount <= 0:
        return ("Amount must be greater than zero for capture transactions", None), None, \
            Decimal(0)
    if parent.expires_at and parent.expires_at <= now_iso():
        return ("The authorization has expired.", ["input", "parentTransactionId"]), None, \
            Decimal(0)
    capturable = order.unsettled(parent)
    if amount > capturable:
        return (f"Cannot capture more than the authorized {money(capturable)} for this payment.",
                None), None, Decimal(0)
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
    problem = "No recipient email address was provided" if not to else \
        "To is invalid" if not EMAIL.match(to) else None
    if problem:
        return {"order": None, "userErrors": [user_error(problem, None, INVOICE_ERROR)]}
    order.invoices.append({"to": to, "amount": money(order.outstanding),
                           "currency": order.currency,
                           "sent_at": datetime.now(UTC).isoformat(timespec="seconds")})
    return {"order": order_view(shop, order), "userErrors": []}
