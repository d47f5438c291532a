"""Ongoing clients as the app builds them: URL template from the config, one call at a time per
goods owner across every process and machine (a lock from the app's Redis), latencies to
the app's metrics, and the merchant-facing connection messages.

A step whose Ongoing calls come one after another (only local database writes between them)
makes them inside `with serial(client):`, so the goods owner's lock is taken once for the block
rather than once per call. The block never holds it across anything else: it is put inside no
Shopify call and no sleep, and a failed attempt lets go before the retry's backoff sleep (the
next call takes it again)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from flask import Flask, current_app
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clients.deps import NO_METRICS, Lock, Locks, Metrics
from clients.ongoing import (
    OngoingAuthError,
    OngoingClient,
    OngoingCredentials,
    OngoingError,
    OngoingNetworkError,
    OngoingNotFound,
    OngoingRateLimited,
    OngoingServerError,
)
from clients.transport import Transport
from models.settings import ShopSettings

EXTENSION = "swapline.ongoing"

log = logging.getLogger(__name__)
# A lone call holds the lock per attempt, at most connect + read timeout and a margin. The locks are
# renewed while held (jobs/leases.py): a worker killed mid-call leaves it free within seconds.
# Other callers wait up to LOCK_WAIT for their turn, well inside a job's timeout (120 s) so the
# wait fails as a retriable error, not as a killed job.
LOCK_TIMEOUT = 30
LOCK_WAIT = 60
# A `serial` block keeps it from one call to the next, so its longest hold is a job's: a job is
# stopped at its timeout (120 s) and lets go on the way out.
BLOCK_TIMEOUT = 120
CHECK_ARTICLE = "swapline-connection-check"  # no such article: the call only proves the owner id


@dataclass
class Choices:
    """What a shop's Ongoing account offers, read live."""

    warehouses: list[dict]
    order_statuses: list[dict]
    return_statuses: list[dict]


@dataclass
class Accounts:
    """What every Ongoing client of the app shares: its locks, its metrics and one HTTP transport
    (its connections kept alive between calls and jobs; it keeps no cookies, so nothing one
    goods owner's answer set travels with another's call)."""

    locks: Locks
    metrics: Metrics
    http: Transport = field(default_factory=Transport)
    # This thread's open `serial` blocks, by goods owner key.
    _blocks: _OpenBlocks = field(default_factory=lambda: _OpenBlocks(), init=False, repr=False,
                                 compare=False)

    def serializer(self, key: str) -> AbstractContextManager:
        """The OngoingClient serializer: one goods owner's lock across every process (held
        from call to call inside this thread's `serial` block for it)."""
        block = self._open().get(key)
        return block if block is not None else shared_serializer(self.locks, key)

    @contextmanager
    def serial(self, key: str) -> Iterator[None]:
        """A block of consecutive calls for one goods owner holding its lock throughout, taken
        at the first call (none: nothing taken); a block inside another joins it."""
        blocks = self._open()
        if key in blocks:
            yield
            return
        block = blocks[key] = Block(self.locks, key)
        try:
            yield
        finally:
            del blocks[key]
            block.let_go()

    def _open(self) -> dict[str, Block]:
        return self._blocks.open


class _OpenBlocks(threading.local):
    """Each thread's open blocks (its own dict, made on the thread's first look)."""

    def __init__(self):
        self.open: dict[str, Block] = {}


def init_app(app: Flask, *, locks: Locks, metrics: Metrics | None = None) -> None:
    """Keep the app's locks (shared by every process on every machine: required, never a
    process-local default) and metrics for the Ongoing clients."""
    app.extensions[EXTENSION] = Accounts(locks, metrics or NO_METRICS)


def serial(client: OngoingClient) -> AbstractContextManager:
    """`with serial(client):` the client's calls in the block hold its goods owner's lock from
    the first to the last (put no Shopify call or sleep inside: the lock waits for them)."""
    accounts: Accounts = current_app.extensions[EXTENSION]
    return accounts.serial(client.credentials.key)


@contextmanager
def shared_serializer(locks: Locks, key: str) -> Iterator[None]:
    """Hold the cluster-wide lock of one goods owner (Ongoing wants calls made one at a time)."""
    lock = _take(locks, key, LOCK_TIMEOUT)
    try:
        yield
    finally:
        _give_back(lock, key)


class Block:
    """One thread's `serial` block for one goods owner, and the serializer of its calls: the
    lock is taken by the first call, kept after a call that succeeds, let go after one that
    fails (before its retry's backoff sleep) and at the end of the block."""

    def __init__(self, locks: Locks, key: str):
        self.locks, self.key = locks, key
        self.lock: Lock | None = None

    def __enter__(self) -> Block:
        if self.lock is not None and not self.lock.kept():
            # Lost, or maybe lost, between two calls (Redis lost it or is away, a long stall):
            # take it again for the next, as another machine may hold it now.
            log.warning("Ongoing serialisation lock lost within a block; taking it again",
                        extra={"key": self.key})
            self.let_go()
        if self.lock is None:
            self.lock = _take(self.locks, self.key, BLOCK_TIMEOUT)
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is not None:
            self.let_go()

    def let_go(self) -> None:
        lock, self.lock = self.lock, None
        if lock is not None:
            _give_back(lock, self.key)


