"""A `serial` block (clients/ongoing_accounts.py): a step's consecutive Ongoing calls take the
goods owner's Redis lock once, let it go before a retry's backoff sleep, and hand it to the
next caller as soon as the block ends."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from clients import ongoing as ongoing_module
from clients.deps import NO_METRICS
from clients.ongoing import OngoingClient, OngoingCredentials, OngoingNetworkError
from clients.ongoing_accounts import EXTENSION, Accounts, serial
from clients.transport import Transport, TransportError


class CountedLocks:
    """The app's Redis locks, counting the acquires and releases made through them."""

    def __init__(self, inner):
        self.inner, self.acquired, self.released = inner, 0, 0

    def lock(self, name: str, *, timeout: float, blocking_timeout: float):
        lock = self.inner.lock(name, timeout=timeout, blocking_timeout=blocking_timeout)
        counts = self

        class Counted:
            def acquire(self, blocking: bool = True) -> bool:
                counts.acquired += 1
                return lock.acquire(blocking)

            def release(self) -> None:
                counts.released += 1
                lock.release()

            def kept(self) -> bool:
                return lock.kept()

        return Counted()


@pytest.fixture
def accounts(app):
    from jobs.queue import jobs

    return Accounts(CountedLocks(jobs()), NO_METRICS)


@pytest.fixture
def make_client(ongoing, ongoing_account, accounts):
    def make(http: Transport | None = None) -> OngoingClient:
        a = ongoing_account
        credentials = OngoingCredentials("api", a.warehouse, a.goods_owner_id, a.username,
                                         a.password)
        return OngoingClient(credentials, url_template=ongoing.url_template, backoff=0.01,
                             http=http or accounts.http, serializer=accounts.serializer)

    return make


def held(client: OngoingClient) -> bool:
    from jobs.queue import jobs

    return jobs().connection.exists(f"swapline:ongoing:{client.credentials.key}") == 1


def test_a_block_of_calls_takes_the_lock_once(accounts, make_client):
    client = make_client()
    for _ in range(3):  # outside a block: once per call, as before
        client.list_warehouses()
    assert (accounts.locks.acquired, accounts.locks.released) == (3, 3)
    with accounts.serial(client.credentials.key):
        assert not held(client)  # taken by the first call, not before
        client.list_warehouses()
        client.list_order_statuses()
        with accounts.serial(client.credentials.key):  # an inner block joins the outer one
            client.list_return_order_statuses()
        assert held(client)
        client.list_warehouses()
    assert (accounts.locks.acquired, accounts.locks.released) == (4, 4)
    assert not held(client)


def test_the_lock_is_held_between_a_blocks_calls_against_other_machines(
        app, accounts, make_client, monkeypatch):
    from jobs.queue import Jobs  # another process's Redis connection

    monkeypatch.setattr("clients.ongoing_accounts.LOCK_WAIT", 0.05)
    settings = app.config["SETTINGS"]
    there = Accounts(Jobs(settings.redis_url, settings.instance_path), NO_METRICS)
    client = make_client()
    with accounts.serial(client.credentials.key):
        client.list_warehouses()
        with pytest.raises(OngoingNetworkError) as caught:  # between two calls of the block
            with there.serializer(client.credentials.key):
                pass
        assert caught.value.never_sent
        client.list_warehouses()
    with there.serializer(client.credentials.key):  # free once the block ended
        pass


@pytest.mark.parametrize("status", [503, 429])
def test_a_failed_attempt_lets_go_before_the_backoff_sleep(accounts, make_client, ongoing,
                                                           monkeypatch, status):
    client = make_client()
    during_sleep = []

    def sleep(seconds: float) -> None:
        during_sleep.append(held(client))

    monkeypatch.setattr(ongoing_module, "time", SimpleNamespace(
        sleep=sleep, perf_counter=time.perf_counter))
    with accounts.serial(client.credentials.key):
        client.list_warehouses()
        ongoing.fail_next(1, status, retry_after=0 if status == 429 else None)
        client.list_order_statuses()  # fails once, sleeps, succeeds
        assert held(client)  # taken again by the retry, and kept
        client.list_warehouses()
    assert during_sleep == [False]
    assert (accounts.locks.acquired, accounts.locks.released) == (2, 2)


