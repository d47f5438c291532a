"""The sandbox Shopify's demo endpoint, the one call it answers beyond Shopify's own.

`make demo` only (SWAPLINE_SANDBOX=1): *Run a sample exchange* asks the sandbox Shopify at
SHOPIFY_API_ORIGIN for a customer's order and a return with an exchange, authenticated like an
Admin API call. Shopify's returns/approve webhook then reaches the app as any other would.
"""
from __future__ import annotations

import requests
from flask import current_app

from clients.shopify import SHOP_HEADER
from clients.shopify_tokens import access_token

SAMPLE_PATH = "/sandbox/sample-exchange"


def start_sample_exchange(shop_domain: str, kind: str = "exchange") -> dict | None:
    """A sample return with an exchange for the shop: {order, return_id}; None when the sandbox
    runs no sample scenario for it. `kind`: "exchange", or "out_of_stock" (an item the warehouse
    has none of)."""
    origin = current_app.config["SETTINGS"].shopify_origin
    response = requests.post(f"{origin}{SAMPLE_PATH}", timeout=10, json={"kind": kind}, headers={
        SHOP_HEADER: shop_domain, "X-Shopify-Access-Token": access_token(shop_domain)})
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()
