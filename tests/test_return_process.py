"""returnProcess answering no return and no userErrors (clients/shopify_admin.py
`process_exchange_items`): the return is read again, the exchange goes on."""
from __future__ import annotations

from clients.shopify import Shopify


def test_a_null_return_process_reads_the_return_again(world, monkeypatch):
    real = Shopify.graphql

    def null_return_process(self, shop_domain, document, variables=None):
        data = real(self, shop_domain, document, variables)
        if document == "ReturnProcessExchange":  # processed in the sandbox, answered null
            return {**data, "returnProcess": None}
        return data

    monkeypatch.setattr(Shopify, "graphql", null_return_process)
    world.setup().approve()
    world.run_jobs()
    exchange = world.exchange()
    assert exchange.state == "parked", exchange.attention_reason
    assert exchange.line_item_gids  # the new order line items, from the second read
    assert world.store.count("ReturnForExchange", world.domain) == 2
