"""CPU per outside call: this process's CPU (time.process_time) per Shopify GraphQL call, per
Ongoing REST call and per goods-owner lease, against the sandboxes run in a child process (their
CPU is not counted).

    .venv/bin/python -m bench.client_calls [--calls 2000] [--redis redis://127.0.0.1:6379/0]

The Ongoing calls hold the app's serializer: a Redis lease when --redis is given (as in the
app), else this process's lock (the transport alone).
"""
from __future__ import annotations

import argparse
import multiprocessing
import time

from cryptography.fernet import Fernet

from clients.deps import ProcessLocks
from clients.ongoing import OngoingClient, OngoingCredentials
from clients.ongoing_accounts import Accounts
from clients.shopify import Shopify
from config import load_settings

SHOP = "bench-shop.myshopify.com"
KEY, SECRET = "bench-key", "bench-secret-" + "0" * 64


def _sandboxes(pipe) -> None:
    from sandbox.ongoing import SandboxOngoing
    from sandbox.shopify import SandboxShopify

    shopify, ongoing = SandboxShopify(KEY, SECRET).start(), SandboxOngoing().start()
    shopify.store.add_shop(SHOP)
    shopify.store.set_bucket(SHOP, maximum=1e12, restore=1e12)  # never throttled
    token = shopify.store.issue_pair(SHOP)["access_token"]
    ongoing.add_account("benchwh", 7, "WSIbench", "bench-pass")
    pipe.send((shopify.origin, token, ongoing.url_template))
    pipe.recv()  # until the parent is done


def _per_call(calls: int, call) -> float:
    """µs of this process's CPU per call (after a few warm-up calls)."""
    for _ in range(20):
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--redis", help="hold a Redis lease per Ongoing call, as the app does")
    args = parser.parse_args()
    mine, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_sandboxes, args=(theirs,),
                                                        daemon=True)
    child.start()
    origin, token, template = mine.recv()
    try:
        settings = load_settings({"SWAPLINE_DEV": "1", "SHOPIFY_API_KEY": KEY,
                                  "SHOPIFY_API_SECRET": SECRET, "SHOPIFY_API_ORIGIN": origin,
                                  "SWAPLINE_ENCRYPTION_KEYS": Fernet.generate_key().decode()})
        shopify = Shopify(settings)
        locks = ProcessLocks()
        if args.redis:
            from jobs.queue import Jobs
            locks = Jobs(args.redis, settings.instance_path)
        accounts = Accounts(locks, shopify.metrics)
        ongoing = OngoingClient(OngoingCredentials("api", "benchwh", 7, "WSIbench", "bench-pass"),
                                url_template=template, http=accounts.http,
                                serializer=accounts.serializer)
        lines = [("shopify graphql (ShopDetails)",
                  lambda: shopify._graphql_paced(SHOP, "ShopDetails", None, token)),
                 ("ongoing GET /warehouses", ongoing.list_warehouses),
                 ("ongoing PATCH status", lambda: _patch(ongoing))]
        if args.redis:
            lines.append(("goods-owner lease alone", lambda: _lease(accounts)))
        for name, call in lines:
            print(f"{name:32s} {_per_call(args.calls, call):8.0f} µs CPU/call")  # noqa: T201
    finally:
        mine.send("done")
        child.join()


def _patch(ongoing: OngoingClient) -> None:
    try:
        ongoing.set_order_status(1, 300)
    except Exception:  # noqa: BLE001 - no such order: an error answer is a call all the same
        pass


def _lease(accounts: Accounts) -> None:
    with accounts.serializer("bench/lease/7"):
        pass


if __name__ == "__main__":
    main()
