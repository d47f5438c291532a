"""Every GraphQL document we send validates against Shopify's Admin schema (2026-04)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "shopify"
DOCUMENTS = sorted((ROOT / "clients" / "graphql").glob("*.graphql"))


@pytest.fixture(scope="module")
def errors_in():
    assert (SHARED / "admin_2026-04.json.gz").is_file(), "../shared/shopify schema is missing"
    sys.path.insert(0, str(SHARED))
    try:
        from validate_graphql import errors_in
    finally:
        sys.path.remove(str(SHARED))
    return errors_in


def test_there_are_documents():
    assert DOCUMENTS, "clients/graphql/ holds no documents"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_document_is_valid_against_admin_schema(path, errors_in):
    assert errors_in(path.read_text()) == []


def test_validator_catches_a_wrong_field(errors_in):
    assert errors_in("query Bad { shop { notAField } }")


def test_each_document_has_one_named_operation_matching_its_file():
    from graphql import OperationDefinitionNode, parse

    for path in DOCUMENTS:
        ops = [d for d in parse(path.read_text()).definitions
               if isinstance(d, OperationDefinitionNode)]
        assert [op.name.value for op in ops] == [path.stem]


def test_sandbox_refuses_unknown_operations_loudly(app, sandbox, session_token):
    import requests

    response = requests.post(f"{sandbox.origin}/admin/api/2026-10/graphql.json",
                             json={"query": "query Nope { shop { name } }"},
                             headers={"X-Swapline-Shop": "x.myshopify.com",
                                      "X-Shopify-Access-Token": "none"}, timeout=5)
    assert response.status_code == 401
    pair = sandbox.store.issue_pair("x.myshopify.com")
    response = requests.post(f"{sandbox.origin}/admin/api/2026-10/graphql.json",
                             json={"query": "query Nope { shop { name } }"},
                             headers={"X-Swapline-Shop": "x.myshopify.com",
                                      "X-Shopify-Access-Token": pair["access_token"]}, timeout=5)
    assert response.status_code == 400
    assert "does not know operation 'Nope'" in response.json()["errors"][0]["message"]
    response = requests.post(f"{sandbox.origin}/admin/api/2026-10/graphql.json",
                             json={"query": "query ShopDetails { shop { notAField } }"},
                             headers={"X-Swapline-Shop": "x.myshopify.com",
                                      "X-Shopify-Access-Token": pair["access_token"]}, timeout=5)
    # Shopify answers an invalid document 200 with `errors` (not a 4xx): the client must read it
    assert response.status_code == 200 and "data" not in response.json()
    assert "notAField" in response.json()["errors"][0]["message"]


# What the code sends (clients/shopify_admin.py, clients/shopify_pages.py); ids are placeholders,
# sizes are in the documents.
SENT = {
    "OrderFulfillmentOrders": {"id": "gid://shopify/Order/1", "after": "cursor"},
    "FulfillmentOrderLineItems": {"id": "gid://shopify/FulfillmentOrder/1", "after": "cursor"},
    "ReturnExchangeLineItems": {"id": "gid://shopify/Return/1", "after": "cursor"},
    "ReturnReturnLineItems": {"id": "gid://shopify/Return/1", "after": "cursor"},
    "VariantsForExchange": {"ids": ["gid://shopify/ProductVariant/1"] * 250},
}


@pytest.fixture(scope="module")
def requested_cost():
    sys.path.insert(0, str(SHARED))
    try:
        from validate_graphql import requested_cost
    finally:
        sys.path.remove(str(SHARED))
    return requested_cost


def test_every_document_costs_at_most_1000_points(requested_cost):
    """Shopify refuses any query above 1,000 requested points (MAX_COST_EXCEEDED)."""
    table = {}
    for path in DOCUMENTS:
        cost, unknown = requested_cost(path.read_text(), SENT.get(path.stem, {}))
        assert unknown == [], f"{path.name}: a page size comes from {unknown}"
        table[path.stem] = cost
    # The table is this test's report (pytest -s shows it; the README's copy comes from it).
    print("\n| document | requested cost |\n|---|---:|")  # noqa: T201
    for name, cost in sorted(table.items(), key=lambda item: -item[1]):
        print(f"| {name} | {cost} |")  # noqa: T201
    assert {n: c for n, c in table.items() if c > 1000} == {}


def test_the_sandbox_prices_every_document_as_shopify_does(requested_cost):
    from graphql import parse

    from sandbox.shopify.cost import requested_cost as sandbox_cost

    for path in DOCUMENTS:
        text = path.read_text()
        variables = SENT.get(path.stem, {})
        assert sandbox_cost(parse(text), variables) == requested_cost(text, variables)[0], path


def test_the_old_nested_page_would_have_been_refused(requested_cost):
    old = ("query Old($id: ID!) { order(id: $id) { fulfillmentOrders(first: 50) { nodes { id "
           "lineItems(first: 50) { nodes { id lineItem { id } } } } } } }")
    assert requested_cost(old)[0] > 1000


# A page document repeats the node selection of the document it continues: each .graphql file is
# validated and priced alone (../shared/shopify/validate_graphql.py), so they cannot share a
# fragment file. The continued pages must still return the same shape as the first page.
PAGES = [("ReturnForExchange", "ReturnExchangeLineItems", "exchangeLineItems"),
         ("ReturnProcessExchange", "ReturnExchangeLineItems", "exchangeLineItems"),
         ("ReturnForExchange", "ReturnReturnLineItems", "returnLineItems"),
         ("OrderFulfillmentOrders", "FulfillmentOrderLineItems", "lineItems")]


def _nodes_selection(document: str, connection: str) -> str:
    """The printed `nodes { ... }` selection of the first field named `connection`."""
    from graphql import FieldNode, parse, print_ast, visit
    from graphql.language import Visitor

    found: list[str] = []

    class Find(Visitor):
        def enter_field(self, node: FieldNode, *_):
            if node.name.value == connection and not found:
                nodes = next(s for s in node.selection_set.selections if s.name.value == "nodes")
                found.append(print_ast(nodes))

    visit(parse(document), Find())
    return found[0]


@pytest.mark.parametrize(("first", "page", "connection"), PAGES, ids=lambda v: str(v))
def test_a_further_page_selects_what_the_first_page_selects(first, page, connection):
    from clients.shopify import load_document

    assert _nodes_selection(load_document(page), connection) == \
        _nodes_selection(load_document(first), connection)
