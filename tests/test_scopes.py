"""Access scopes: the table covers every field our documents select, shopify.app.toml asks for
exactly what they need, and the sandbox refuses a missing scope the way Shopify does."""
from __future__ import annotations

import tomllib
from pathlib import Path

import jwt
import pytest
from graphql import parse

from clients.shopify import shopify
from clients.shopify_errors import ShopifyAccessDenied
from clients.shopify_session import SessionToken, shop_from_claims
from clients.shopify_tokens import install
from models import db
from models.shop import get_shop
from sandbox.shopify import scopes
from sandbox.shopify.store import Refused
from tests.conftest import SHOP

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted((ROOT / "clients" / "graphql").glob("*.graphql"))
OLD_INSTALL = ("read_returns", "write_returns", "read_orders", "write_orders",
               "read_merchant_managed_fulfillment_orders",
               "write_merchant_managed_fulfillment_orders", "read_products")


# Scopes no field of a document needs, but the product does, each with its reason.
BEHAVIOUR_SCOPES = {
    # shopify.dev queries/order: "Only the last 60 days' worth of orders from a store are
    # accessible from the Order object by default ... read_all_orders". Customers exchange items
    # of older orders (90-day and holiday return windows); the sandbox hides such orders from a
    # shop without it (sandbox/shopify/graphql_views.py out_of_window).
    ("read_all_orders",),
}


def needs() -> set[tuple[str, ...]]:
    """Every 'any of' requirement of our documents, the toml's webhook topics and behaviour."""
    found = {u.needs for doc in DOCUMENTS for u in scopes.uses(parse(doc.read_text()))}
    return (found | {scopes.TOPICS[t] for t in toml_topics()} | BEHAVIOUR_SCOPES) - {()}


def toml_topics() -> list[str]:
    config = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    return [t for sub in config["webhooks"]["subscriptions"] for t in sub.get("topics", [])]


def unmet(granted) -> list[tuple[str, ...]]:
    have = scopes.implied(granted)
    return sorted(n for n in needs() if not have & set(n))


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.stem)
def test_every_selected_field_has_a_table_entry(doc):
    scopes.uses(parse(doc.read_text()))  # Refused names the field without an entry


def test_a_field_without_an_entry_fails_loudly():
    with pytest.raises(Refused, match="Order.note"):
        scopes.uses(parse("query Q($id: ID!) { order(id: $id) { id note } }"))
    with pytest.raises(Refused, match="QueryRoot.customers"):
        scopes.uses(parse("query Q { customers(first: 1) { nodes { id } } }"))


def test_every_toml_webhook_topic_has_an_entry():
    assert set(toml_topics()) <= set(scopes.TOPICS)


def test_toml_asks_for_every_scope_our_documents_and_topics_need():
    assert unmet(scopes.app_scopes()) == []


def test_toml_asks_for_no_scope_it_could_do_without():
    granted = scopes.app_scopes()
    spare = [s for s in sorted(granted) if not unmet(granted - {s})]
    assert spare == [], f"not needed by any document or topic: {spare}"


def test_the_toml_before_this_change_lacked_the_payment_mandate_scopes():
    assert unmet(OLD_INSTALL) == [("read_all_orders",), ("read_payment_mandate",),
                                  ("write_payment_mandate",)]


def test_write_scope_includes_its_read_scope():
    assert scopes.implied({"write_orders"}) == {"write_orders", "read_orders"}


def test_sandbox_refuses_a_missing_scope_like_shopify(sandbox):
    doc = parse((ROOT / "clients/graphql/OrderCreateMandatePayment.graphql").read_text())
    answer = scopes.refusal(OLD_INSTALL, doc)
    assert answer["data"] == {"orderCreateMandatePayment": None}
    assert answer["errors"] == [{
        "message": "Access denied for orderCreateMandatePayment field. Required access: "
                   "`write_payment_mandate` access scope.",
        "extensions": {"code": "ACCESS_DENIED",
                       "documentation": "https://shopify.dev/api/usage/access-scopes",
                       "requiredAccess": "`write_payment_mandate` access scope."},
        "path": ["orderCreateMandatePayment"]}]
    assert scopes.refusal(scopes.app_scopes(), doc) is None


def test_a_nested_field_is_refused_with_its_path():
    doc = parse((ROOT / "clients/graphql/OrderVaultedPaymentMethods.graphql").read_text())
    answer = scopes.refusal(OLD_INSTALL, doc)
    assert [e["path"] for e in answer["errors"]] == [
        ["order", "paymentCollectionDetails", "vaultedPaymentMethods"]]
    assert answer["data"] == {"order": None}


def test_any_of_scopes_are_named_as_shopify_does():
    assert scopes.required_access(("write_orders", "write_marketplace_orders")) == \
        "`write_orders` access scope or `write_marketplace_orders` access scope."


@pytest.fixture
def installed_with(app, session_token, sandbox):
    """Install SHOP through the real token exchange, granted only the given scopes."""

    def install_granting(granted) -> str:
        sandbox.store.grant(SHOP, granted)
        token = session_token()
        claims = jwt.decode(token, options={"verify_signature": False})
        install(SessionToken(shop_from_claims(claims), "42", token, claims))
        return SHOP

    yield install_granting
    sandbox.store.granted.pop(SHOP, None)


def test_token_exchange_grants_exactly_the_toml_scopes(app, session_token, sandbox):
    token = session_token()
    claims = jwt.decode(token, options={"verify_signature": False})
    install(SessionToken(shop_from_claims(claims), "42", token, claims))
    with db.session() as s:
        assert set(get_shop(SHOP, session=s).scopes.split(",")) == scopes.app_scopes()


def test_access_denied_is_a_clear_error_that_is_not_retried(installed_with, sandbox):
    domain = installed_with(OLD_INSTALL)
    with db.session() as s:  # what an install from before write_payment_mandate stored
        assert set(get_shop(domain, session=s).scopes.split(",")) == set(OLD_INSTALL)
    variables = {"id": "gid://shopify/Order/1", "mandateId": "gid://shopify/PaymentMandate/1",
                 "idempotencyKey": "k", "amount": {"amount": "5.00", "currencyCode": "EUR"}}
    with pytest.raises(ShopifyAccessDenied) as caught:
        shopify().graphql(domain, "OrderCreateMandatePayment", variables)
    assert caught.value.retriable is False and caught.value.code == "ACCESS_DENIED"
    assert "`write_payment_mandate`" in str(caught.value)
    assert "opening Swapline in Shopify admin" in str(caught.value)
    assert sandbox.store.count("OrderCreateMandatePayment", domain) == 1  # asked once, no retry
