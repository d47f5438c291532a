"""The exchange items Swapline sent to Ongoing against what the Shopify return asks for now.

Each item keeps the Ongoing row number it was sent on (`row`; items from before rows were stored
are numbered by their place in the list, which never changed then), so an edited return changes
the same rows of the Ongoing order and a removed item's row goes to 0.
"""
from __future__ import annotations


def numbered(items: list[dict]) -> list[tuple[int, dict]]:
    """(Ongoing row number, item) for each item."""
    return [(item.get("row", n), item) for n, item in enumerate(items, start=1)]


def current_items(items: list[dict], ret: dict) -> list[dict]:
    """The items as the return has them now: processed + unprocessed units of each exchange line
    (removed units count in Shopify's `quantity`; fully removed lines are not listed)."""
    nodes = {n["id"]: n for n in ret["exchangeLineItems"]["nodes"]}
    now = []
    for row, item in numbered(items):
        node = nodes.get(item["exchange_line_item_id"])
        quantity = node["processedQuantity"] + node["unprocessedQuantity"] if node else 0
        if quantity > 0:
            now.append({**item, "row": row, "quantity": quantity})
    return now


def changed(before: list[dict], after: list[dict]) -> bool:
    key = [(i["exchange_line_item_id"], i["quantity"]) for i in before]
    return key != [(i["exchange_line_item_id"], i["quantity"]) for i in after]


def describe(items: list[dict]) -> str:
    return ", ".join(f"{i['quantity']} × {i['sku']}" for i in items) or "none"


def order_lines(items: list[dict], before: list[dict] = ()) -> list[dict]:
    """Ongoing orderLines for `items`; rows of `before` no longer wanted are sent with 0 items
    (whether Ongoing drops lines left out of a PUT is not documented, a 0 is plain either way)."""
    rows = numbered(items)
    kept = {row for row, _ in rows}
    rows += [(row, {**item, "quantity": 0}) for row, item in numbered(list(before))
             if row not in kept]
    return [{"rowNumber": str(row), "articleNumber": item["sku"],
             "numberOfItems": item["quantity"]} for row, item in sorted(rows)]
