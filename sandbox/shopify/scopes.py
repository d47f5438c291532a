"""Access scopes: what each field Swapline's documents select requires, and Shopify's refusal.

Shopify checks every selected field against the scopes the shop granted the app; one field it may
not read fails its root field with ACCESS_DENIED (HTTP 200, `data.<root>` null). The sandbox grants
a shop the scopes of shopify.app.toml and refuses the rest through `refusal`. A field this table
does not know is refused loudly (Refused, HTTP 400): new fields need their scope looked up first.
Sources are shopify.dev Admin GraphQL reference pages ("Requires `x` access scope ...") and the
2026-04 schema's descriptions; "any of" where a page lists alternatives.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    visit,
)

from sandbox.shopify.graphql_ops import admin_schema
from sandbox.shopify.store import Refused

APP_TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"
DOCS = "https://shopify.dev/api/usage/access-scopes"
REF = "https://shopify.dev/docs/api/admin-graphql/latest"

# "Any scope that writes a resource also grants read access to it" (shopify.dev/docs/api/usage/
# access-scopes, "How it works"): write_x satisfies a need for read_x.
ORDERS = ("read_orders", "read_marketplace_orders", "read_buyer_membership_orders")
RETURNS = ("read_returns", "read_marketplace_returns")
FO_READ = ("read_assigned_fulfillment_orders", "read_merchant_managed_fulfillment_orders",
           "read_third_party_fulfillment_orders", "read_marketplace_fulfillment_orders")
FREE = ()  # no scope beyond the parent's


@dataclass(frozen=True)
class Kind:
    """An object type: the scopes (any of) it needs itself, and the fields known to add none."""

    needs: tuple[str, ...]
    fields: frozenset[str]


def kind(needs: tuple[str, ...], fields: str) -> Kind:
    return Kind(needs, frozenset(fields.split()))


# Root fields: Query and Mutation. A mutation's payload types need nothing more.
ROOTS: dict[str, tuple[str, ...]] = {
    # {REF}/queries/order: "Requires read_orders ... or read_marketplace_orders"; the Order
    # object page lists read_buyer_membership_orders too (modelled on the Order type below).
    "QueryRoot.order": ORDERS,
    # {REF}/queries/return: "Requires read_returns access scope or read_marketplace_returns".
    "QueryRoot.return": RETURNS,
    # {REF}/queries/fulfillmentOrder: read_assigned_, read_merchant_managed_, read_third_party_
    # or read_marketplace_fulfillment_orders (the same as the FulfillmentOrder object).
    "QueryRoot.fulfillmentOrder": FO_READ,
    # nodes/shop: no scope of their own; each node's type carries its requirement.
    "QueryRoot.nodes": FREE,
    "QueryRoot.shop": FREE,
    # {REF}/mutations/fulfillmentCreate: write_assigned_, write_merchant_managed_ or
    # write_third_party_fulfillment_orders.
    "Mutation.fulfillmentCreate": ("write_assigned_fulfillment_orders",
                                   "write_merchant_managed_fulfillment_orders",
                                   "write_third_party_fulfillment_orders"),
    # {REF}/mutations/fulfillmentOrderHold: write_merchant_managed_ or write_third_party_.
    "Mutation.fulfillmentOrderHold": ("write_merchant_managed_fulfillment_orders",
                                      "write_third_party_fulfillment_orders"),
    # {REF}/mutations/fulfillmentOrderReleaseHold: write_merchant_managed_, write_third_party_
    # or write_marketplace_fulfillment_orders.
    "Mutation.fulfillmentOrderReleaseHold": ("write_merchant_managed_fulfillment_orders",
                                             "write_third_party_fulfillment_orders",
                                             "write_marketplace_fulfillment_orders"),
    # {REF}/mutations/orderCapture: "Requires write_orders ... or write_marketplace_orders".
    "Mutation.orderCapture": ("write_orders", "write_marketplace_orders"),
    # {REF}/mutations/orderCreateMandatePayment: "Requires write_payment_mandate access scope".
    "Mutation.orderCreateMandatePayment": ("write_payment_mandate",),
    # {REF}/mutations/orderInvoiceSend: "Requires `write_orders` access scope".
    "Mutation.orderInvoiceSend": ("write_orders",),
    # {REF}/mutations/returnProcess: "Requires write_returns ... or write_marketplace_returns".
    "Mutation.returnProcess": ("write_returns", "write_marketplace_returns"),
    # {REF}/mutations/tagsAdd: the scope "varies depending on the type of resource": write_orders
    # for an Order, the only resource Swapline tags (graphql_tags.py refuses the others loudly).
    "Mutation.tagsAdd": ("write_orders",),
}

# Object types, by name. `needs` from the type's reference page; FREE where the page states no
# requirement or the type is reachable only through an access-controlled parent.
KINDS: dict[str, Kind] = {
    # {REF}/objects/Order: read_orders, read_marketplace_orders or read_buyer_membership_orders.
    "Order": kind(ORDERS, "id name email shippingAddress totalOutstandingSet transactions "
                          "paymentCollectionDetails fulfillmentOrders tags"),
    # {REF}/objects/OrderPaymentCollectionDetails: "Requires `read_orders` access scope".
    "OrderPaymentCollectionDetails": kind(("read_orders",), "vaultedPaymentMethods"),
    # {REF}/objects/PaymentMandate: "Requires `read_payment_mandate` access scope".
    "PaymentMandate": kind(("read_payment_mandate",), "id"),
    # {REF}/objects/FulfillmentOrder and /objects/FulfillmentHold: read_assigned_,
    # read_merchant_managed_, read_third_party_ or read_marketplace_fulfillment_orders.
    "FulfillmentOrder": kind(FO_READ, "id status supportedActions fulfillmentHolds lineItems"),
    "FulfillmentHold": kind(FO_READ, "id reason handle heldByRequestingApp displayReason"),
    # {REF}/objects/FulfillmentLineItem: read_orders, read_marketplace_orders or
    # read_buyer_membership_orders.
    "FulfillmentLineItem": kind(ORDERS, "lineItem"),
    # {REF}/queries/return (the Return it answers): read_returns or read_marketplace_returns.
    "Return": kind(RETURNS, "id name status order exchangeLineItems returnLineItems"),
    # {REF}/objects/ExchangeLineItem: "Requires `read_returns` access scope".
    "ExchangeLineItem": kind(("read_returns",), "id variantId quantity processedQuantity "
                                                "unprocessedQuantity lineItems"),
    # {REF}/objects/ProductVariant: "Requires `read_products` access scope".
    "ProductVariant": kind(("read_products",), "id sku price displayName"),
    # Reached only through Order, FulfillmentOrder, Return or a mutation payload.
    "OrderTransaction": kind(FREE, "id kind status gateway authorizationExpiresAt amountSet "
                                   "totalUnsettledSet"),
    "FulfillmentOrderLineItem": kind(FREE, "id remainingQuantity lineItem"),
    "LineItem": kind(FREE, "id sku"),
    "ReturnLineItem": kind(FREE, "id quantity fulfillmentLineItem"),
    "Fulfillment": kind(FREE, "id status trackingInfo"),
    # Plain values, connections, payloads and user errors.
    "Shop": kind(FREE, "id name myshopifyDomain currencyCode ianaTimezone"),
    "MailingAddress": kind(FREE, "name company address1 address2 city zip provinceCode "
                                 "countryCodeV2 phone"),
    "PageInfo": kind(FREE, "hasNextPage endCursor"),
    "MoneyBag": kind(FREE, "presentmentMoney"),
    "MoneyV2": kind(FREE, "amount currencyCode"),
    "FulfillmentTrackingInfo": kind(FREE, "number url company"),
    "FulfillmentOrderSupportedAction": kind(FREE, "action"),
    "Job": kind(FREE, "id"),
    "FulfillmentOrderConnection": kind(FREE, "nodes pageInfo"),
    "FulfillmentOrderLineItemConnection": kind(FREE, "nodes pageInfo"),
    "ExchangeLineItemConnection": kind(FREE, "nodes pageInfo"),
    "ReturnLineItemTypeConnection": kind(FREE, "nodes pageInfo"),
    "FulfillmentCreatePayload": kind(FREE, "fulfillment userErrors"),
    "FulfillmentOrderHoldPayload": kind(FREE, "fulfillmentHold fulfillmentOrder userErrors"),
    "FulfillmentOrderReleaseHoldPayload": kind(FREE, "fulfillmentOrder userErrors"),
    "OrderCapturePayload": kind(FREE, "transaction userErrors"),
    "OrderCreateMandatePaymentPayload": kind(FREE, "job paymentReferenceId userErrors"),
    "OrderInvoiceSendPayload": kind(FREE, "order userErrors"),
    "ReturnProcessPayload": kind(FREE, "return userErrors"),
    "TagsAddPayload": kind(FREE, "node userErrors"),
    # The Node interface (tagsAdd's `node`): `id` only; a fragment on a type needs that type's.
    "Node": kind(FREE, "id"),
    "UserError": kind(FREE, "field message"),
    "FulfillmentOrderHoldUserError": kind(FREE, "field message code"),
    "FulfillmentOrderReleaseHoldUserError": kind(FREE, "field message code"),
    "OrderCreateMandatePaymentUserError": kind(FREE, "field message code"),
    "OrderInvoiceSendUserError": kind(FREE, "field message code"),
    "ReturnUserError": kind(FREE, "field message code"),
}

# Webhook topics of shopify.app.toml (schema 2026-04, WebhookSubscriptionTopic descriptions:
# "Requires at least one of the following scopes: ...").
TOPICS: dict[str, tuple[str, ...]] = {
    "app/uninstalled": FREE,
    # The APP_SCOPES_UPDATE description names no scope: every installation may hear of its own.
    "app/scopes_update": FREE,
    **{f"returns/{t}": RETURNS + ("read_buyer_membership_orders",)
       for t in ("approve", "update", "process", "decline")},
    **{f"returns/{t}": ORDERS[:2] + RETURNS + ("read_buyer_membership_orders",)
       for t in ("close", "reopen", "cancel")},
}


@dataclass(frozen=True)
class Use:
    """One selected field: where it is in the answer and the scopes (any of) it needs."""

    path: tuple[str, ...]
    field: str
    needs: tuple[str, ...]


def app_scopes(path: Path = APP_TOML) -> frozenset[str]:
    """The scopes shopify.app.toml asks for: what managed install grants every shop."""
    scopes = tomllib.loads(path.read_text())["access_scopes"]["scopes"]
    return frozenset(s.strip() for s in scopes.split(",") if s.strip())


def implied(granted: Iterable[str]) -> frozenset[str]:
    """The granted scopes plus the read scope each write scope includes."""
    granted = set(granted)
    return frozenset(granted | {"read_" + s.removeprefix("write_")
                                for s in granted if s.startswith("write_")})


def uses(document: DocumentNode) -> list[Use]:
    """Every selected field of the document with the scopes it needs; Refused for unknown ones."""
    schema, found = admin_schema(), []
    if schema is None:  # no schema copy (a demo away from ../shared): root fields only
        return _root_uses(document)
    info = TypeInfo(schema)
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    for op in (d for d in document.definitions if isinstance(d, OperationDefinitionNode)):
        visit(op, TypeInfoVisitor(info, _Collector(info, fragments, found)))
    return found


def _root_uses(document: DocumentNode) -> list[Use]:
    found = []
    for op in (d for d in document.definitions if isinstance(d, OperationDefinitionNode)):
        root = "Mutation" if op.operation == OperationType.MUTATION else "QueryRoot"
        for node in op.selection_set.selections:
            key = node.alias.value if node.alias else node.name.value
            needs = _needs(f"{root}.{node.name.value}", root, node.name.value)[0]
            if needs:
                found.append(Use((key,), node.name.value, needs))
    return found


class _Collector(Visitor):
    """Walks selections (inline fragments included) and records each field's needs."""

    def __init__(self, info: TypeInfo, fragments: dict, found: list[Use]):
        super().__init__()
        self.info, self.fragments, self.found, self.path = info, fragments, found, []

    def enter_field(self, node: FieldNode, *_):
        parent, named = self.info.get_parent_type(), get_named_type(self.info.get_type())
        self.path.append(node.alias.value if node.alias else node.name.value)
        needs = _needs(f"{parent.name}.{node.name.value}", parent.name, node.name.value)
        if isinstance(named, GraphQLObjectType):
            needs += (_kind(named.name).needs,)
        for need in needs:
            if need:
                self.found.append(Use(tuple(self.path), node.name.value, need))

    def leave_field(self, *_):
        self.path.pop()

    def enter_inline_fragment(self, node, *_):
        named = get_named_type(self.info.get_type())  # `... on ProductVariant` inside nodes
        if isinstance(named, GraphQLObjectType) and _kind(named.name).needs:
            self.found.append(Use(tuple(self.path), self.path[-1], _kind(named.name).needs))

    def enter_fragment_spread(self, node, *_):
        raise Refused(f"named fragment {node.name.value}: the scope check reads inline ones only")


