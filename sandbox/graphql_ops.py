"""The GraphQL operations the sandbox answers, by operation name, from its in-memory store."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from functools import cache
from pathlib import Path

from graphql import DocumentNode, GraphQLSchema, build_client_schema, validate
from graphql.type.validate import validate_schema

ROOT = Path(__file__).resolve().parent.parent
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


def schema_errors(document: DocumentNode) -> list[str]:
    """Validation messages for a document against the Admin schema (none when no schema copy)."""
    schema = admin_schema()
    return [e.message for e in validate(schema, document)] if schema else []


def shop_details(store, shop, variables: dict) -> dict:
    number = int(hashlib.sha256(shop.domain.encode()).hexdigest()[:10], 16)
    return {"shop": {"id": f"gid://shopify/Shop/{number}", "name": shop.name,
                     "myshopifyDomain": shop.domain, "currencyCode": shop.currency,
                     "ianaTimezone": "Europe/Stockholm"}}


OPERATIONS = {
    "ShopDetails": shop_details,
}