def _take(locks: Locks, key: str, timeout: float) -> Lock:
    lock = locks.lock(f"swapline:ongoing:{key}", timeout=timeout, blocking_timeout=LOCK_WAIT)
    try:
        taken = lock.acquire()
    except (RedisConnectionError, RedisTimeoutError):  # the call was not made: retriable
        raise OngoingNetworkError("could not reach Redis for this goods owner's lock",
                                  never_sent=True) from None
    if not taken:
        raise OngoingNetworkError("waited too long for this goods owner's previous call",
                                  never_sent=True)
    return lock


def _give_back(lock: Lock, key: str) -> None:
    try:
        lock.release()
    except LockError:  # it expired during a slow call: the call itself still counts
        log.warning("Ongoing serialisation lock expired before release", extra={"key": key})
    except (RedisConnectionError, RedisTimeoutError):  # no longer renewed: its lease runs out
        log.warning("Ongoing serialisation lock not released: Redis unreachable",
                    extra={"key": key})


def client_for(values: dict, *, max_retries: int = 2) -> OngoingClient:
    """A client from settings values (ongoing_server, ongoing_warehouse, goods_owner_id, ...)."""
    credentials = OngoingCredentials(
        server=values["ongoing_server"], warehouse=values["ongoing_warehouse"],
        goods_owner_id=int(values["goods_owner_id"]), username=values["ongoing_username"],
        password=values["password"])
    accounts: Accounts = current_app.extensions[EXTENSION]
    return OngoingClient(credentials,
                         url_template=current_app.config["SETTINGS"].ongoing_url_template,
                         http=accounts.http, max_retries=max_retries,
                         serializer=accounts.serializer, metrics=accounts.metrics)


def client_for_shop(row: ShopSettings, *, max_retries: int = 2) -> OngoingClient:
    """The client of a shop's saved connection."""
    return client_for({"ongoing_server": row.ongoing_server,
                       "ongoing_warehouse": row.ongoing_warehouse,
                       "goods_owner_id": row.goods_owner_id,
                       "ongoing_username": row.ongoing_username, "password": row.password()},
                      max_retries=max_retries)


def load_choices(client: OngoingClient) -> Choices:
    """Check the connection and read what the settings choose from, live."""
    warehouses = client.list_warehouses()
    client.find_articles([CHECK_ARTICLE])  # refused when the goods owner id is not this user's
    return Choices(warehouses, client.list_order_statuses(), client.list_return_order_statuses())


def fetch_choices(values: dict, current: ShopSettings | None) -> tuple[Choices | None, dict]:
    """Connect with the entered values (the stored password when none was typed):
    (choices, {}) or (None, errors by field)."""
    password = values.get("password") or (current.password() if current else None)
    try:
        return load_choices(client_for({**values, "password": password}, max_retries=0)), {}
    except OngoingError as exc:
        field, message = connection_problem(exc, values)
        return None, {field or "connection": message}


def connection_problem(exc: OngoingError, values: dict) -> tuple[str | None, str]:
    """(field, message) a merchant can act on, for a failed connection check."""
    server, warehouse = values.get("ongoing_server"), values.get("ongoing_warehouse")
    if isinstance(exc, OngoingAuthError) and exc.forbidden:
        return "ongoing_username", ("This API user has no API access. Ask your 3PL to enable "
                                    "it under Administration → API for goods owners.")
    if isinstance(exc, OngoingAuthError):
        return "password", "Ongoing refused this username and password."
    if isinstance(exc, OngoingNotFound):
        return "ongoing_warehouse", (f"Ongoing has no warehouse called '{warehouse}' on the "
                                     f"'{server}' server. Copy the name from your Ongoing URL.")
    if isinstance(exc, OngoingNetworkError) or \
            (isinstance(exc, OngoingServerError) and exc.status in (502, 503, 504)):
        return "ongoing_server", (f"Could not reach the Ongoing API server '{server}'. Use api "
                                  "for production or wms1 for a demo system.")
    if isinstance(exc, OngoingRateLimited):
        return None, "Ongoing is limiting calls right now; try again in a minute."
    if exc.path.startswith("/articles"):
        return "goods_owner_id", (f"Ongoing does not accept Goods Owner ID "
                                  f"{values.get('goods_owner_id')} for this API user.")
    return None, f"Ongoing answered with an error ({exc.status}): {exc.message}"
