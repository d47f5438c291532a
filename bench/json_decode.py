"""CPU of decoding one large Ongoing GET /orders answer (125 orders, one full page, in the
sandbox's own GetOrderModel shape): the stdlib's json against jsoncodec (orjson).

    .venv/bin/python -m bench.json_decode [--orders 125] [--rounds 300]
"""
from __future__ import annotations

import argparse
import json
import time

import jsoncodec
from sandbox.ongoing.store import Account, Order, order_model


def orders_answer(count: int) -> bytes:
    """GET /orders's body for `count` two-line orders, as the sandbox serves it."""
    account = Account("sandbox", "wh", 1, "user", "secret")
    for sku in ("SKU-1", "SKU-2"):
        account.add_article(sku, f"Article {sku} – blå", 10)
    consignee = {"customerNumber": "CN1", "name": "Åsa Kund", "address1": "Gatan 1",
                 "postCode": "11122", "city": "Stockholm", "countryCode": "SE"}
    orders = []
    for n in range(count):
        body = {"orderNumber": f"#{1000 + n}-2", "deliveryDate": "2026-11-01T00:00:00Z",
                "consignee": consignee, "goodsOwnerOrderId": f"gid://shopify/Order/{n}"}
        lines = [{"id": 10 * n + i, "rowNumber": str(i + 1), "articleNumber": sku,
                  "ordered": 1, "picked": 0, "returned": 0,
                  "source": {"externalId": f"gid://shopify/LineItem/{n}{i}"}}
                 for i, sku in enumerate(("SKU-1", "SKU-2"))]
        orders.append(order_model(account, Order(100000 + n, f"#{1000 + n}-2", body, lines, 200)))
    return json.dumps(orders).encode()


def _cpu_per_call(decode, data: bytes, rounds: int) -> float:
    started = time.process_time()
    for _ in range(rounds):
        decode(data)
    return (time.process_time() - started) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=125)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    data = orders_answer(args.orders)
    assert jsoncodec.loads(data) == json.loads(data)
    for name, decode in (("stdlib json.loads", json.loads), ("jsoncodec.loads", jsoncodec.loads)):
        seconds = _cpu_per_call(decode, data, args.rounds)
        print(f"{name:<20} {len(data) // 1024:>5} KiB  {seconds * 1e6:8.0f} µs CPU/answer")  # noqa: T201


if __name__ == "__main__":
    main()
