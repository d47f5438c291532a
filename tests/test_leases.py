"""The app's Redis lock (jobs/leases.py LeasedLock): one SET NX PX to take it, a script by its
digest to let go, redis-py's LockError family where callers rely on it."""
from __future__ import annotations

import time

import pytest
from redis.exceptions import ConnectionError, LockError, LockNotOwnedError

from jobs import leases
from jobs.leases import LeasedLock, Renewer
from jobs.queue import job_id, jobs


@pytest.fixture
def name(app) -> str:
    return job_id("test-leased-lock", time.time())


def lock(name: str, wait: float = 0, renewer: Renewer | None = None) -> LeasedLock:
    return LeasedLock(jobs().connection, name, timeout=60, blocking_timeout=wait,
                      renewer=renewer or leases.RENEWER)


def test_one_holder_at_a_time_on_a_lease_and_free_at_once_when_released(name):
    held = lock(name)
    assert held.acquire() and held.owned()
    assert 0 < jobs().connection.pttl(name) <= leases.LEASE_SECONDS * 1000
    assert not lock(name).acquire()
    started = time.monotonic()
    assert not lock(name, wait=0.3).acquire()  # waited, then gave up
    assert time.monotonic() - started >= 0.3
    held.release()
    assert not held.owned() and jobs().connection.get(name) is None
    with lock(name) as again:
        assert again.owned()


def test_a_lost_lease_is_lock_not_owned_and_another_holders_lock_stays(name):
    held = lock(name)
    assert held.acquire()
    jobs().connection.delete(name)  # expired meanwhile (a stall, a Redis restart)
    other = lock(name)
    assert other.acquire()
    assert not held.owned()
    with pytest.raises(LockNotOwnedError):
        held.release()
    assert other.owned()  # the late release did not free the new holder's lock
    with pytest.raises(LockError):
        held.release()  # not held any more
    other.release()


def test_released_by_eval_when_redis_forgot_the_script(name, monkeypatch):
    """After a Redis restart Redis knows no script: NOSCRIPT, then the script itself."""
    monkeypatch.setattr(leases.RELEASE, "sha", "0" * 40)
    monkeypatch.setattr(leases.RENEW, "sha", "0" * 40)
    held = lock(name)
    assert held.acquire()
    assert held._renew()
    held.release()
    assert jobs().connection.get(name) is None


def test_renewal_keeps_the_lease_and_stops_once_it_is_lost(name, monkeypatch):
    monkeypatch.setattr(leases, "LEASE_SECONDS", 1)
    renewer = Renewer(every=0.2)
    held = lock(name, renewer=renewer)
    assert held.acquire()
    time.sleep(1.5)  # past its lease: renewed meanwhile
    assert held.owned() and held.kept()
    jobs().connection.delete(name)
    deadline = time.monotonic() + 2
    while renewer.holds(held._handle) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not renewer.holds(held._handle) and not held.kept()  # the renewal found it lost
    with pytest.raises(LockNotOwnedError):
        held.release()


def test_a_lease_redis_has_not_confirmed_lately_is_not_kept(name, monkeypatch):
    """Renewals that cannot reach Redis are tolerated (the next round tries again) but confirm
    nothing: once the lease may have run out, the holder no longer counts on it."""
    monkeypatch.setattr(leases, "LEASE_SECONDS", 1)
    renewer = Renewer(every=0.1)
    held = lock(name, renewer=renewer)
    assert held.acquire() and held.kept()

    def away(*args, **kwargs):
        raise ConnectionError("Redis away")

    monkeypatch.setattr(leases, "RENEW", away)
    time.sleep(1)  # past the lease less one renewal interval: no renewal reached Redis
    assert renewer.holds(held._handle)  # still renewed, in case Redis comes back
    assert not held.kept()


def test_a_lease_is_not_kept_after_a_freeze_longer_than_it(name):
    """A process frozen past its lease (its renewing thread too) may have lost it."""
    held = lock(name, renewer=Renewer())  # its first renewal comes after the test
    assert held.acquire() and held.kept()
    held._confirmed -= leases.LEASE_SECONDS  # as after a freeze: no renewal ran meanwhile
    assert not held.kept()
    held.release()
