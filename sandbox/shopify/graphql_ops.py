"""The GraphQL operations the sandbox answers, by operation name, from its in-memory store.

OPERATIONS is the contract: operation name (as in clients/graphql/) -> the root fields it may
select and their resolvers. A resolver returns a view (sandbox/shopify/graphql_views.py); `execute`
coerces the variables against the Admin schema (defaults filled, bad input refused like Shopify)
and projects each view onto the document's selection set, so the answer holds exactly the
selected fields. A selected field the sandbox does not model is refused loudly (400), never null.
"""
from __future__ import annotations

import gzip
import json
import os
import re
from functools import cache
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    build_client_schema,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.type.validate import validate_schema
from graphql.utilities import value_from_ast_untyped

from sandbox.shopify import graphql_fulfillment as fulfil
from sandbox.shopify import graphql_payments as pay
from sandbox.shopify import graphql_tags as tags
from sandbox.shopify import graphql_views as views
from sandbox.shopify.store import InvalidId, OutOfWindow, Refused, ResourceNotFound

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_CANDIDATES = (
    os.environ.get("SWAPLINE_SHOPIFY_SCHEMA", ""),
    str(ROOT.parent / "shared" / "shopify" / "admin_2026-04.json.gz"),
)


@cache
def admin_schema() -> GraphQLSchema | None:
    """Shopify's Admin schema when a copy is present (tests, CI, demo beside ../shared)."""
    for candidate in SCHEMA_CANDIDATES:
        if candidate and Path(candidate).is_file():
            with gzip.open(candidate, "rt", encoding="utf-8") as fh:
                schema = build_client_schema(json.load(fh)["data"])
            # Shopify's schema has four deprecated fields implementing non-deprecated interface
            # fields; graphql-core refuses that quirk, anything else is a real problem.
            problems = [e for e in validate_schema(schema)
                        if not e.message.endswith("must not be deprecated.")]
            if problems:
                raise TypeError("; ".join(e.message for e in problems))
            schema._validation_errors = []
            return schema
    return None


MISSING_ARGUMENT = re.compile(r"^Argument '\w+\.(\w+)\((\w+):\)' of type '.+' is required, "
                              r"but it was not provided\.$")


def schema_errors(document: DocumentNode) -> list[str]:
    """Validation messages for a document against the Admin schema (none when no schema copy)."""
    schema = admin_schema()
    return [_shopify_wording(e.message) for e in validate(schema, document)] if schema else []


def _shopify_wording(message: str) -> str:
    """graphql-core's text for a missing argument, as Shopify words it (live recording
    payments/order-create-mandate-payment-validation.json)."""
    match = MISSING_ARGUMENT.match(message)
    return f"Field '{match[1]}' is missing required arguments: {match[2]}" if match else message


class GraphQLFault(Exception):
    """Shopify answers with top-level `errors` in a 200 (bad variables, malformed ids)."""

    def __init__(self, errors: list, data: dict | None = None):
        super().__init__(errors)
        self.errors = [e if isinstance(e, dict) else {"message": e} for e in errors]
        self.data = data

    def body(self) -> dict:
        """The JSON body Shopify sends: the errors, and `data` when fields resolved to null."""
        return {"errors": self.errors, **({"data": self.data} if self.data is not None else {})}


