"""Where the exchange ships: the order's shipping address in Shopify, else the consignee of the
original order in Ongoing.

Shopify withholds name, address, email and phone from an app without Protected customer data
Level 2 approval: the fields come back null, with or without an error beside them
(shopify.dev/docs/apps/launch/protected-customer-data; README "Protected customer data"). An
Ongoing order without a street, town, postcode and country cannot be shipped, so such an address
is never sent: the original order's consignee is, or a person is asked.
"""
from __future__ import annotations

from dataclasses import dataclass

from clients.shopify_admin import WITHHELD
from jobs.exchange_rules import NeedsAttention

SHOPIFY_NEEDED = {"address1": "street", "city": "city", "zip": "postcode",
                  "countryCodeV2": "country"}
ONGOING_NEEDED = ("address1", "postCode", "city", "countryCode")
REDACTED = ("name", "address1", "zip")  # all null together: Shopify's redaction, not a typo


@dataclass
class Consignee:
    """The consignee fields of PUT /orders, and why they are not Shopify's (empty when they are)."""

    fields: dict
    source: str = ""


def consignee_for(order: dict, original: dict | None, order_name: str) -> Consignee:
    """Shopify's address when it is complete; else the original Ongoing order's, noted why."""
    address = order.get("shippingAddress") or {}
    theirs = (original or {}).get("consignee") or {}
    missing = [label for name, label in SHOPIFY_NEEDED.items() if not address.get(name)]
    if not missing:  # a name Shopify withholds alone is taken from the original when it has one
        return Consignee({"name": address.get("name") or theirs.get("name") or "Customer",
                          "address1": address["address1"], "address2": address.get("address2"),
                          "postCode": address["zip"], "city": address["city"],
                          "countryCode": address["countryCodeV2"],
                          "countryStateCode": address.get("provinceCode")})
    why = _why(order, missing)
    if not all(theirs.get(name) for name in ONGOING_NEEDED):
        raise NeedsAttention(f"{why}, and the original order {order_name} is not in Ongoing "
                             "with an address to ship to instead. "
                             f"{_remedy(order)}, then press Retry.")
    number = (original.get("orderInfo") or {}).get("orderNumber") or order_name
    return Consignee({"name": theirs.get("name") or "Customer", "address1": theirs["address1"],
                      "address2": theirs.get("address2"), "postCode": theirs["postCode"],
                      "city": theirs["city"], "countryCode": theirs["countryCode"],
                      "countryStateCode": theirs.get("countryStateCode")},
                     f"address copied from the original Ongoing order {number}: {why}")


def _withheld(order: dict) -> bool:
    address = order.get("shippingAddress")
    return bool(order.get("customerDataWithheld")) or \
        (address is not None and not any(address.get(f) for f in REDACTED))


def _why(order: dict, missing: list[str]) -> str:
    if _withheld(order):
        return WITHHELD
    if order.get("shippingAddress") is None:
        return ("Shopify gave no shipping address for this order (it has none, or Shopify "
                "withholds it: Swapline needs Protected customer data Level 2 approved)")
    return f"the order's shipping address in Shopify has no {', '.join(missing)}"


def _remedy(order: dict) -> str:
    if _withheld(order) or order.get("shippingAddress") is None:
        return "Once Protected customer data is approved for Swapline (or the shipping address " \
               "is set on the order in Shopify admin)"
    return "Complete the shipping address on the order in Shopify admin"
