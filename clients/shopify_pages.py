"""Shopify's size limits, kept: connections read on page by page with cursors, and input lists
cut into pieces of at most 250 (Shopify refuses longer input arrays, MAX_INPUT_SIZE_EXCEEDED)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from clients.shopify import shopify

MAX_INPUT = 250  # shopify.dev "Shopify API limits": input arrays hold at most 250 items


def chunks(items: list, size: int = MAX_INPUT) -> Iterator[list]:
    """`items` in consecutive pieces of at most `size` (none for an empty list)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def read_on(domain: str, document: str, variables: dict, connection: Callable[[dict], dict],
            page: dict) -> dict:
    """`page` of a connection completed with every further page `document` reads after it.

    `connection` picks the connection out of the document's data. Calls are made only while
    Shopify says there is a next page, so a connection that fits one page costs nothing more.
    """
    nodes, info = list(page["nodes"]), page["pageInfo"]
    while info["hasNextPage"]:
        data = shopify().graphql(domain, document, {**variables, "after": info["endCursor"]})
        more = connection(data)
        nodes += more["nodes"]
        info = more["pageInfo"]
    return {**page, "nodes": nodes, "pageInfo": info}