def test_a_network_failure_lets_go_before_the_backoff_sleep(accounts, make_client, monkeypatch):
    calls = []

    class Flaky(Transport):
        def request(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise TransportError("connection refused", network=True, never_sent=True)
            return super().request(*args, **kwargs)

    client = make_client(http=Flaky())
    during_sleep = []
    monkeypatch.setattr(ongoing_module, "time", SimpleNamespace(
        sleep=lambda seconds: during_sleep.append(held(client)), perf_counter=time.perf_counter))
    with accounts.serial(client.credentials.key):
        client.list_warehouses()
        client.list_warehouses()
    assert during_sleep == [False] and len(calls) == 3
    assert (accounts.locks.acquired, accounts.locks.released) == (2, 2)


def test_an_error_in_the_block_lets_go(accounts, make_client):
    client = make_client()
    with pytest.raises(ZeroDivisionError):
        with accounts.serial(client.credentials.key):
            client.list_warehouses()
            1 / 0  # noqa: B018 - e.g. a step's NeedsAttention between two calls
    assert not held(client) and accounts.locks.released == 1


def test_a_waiting_caller_gets_the_lock_as_soon_as_the_block_ends(accounts, make_client):
    starts: list[tuple[str, float]] = []

    class Recording(Transport):
        def request(self, method, url, **kwargs):
            starts.append((threading.current_thread().name, time.monotonic()))
            return super().request(method, url, **kwargs)

    client = make_client(http=Recording())
    in_block, ended = threading.Event(), []

    def block() -> None:
        with accounts.serial(client.credentials.key):
            client.list_warehouses()
            in_block.set()
            time.sleep(0.5)  # local work between two calls: the lock stays with the block
            client.list_order_statuses()
        ended.append(time.monotonic())

    def other() -> None:
        in_block.wait()
        client.list_warehouses()

    threads = [threading.Thread(target=block, name="block"),
               threading.Thread(target=other, name="other")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [name for name, _ in starts] == ["block", "block", "other"]
    assert 0 <= starts[2][1] - ended[0] < 0.3  # its next try after the release


def test_serial_of_an_apps_client_uses_the_apps_lock(app, ongoing_account, monkeypatch):
    from clients.ongoing_accounts import client_for
    from jobs.queue import jobs

    counted = CountedLocks(jobs())
    monkeypatch.setattr(app.extensions[EXTENSION], "locks", counted)
    a = ongoing_account
    client = client_for({"ongoing_server": "api", "ongoing_warehouse": a.warehouse,
                         "goods_owner_id": a.goods_owner_id, "ongoing_username": a.username,
                         "password": a.password})
    with serial(client):
        client.list_warehouses()
        client.list_order_statuses()
    assert (counted.acquired, counted.released) == (1, 1)


def test_each_step_takes_the_goods_owners_lock_once(world, monkeypatch):
    """create makes six Ongoing calls, release two, fulfil one: one lock each."""
    from jobs.queue import jobs

    taken: list[str] = []
    connection = jobs().connection
    original = connection.execute_command

    def execute(*args, **kwargs):
        if args[0] == "SET" and str(args[1]).startswith("swapline:ongoing:"):
            taken.append(args[1])
        return original(*args, **kwargs)

    world.setup()  # the settings page's connection check makes its own calls
    monkeypatch.setattr(connection, "execute_command", execute)
    world.approve()
    world.run_jobs()
    assert world.exchange().state == "parked" and len(taken) == 1
    world.close()
    world.run_jobs()
    assert world.exchange().state == "released" and len(taken) == 2
    world.warehouse_moves(450, waybill="PN1")
    world.run_jobs()
    assert world.exchange().state == "completed" and len(taken) == 3


def test_a_lock_lost_within_a_block_is_logged_and_taken_again_for_the_next_call(
        app, make_client, caplog):
    from jobs.leases import LeasedLock, Renewer
    from jobs.queue import jobs

    renewer = Renewer(every=0.05)

    class FastRenewedLocks:
        def lock(self, name: str, *, timeout: float, blocking_timeout: float) -> LeasedLock:
            return LeasedLock(jobs().connection, name, timeout=timeout,
                              blocking_timeout=blocking_timeout, renewer=renewer)

    accounts = Accounts(FastRenewedLocks(), NO_METRICS)
    client = make_client()
    client.serializer = accounts.serializer
    key = f"swapline:ongoing:{client.credentials.key}"
    with accounts.serial(client.credentials.key):
        client.list_warehouses()
        jobs().connection.set(key, "another holder")  # ours expired; someone took it
        time.sleep(0.3)  # the renewal finds it lost
        jobs().connection.delete(key)  # the other holder is done
        client.list_warehouses()
        assert jobs().connection.get(key) not in (None, b"another holder")  # ours again
    assert "lock lost within a block" in caplog.text
    assert "expired before release" in caplog.text
    assert jobs().connection.get(key) is None


def test_a_lock_redis_stopped_confirming_is_taken_again_before_the_next_call(
        app, make_client, monkeypatch):
    """While Redis is unreachable a renewal fails quietly; once the lease may have run out (and
    another machine taken the lock) the block takes the lock again before its next call, which
    fails as never sent while Redis stays away: Ongoing is not called outside the lock."""
    import redis

    from jobs import leases
    from jobs.leases import LeasedLock, Renewer

    monkeypatch.setattr(leases, "LEASE_SECONDS", 1)
    monkeypatch.setattr("clients.ongoing_accounts.LOCK_WAIT", 0.05)
    connection = redis.Redis.from_url(app.config["SETTINGS"].redis_url)
    renewer = Renewer(every=0.1)

    class OwnConnectionLocks:
        def lock(self, name: str, *, timeout: float, blocking_timeout: float) -> LeasedLock:
            return LeasedLock(connection, name, timeout=timeout,
                              blocking_timeout=blocking_timeout, renewer=renewer)

    calls = []

    class Recording(Transport):
        def request(self, *args, **kwargs):
            calls.append(1)
            return super().request(*args, **kwargs)

    def away(*args, **kwargs):
        raise redis.ConnectionError("Redis away")

    accounts = Accounts(OwnConnectionLocks(), NO_METRICS)
    client = make_client(http=Recording())
    client.serializer = accounts.serializer
    with accounts.serial(client.credentials.key):
        client.list_warehouses()
        monkeypatch.setattr(connection, "execute_command", away)
        time.sleep(1)  # renewals failed past the lease less one renewal interval
        with pytest.raises(OngoingNetworkError) as caught:
            client.list_warehouses()
        assert caught.value.never_sent
    assert len(calls) == 1
    connection.close()
