"""The clients take their locks and metrics from the app (clients/deps.py), and work without."""
from __future__ import annotations

import pytest

from clients.deps import NO_METRICS, ProcessLocks
from clients.ongoing import OngoingNetworkError
from clients.ongoing_accounts import Accounts, shared_serializer


def test_process_locks_serialise_one_name_and_give_up_after_the_wait():
    locks = ProcessLocks()
    held = locks.lock("a", timeout=1, blocking_timeout=0.05)
    assert held.acquire()
    assert not locks.lock("a", timeout=1, blocking_timeout=0.05).acquire()
    assert locks.lock("b", timeout=1, blocking_timeout=0.05).acquire()  # another name is free
    with pytest.raises(TimeoutError):
        with locks.lock("a", timeout=1, blocking_timeout=0.05):
            pass
    held.release()
    with locks.lock("a", timeout=1, blocking_timeout=0.05) as again:
        assert again.name == "a"


def test_a_goods_owner_busy_past_the_wait_is_a_retriable_never_sent_error(monkeypatch):
    locks = ProcessLocks()
    monkeypatch.setattr("clients.ongoing_accounts.LOCK_WAIT", 0.05)
    accounts = Accounts(locks, NO_METRICS)
    with accounts.serializer("api/wh/1"):
        with pytest.raises(OngoingNetworkError) as caught:
            with shared_serializer(locks, "api/wh/1"):
                pass
    assert caught.value.retriable and caught.value.never_sent


def test_the_app_hands_its_redis_locks_and_metrics_to_every_client(app):
    from clients import ongoing_accounts
    from clients.shopify import shopify
    from jobs import metrics
    from jobs.queue import jobs

    accounts = app.extensions[ongoing_accounts.EXTENSION]
    assert shopify().tokens.locks is jobs() and accounts.locks is jobs()
    assert shopify().metrics is metrics and accounts.metrics is metrics


@pytest.fixture
def other_machine(base_config, migrated):
    """A second app from the same configuration: a web or worker process on another machine,
    sharing only PostgreSQL and Redis with the first."""
    from app import create_app

    other = create_app(base_config)
    yield other
    with other.app_context():
        from models import db

        db.dispose()


def test_create_app_hands_redis_locks_to_the_clients_so_machines_exclude_each_other(
        app, other_machine, monkeypatch):
    """One call at a time per goods owner and one token refresh per shop hold across machines:
    a lock taken through one app's clients is held against the other app's clients."""
    from clients import ongoing_accounts
    from clients.shopify_tokens import tokens
    from jobs.leases import LeasedLock  # a Redis lock on a renewed lease

    monkeypatch.setattr("clients.ongoing_accounts.LOCK_WAIT", 0.05)
    here = app.extensions[ongoing_accounts.EXTENSION]
    there = other_machine.extensions[ongoing_accounts.EXTENSION]
    assert here.locks is not there.locks  # two processes, nothing in common but Redis
    with here.serializer("api/wh/1"):
        with pytest.raises(OngoingNetworkError):
            with there.serializer("api/wh/1"):
                pass
        with there.serializer("api/wh/2"):  # another goods owner is free
            pass
    refresh = "swapline:token-refresh:a-shop.myshopify.com"
    held = tokens().locks.lock(refresh, timeout=5, blocking_timeout=0.05)
    assert isinstance(held, LeasedLock) and held.acquire()
    try:
        with other_machine.app_context():
            assert not tokens().locks.lock(refresh, timeout=5, blocking_timeout=0.05).acquire()
    finally:
        held.release()


def test_the_clients_init_app_takes_no_process_local_default(app):
    """Inside the app the locks must be handed in: leaving them out is an error, not a
    silent lock of one process."""
    from flask import Flask

    from clients import ongoing_accounts, shopify

    bare = Flask("bare")
    bare.config["SETTINGS"] = app.config["SETTINGS"]
    with pytest.raises(TypeError):
        ongoing_accounts.init_app(bare)
    with pytest.raises(TypeError):
        shopify.init_app(bare)


def test_the_apps_ongoing_clients_share_one_kept_alive_connection(
        app, ongoing, ongoing_account):
    from clients.ongoing_accounts import EXTENSION, client_for

    account = ongoing_account
    values = {"ongoing_server": "api", "ongoing_warehouse": account.warehouse,
              "goods_owner_id": account.goods_owner_id, "ongoing_username": account.username,
              "password": account.password}
    http = app.extensions[EXTENSION].http
    opened = []
    for _ in range(2):  # two clients, as two steps build them
        client = client_for(values)
        assert client.http is http
        client.list_warehouses()
        opened.append(http.last_connection())
        client.list_order_statuses()
        opened.append(http.last_connection())
    ports = {port for port, _, _ in opened}
    assert len(ports) == 1 and [n for _, _, n in opened[1:]] == [0, 0, 0]  # one connection
