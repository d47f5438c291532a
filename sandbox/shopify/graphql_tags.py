"""tagsAdd on an order, as live Shopify answers it (airhorns/shopify-draft-proxy recordings,
2025-01: products/tags-add-multi-resource.json, products/tags-normalization-parity.json,
admin-platform/admin-platform-tags-not-found.json; limits from 2026-04
orders/draftOrder-tag-validation.json and 2025-01 customers/customer-tag-note-limits-parity.json).

- Each given tag is split at commas and trimmed ("blue, green" and ["blue,green"] add two tags).
- A tag already on the order in another case is not added again; the order keeps its spelling.
- The order's tags come back sorted without regard to case (["A", "b", "Red"]).
- An unknown order is a userError on ["id"]; the recordings show "Product does not exist" and
  "Customer does not exist", so an order's is taken to read "Order does not exist".
- Limits (recorded on draft orders and customers, applied here to orders): a tag over 40
  characters, or more than 250 tags on the order, is a userError and nothing changes.
- Another resource type (product, customer, article, draft order) is refused loudly: Swapline
  tags orders only, and the sandbox models no other tags.
"""
from __future__ import annotations

from sandbox.shopify.graphql_fulfillment import user_error
from sandbox.shopify.store import GID, Refused, gid

MAX_LENGTH, MAX_TAGS = 40, 250


def split(given: list[str]) -> list[str]:
    """The tags a tagsAdd input means: split at commas, trimmed, empties dropped."""
    return [part.strip() for value in given for part in value.split(",") if part.strip()]


def merged(existing: list[str], new: list[str]) -> list[str]:
    """Existing tags plus the new ones not already there in any case, sorted without case."""
    seen = {tag.lower() for tag in existing}
    tags = list(existing)
    for tag in new:
        if tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    return sorted(tags, key=str.lower)


def tags_add(store, shop, args: dict) -> dict:
    match = GID.match(str(args["id"]))
    if match and match.group(1) != "Order":
        raise Refused(f"the sandbox tags orders only, not {match.group(1)}")
    order = shop.get("orders", args["id"], "Order")
    if order is None:
        return {"node": None, "userErrors": [user_error("Order does not exist", ["id"])]}
    new = split(args["tags"])
    for index, tag in enumerate(new):
        if len(tag) > MAX_LENGTH:
            return {"node": None, "userErrors": [user_error(
                f"Title Tag exceeds the maximum length of {MAX_LENGTH} characters",
                ["tags", str(index)])]}
    tags = merged(order.tags, new)
    if len(tags) > MAX_TAGS:
        return {"node": None, "userErrors": [user_error(
            f"Tags cannot be more than {MAX_TAGS}", ["tags"])]}
    order.tags = tags
    return {"node": {"__typename": "Order", "id": gid("Order", order.id), "name": order.name,
                     "tags": list(order.tags)}, "userErrors": []}