def _needs(coordinate: str, parent: str, field: str) -> tuple[tuple[str, ...], ...]:
    if parent in ("QueryRoot", "Mutation"):
        if coordinate not in ROOTS:
            raise Refused(f"no access scope known for {coordinate}; add it to sandbox/shopify/"
                          "scopes.py with its shopify.dev source")
        return (ROOTS[coordinate],)
    if field != "__typename" and field not in _kind(parent).fields:
        raise Refused(f"no access scope known for {coordinate}; add it to sandbox/shopify/"
                      "scopes.py with its shopify.dev source")
    return ()


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise Refused(f"no access scope known for type {name}; add it to sandbox/shopify/"
                      "scopes.py with its shopify.dev source")
    return KINDS[name]


def required_access(needs: tuple[str, ...]) -> str:
    """Shopify's wording: "`a` access scope or `b` access scope."."""
    parts = [f"`{s}` access scope" for s in needs]
    return (", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]) + "."


def refusal(granted: Iterable[str], document: DocumentNode) -> dict | None:
    """Shopify's answer when the shop lacks a scope the document needs, else None."""
    have = implied(granted)
    missing = [u for u in uses(document) if not have & set(u.needs)]
    if not missing:
        return None
    errors = [{"message": f"Access denied for {u.field} field. Required access: "
                          f"{required_access(u.needs)}",
               "extensions": {"code": "ACCESS_DENIED", "documentation": DOCS,
                              "requiredAccess": required_access(u.needs)},
               "path": list(u.path)} for u in missing]
    return {"errors": errors, "data": {u.path[0]: None for u in missing}}
