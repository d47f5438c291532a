"""Query cost, input-size limits and the leaky bucket, as the sandbox Shopify applies them.

Pricing follows shopify.dev, "GraphQL Admin API rate limits" (and ../shared/shopify/
validate_graphql.py, which prices the same way; reimplemented here so the sandbox needs nothing
outside itself): scalars and enums 0, objects 1, a field sized by `first`/`last` (a connection or
a plain list such as Order.transactions) 2 + size x the cost of one element, nested sizes
multiplying, `edges` adding nothing of its own, `pageInfo` free, a mutation 10 per root field.
The actual cost prices what was really returned the same way; the difference is refunded.
Response shapes were read from recorded live 2026-04 answers (airhorns/shopify-draft-proxy,
fixtures/conformance/…/2026-04: MAX_INPUT_SIZE_EXCEEDED and extensions.cost) and from Shopify's
own error texts quoted in public client tests (MAX_COST_EXCEEDED, THROTTLED).
"""
from __future__ import annotations

import math
import threading
import time

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
)
from graphql.utilities import value_from_ast_untyped

MAX_QUERY_COST = 1000
MAX_INPUT_SIZE = 250
STANDARD_BUCKET = 2000.0  # maximumAvailable in live 2026-04 answers (Standard plan)
STANDARD_RESTORE = 100.0  # points/second, Standard plan
MUTATION_COST = 10
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"


class Bucket:
    """One app+shop leaky bucket: takes the requested cost up front, refills continuously."""

    def __init__(self, maximum: float = STANDARD_BUCKET, restore: float = STANDARD_RESTORE,
                 clock=time.monotonic):
        self.maximum, self.restore, self.clock = float(maximum), float(restore), clock
        self.available, self.at = self.maximum, clock()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self.at) * self.restore)
        self.at = now

    def take(self, cost: int) -> bool:
        """Charge `cost` if the bucket holds it; False (nothing charged) when it does not."""
        with self.lock:
            self._refill()
            if self.available < cost:
                return False
            self.available -= cost
            return True

    def refund(self, points: int) -> None:
        with self.lock:
            self.available = min(self.maximum, self.available + max(points, 0))

    def status(self) -> dict:
        with self.lock:
            self._refill()
            return {"maximumAvailable": _number(self.maximum),
                    "currentlyAvailable": math.floor(self.available),
                    "restoreRate": _number(self.restore)}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def cost_extension(requested: int, actual: int | None, bucket: Bucket) -> dict:
    """`extensions` of an answer: what was asked, what was spent, the bucket now."""
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": bucket.status()}}


def max_cost_error(cost: int) -> dict:
    # Shopify's wording, as quoted from live answers in public client tests.
    return {"message": f"Query cost is {cost}, which exceeds the single query max cost limit "
                       f"({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/"
                       "rate-limits for more information on how the\ncost of a query is "
                       "calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
                       "operations should be used instead.\nSee https://shopify.dev/tutorials/"
                       "perform-bulk-operations-with-admin-api for usage details.\n",
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST,
                           "documentation": "https://shopify.dev/api/usage/limits#rate-limits"}}


def throttled_error() -> dict:
    return {"message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC}}


def operation(document: DocumentNode) -> OperationDefinitionNode:
    return next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))


def _fragments(document: DocumentNode) -> dict:
    return {d.name.value: d for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)}


def _fields(selection_set, fragments: dict):
    """The fields of a selection set, fragments flattened (interfaces priced as their sum)."""
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            yield sel
        else:
            fragment = sel if isinstance(sel, InlineFragmentNode) else fragments[sel.name.value]
            yield from _fields(fragment.selection_set, fragments)


def _size(node: FieldNode, variables: dict) -> int | None:
    for arg in node.arguments or ():
        if arg.name.value in ("first", "last"):
            return int(value_from_ast_untyped(arg.value, variables) or 0)
    return None