def execute(store, shop, document: DocumentNode, name: str, variables: dict) -> tuple[dict, bool]:
    """Run operation `name` for `shop`; returns (data, whether a mutation changed anything)."""
    op = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    schema = admin_schema()
    coerced = None
    if schema is not None:
        coerced = get_variable_values(schema, op.variable_definitions or (), variables)
        if isinstance(coerced, list):
            raise GraphQLFault([e.message for e in coerced])
        variables = coerced.coerced
    roots = OPERATIONS[name]
    data, changed, errors = {}, False, []
    for node in op.selection_set.selections:
        if not isinstance(node, FieldNode) or node.name.value not in roots:
            raise Refused(f"operation {name} may select only {', '.join(roots)} at its root")
        args = _root_arguments(schema, op, node, coerced, variables)
        key = node.alias.value if node.alias else node.name.value
        try:  # ids and cursors are checked as they are read, selections included
            value = roots[node.name.value](store, shop, args)
            data[key] = _select(value, node, fragments, variables)
        except InvalidId as exc:
            raise GraphQLFault([str(exc)]) from exc
        except ResourceNotFound as exc:
            errors.append({"message": f"Invalid id: {exc}", "path": [key],
                           "extensions": {"code": "RESOURCE_NOT_FOUND"}})
            data[key] = None
            continue
        except OutOfWindow as exc:  # the shape community reports: "Not Found", no code
            errors.append({"message": str(exc), "path": [key]})
            data[key] = None
            continue
        if op.operation == OperationType.MUTATION:
            changed = changed or not (value["userErrors"] or value.get("_replay"))
    if errors:
        raise GraphQLFault(errors, data)
    return data, changed


def _root_arguments(schema, op, node: FieldNode, coerced, variables: dict) -> dict:
    if schema is None:
        return {a.name.value: value_from_ast_untyped(a.value, variables)
                for a in node.arguments or ()}
    root = schema.mutation_type if op.operation == OperationType.MUTATION else schema.query_type
    return get_argument_values(root.fields[node.name.value], node, coerced)


def _select(value, node, fragments: dict, variables: dict):
    """Project a view onto `node`'s selection set (lists element-wise, leaves as they are)."""
    if value is None or node.selection_set is None:
        return value
    if isinstance(value, list):
        return [_select(v, node, fragments, variables) for v in value]
    out: dict = {}
    for sel in node.selection_set.selections:
        if isinstance(sel, FieldNode):
            key = sel.alias.value if sel.alias else sel.name.value
            _merge(out, {key: _field(value, sel, fragments, variables)})
            continue
        fragment = sel if isinstance(sel, InlineFragmentNode) else fragments[sel.name.value]
        condition = fragment.type_condition
        if condition is None or condition.name.value in (value["__typename"], "Node"):
            _merge(out, _select(value, fragment, fragments, variables))
    return out


def _field(value: dict, sel: FieldNode, fragments: dict, variables: dict):
    name = sel.name.value
    if name not in value:
        raise Refused(f"the sandbox does not model {value.get('__typename')}.{name}")
    raw = value[name]
    if callable(raw):
        raw = raw(**{a.name.value: value_from_ast_untyped(a.value, variables)
                     for a in sel.arguments or ()})
    return _select(raw, sel, fragments, variables)


def _merge(into: dict, new: dict) -> None:
    for key, item in new.items():
        if isinstance(item, dict) and isinstance(into.get(key), dict):
            _merge(into[key], item)
        else:
            into[key] = item


OPERATIONS = {
    "ShopDetails": {"shop": views.shop_details},
    "ReturnForExchange": {"return": views.return_by_id},
    "VariantsForExchange": {"nodes": views.nodes},
    "OrderFulfillmentOrders": {"order": views.order_by_id},
    "FulfillmentOrderLineItems": {"fulfillmentOrder": views.fulfillment_order_by_id},
    "ReturnExchangeLineItems": {"return": views.return_by_id},
    "ReturnReturnLineItems": {"return": views.return_by_id},
    "OrderPayment": {"order": views.order_by_id},
    "OrderVaultedPaymentMethods": {"order": views.order_by_id},
    "FulfillmentOrderHold": {"fulfillmentOrderHold": fulfil.hold},
    "FulfillmentOrderReleaseHold": {"fulfillmentOrderReleaseHold": fulfil.release_hold},
    "ReturnProcessExchange": {"returnProcess": fulfil.return_process},
    "FulfillmentCreate": {"fulfillmentCreate": fulfil.fulfillment_create},
    "OrderCapture": {"orderCapture": pay.capture},
    "OrderCreateMandatePayment": {"orderCreateMandatePayment": pay.mandate_payment},
    "OrderInvoiceSend": {"orderInvoiceSend": pay.invoice_send},
    "TagsAdd": {"tagsAdd": tags.tags_add},
}
