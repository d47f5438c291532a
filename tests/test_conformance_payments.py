"""orderCapture, orderCreateMandatePayment and orderInvoiceSend answer like live Shopify 2026-04.

Every test names the recording it replays (under conformance.RECORDINGS) and drives the sandbox
with Swapline's own documents (OrderPayment, OrderCapture, OrderCreateMandatePayment,
OrderInvoiceSend); where Swapline's document does not select a recorded field (a userError's
code) or send a recorded argument (email), the same operation is sent with that selection.
"""
from __future__ import annotations

from tests import conformance

live = conformance.live  # the fixture
INVOICE_WITH_EMAIL = """mutation OrderInvoiceSend($id: ID!, $email: EmailInput) {
  orderInvoiceSend(id: $id, email: $email) { order { id email } userErrors { field message code } }
}"""


def _authorized(live) -> tuple[dict, dict]:
    """An exchange owing 5.00 with the customer's card authorized for it: (order, the AUTH)."""
    order, ret = live.exchange("TS-L")
    live.process(ret)
    auth = live.data("OrderPayment", id=order["id"])["transactions"][-1]
    assert (auth["kind"], auth["status"]) == ("AUTHORIZATION", "SUCCESS")
    return order, auth


def _capture(live, order: dict, parent: str, amount: str, **extra) -> dict:
    return live.data("OrderCapture", input={"id": order["id"], "parentTransactionId": parent,
                                            "amount": amount, **extra})


def test_capture_refusals_have_the_recorded_wording(live):
    """payments/order-capture-validation.json (currencyMismatch, parentNotFound, invalidAmount,
    overCapture): messages as recorded, most without a field; nothing is captured by them."""
    order, auth = _authorized(live)
    refusals = {
        ("5.00", "USD", auth["id"]): (["currency"],
                                      "Currency Currency must match parent transaction EUR"),
        ("5.00", "EUR", "gid://shopify/OrderTransaction/999999999999999999"):
            (None, "Unable to find parent transaction"),
        ("0.00", "EUR", auth["id"]): (None, "Amount must be greater than zero for capture "
                                            "transactions"),
        ("99.99", "EUR", auth["id"]): (None, "Cannot capture more than the authorized 5.00 for "
                                             "this payment.")}
    for (amount, currency, parent), (field, message) in refusals.items():
        refused = _capture(live, order, parent, amount, currency=currency)
        assert refused == {"transaction": None, "userErrors": [{"field": field,
                                                                "message": message}]}
    state = live.store.order_state(live.shop, order["id"])
    assert [t["kind"] for t in state["transactions"]] == ["AUTHORIZATION", "CAPTURE",
                                                          "AUTHORIZATION"]
    assert state["total_outstanding"] == "5.00"


def test_capture_within_the_authorization_succeeds(live):
    """payments/order-capture-validation.json (postFinalCapture, singleCurrencyOmittedCurrency):
    a capture within the authorization is a successful CAPTURE; on a single-currency order the
    currency may be omitted. Swapline always sends the presentment currency."""
    order, auth = _authorized(live)
    done = _capture(live, order, auth["id"], "5.00")
    assert done["userErrors"] == []
    assert (done["transaction"]["kind"], done["transaction"]["status"]) == ("CAPTURE", "SUCCESS")
    assert done["transaction"]["amountSet"]["presentmentMoney"]["currencyCode"] == "EUR"
    payment = live.data("OrderPayment", id=order["id"])
    assert payment["totalOutstandingSet"]["presentmentMoney"]["amount"] == "0.0"


def test_a_mandate_payment_without_a_mandate_id_is_refused_before_it_runs(live):
    """payments/order-create-mandate-payment-validation.json (missingMandate): omitting mandateId
    fails schema validation with Shopify's wording, and nothing is charged. Swapline's document
    declares $mandateId: ID!, so it can never send that request."""
    order, ret = live.exchange("TS-L", capture_mode="vaulted")
    live.process(ret)
    query = ("mutation OrderCreateMandatePayment($id: ID!, $idempotencyKey: String!) { "
             "orderCreateMandatePayment(id: $id, idempotencyKey: $idempotencyKey) { "
             "paymentReferenceId userErrors { field message } } }")
    body = live.post("OrderCreateMandatePayment", query=query, id=order["id"],
                     idempotencyKey="missing-mandate")
    assert "data" not in body
    assert body["errors"][0]["message"].endswith(
        "Field 'orderCreateMandatePayment' is missing required arguments: mandateId")
    assert "$mandateId: ID!" in conformance.load_document("OrderCreateMandatePayment")
    assert live.store.order_state(live.shop, order["id"])["mandate_payments"] == []


def test_invoice_send_recipients(live):
    """orders/orderInvoiceSend-email-validation.json: an order without an email is refused
    ("No recipient email address was provided"), a malformed explicit `to` too ("To is invalid"),
    both without a field and with ORDER_INVOICE_SEND_UNSUCCESSFUL; an order with an email gets
    the invoice at that address (order-email-happy-path; orderInvoiceSend-parity.json)."""
    silent = live.store.create_order(live.shop, items=[("TS-M", 1)], email=None,
                                     capture_mode="none")
    for variables, message in (({}, "No recipient email address was provided"),
                               ({"email": {"to": "not an email"}}, "To is invalid")):
        body = live.post("OrderInvoiceSend", query=INVOICE_WITH_EMAIL, id=silent["id"],
                         **variables)
        assert body["data"]["orderInvoiceSend"] == {"order": None, "userErrors": [{
            "field": None, "message": message, "code": "ORDER_INVOICE_SEND_UNSUCCESSFUL"}]}
    assert live.store.order_state(live.shop, silent["id"])["invoices"] == []
    order, ret = live.exchange("TS-L", capture_mode="none")
    live.process(ret)
    sent = live.data("OrderInvoiceSend", id=order["id"])
    assert sent == {"order": {"id": order["id"]}, "userErrors": []}
    invoice = live.store.order_state(live.shop, order["id"])["invoices"][0]
    assert (invoice["to"], invoice["amount"]) == ("customer@example.com", "5.00")
