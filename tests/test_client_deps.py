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