def requested_cost(document: DocumentNode, variables: dict) -> int:
    """What Shopify charges up front for the document's operation with these variables."""
    op = operation(document)
    if op.operation == OperationType.MUTATION:
        return MUTATION_COST * len(op.selection_set.selections)
    defaults = {v.variable.name.value: value_from_ast_untyped(v.default_value)
                for v in op.variable_definitions or () if v.default_value is not None}
    return max(_requested(op.selection_set, _fragments(document), {**defaults, **variables}), 1)


def _requested(selection_set, fragments: dict, variables: dict) -> int:
    total = 0
    for field in _fields(selection_set, fragments):
        if field.selection_set is None or field.name.value == "pageInfo":
            continue
        inner, size = _requested(field.selection_set, fragments, variables), \
            _size(field, variables)
        if field.name.value == "edges":
            total += inner
        elif size is not None:
            total += 2 + size * max(inner, 1)
        else:
            total += 1 + inner
    return total


def actual_cost(document: DocumentNode, variables: dict, data: dict, requested: int) -> int:
    """The cost of what was really returned (never above the requested cost)."""
    op = operation(document)
    if op.operation == OperationType.MUTATION:
        return requested
    spent = _actual(op.selection_set, data, _fragments(document), variables)
    return min(max(spent, 1), requested)


def _actual(selection_set, value, fragments: dict, variables: dict) -> int:
    if not isinstance(value, dict):
        return 0
    total = 0
    for field in _fields(selection_set, fragments):
        key = field.alias.value if field.alias else field.name.value
        item = value.get(key)
        if field.selection_set is None or field.name.value == "pageInfo" or item is None:
            continue
        total += _field_actual(field, item, fragments, variables)
    return total


def _field_actual(field: FieldNode, item, fragments: dict, variables: dict) -> int:
    inner = field.selection_set
    if field.name.value == "edges":
        return sum(_actual(inner, edge, fragments, variables) for edge in item)
    if _size(field, variables) is None:
        if isinstance(item, list):
            return 1 + max((_actual(inner, el, fragments, variables) for el in item), default=0) \
                if item else 0
        return 1 + _actual(inner, item, fragments, variables)
    if isinstance(item, list):  # a plain list sized by `first`
        return 2 + sum(max(_actual(inner, el, fragments, variables), 1) for el in item)
    return 2 + sum(max(_actual(inner, view, fragments, variables), 1)
                   for view in _one_node_views(item))


def _one_node_views(connection: dict) -> list[dict]:
    """The connection as it would look holding only its i-th node, for each node returned."""
    count = len(connection.get("nodes") or connection.get("edges") or [])
    return [{**connection, **{k: [connection[k][i]] for k in ("nodes", "edges")
                              if connection.get(k)}} for i in range(count)]


def oversized_inputs(document: DocumentNode, variables: dict) -> list[dict]:
    """Shopify's MAX_INPUT_SIZE_EXCEEDED errors: any input array over 250 items."""
    op = operation(document)
    errors = []
    for root in op.selection_set.selections:
        if not isinstance(root, FieldNode):
            continue
        for arg in root.arguments or ():
            value = value_from_ast_untyped(arg.value, variables)
            for path, size in _long_lists(value, [root.name.value, arg.name.value]):
                location = {"line": root.loc.source.get_location(root.loc.start).line,
                            "column": root.loc.source.get_location(root.loc.start).column} \
                    if root.loc else None
                errors.append({
                    "message": f"The input array size of {size} is greater than the maximum "
                               f"allowed of {MAX_INPUT_SIZE}.",
                    "locations": [location] if location else [],
                    "path": path, "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"}})
    return errors


def _long_lists(value, path: list[str]):
    # Live answers name the argument and input-object keys only; list positions are left out.
    if isinstance(value, list):
        if len(value) > MAX_INPUT_SIZE:
            yield path, len(value)
        for item in value:
            yield from _long_lists(item, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _long_lists(item, [*path, key])
