"""Sandbox Shopify: token exchange, Admin GraphQL, the admin stand-in and signed webhooks.

`server` runs it; `store` holds its data, `hooks` the test hooks, `graphql_*` the operations,
`scopes` and `cost` Shopify's access and rate rules.
"""
from sandbox.shopify.server import (
    SandboxShopify,
    Store,
    mint_session_token,
    sign_webhook,
    webhook_headers,
)

__all__ = ["SandboxShopify", "Store", "mint_session_token", "sign_webhook", "webhook_headers"]
