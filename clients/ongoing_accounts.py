"""Ongoing clients as the app builds them: URL template from the config, one call at a time per
goods owner across every process and machine (a lock from the app's Redis), latencies to
the app's metrics, and the merchant-facing connection messages."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from flask import Flask, current_app
from redis.exceptions import LockError

from clients.deps import NO_METRICS, Locks, Metrics
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
# The lock is held per attempt, at most connect + read timeout and a margin. The app's locks are
# renewed while held (jobs/leases.py): a worker killed mid-call leaves it free within seconds.
# Other callers wait up to LOCK_WAIT for their turn, well inside a job's timeout (120 s) so the
# wait fails as a retriable error, not as a killed job.
LOCK_TIMEOUT = 30
LOCK_WAIT = 60
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

    def serializer(self, key: str) -> AbstractContextManager:
        """The OngoingClient serializer: one goods owner's lock across every process."""
        return shared_serializer(self.locks, key)


def init_app(app: Flask, *, locks: Locks, metrics: Metrics | None = None) -> None:
    """Keep the app's locks (shared by every process on every machine: required, never a
    process-local default) and metrics for the Ongoing clients."""
    app.extensions[EXTENSION] = Accounts(locks, metrics or NO_METRICS)


@contextmanager
def shared_serializer(locks: Locks, key: str) -> Iterator[None]:
    """Hold the cluster-wide lock of one goods owner (Ongoing wants calls made one at a time)."""
    lock = locks.lock(f"swapline:ongoing:{key}", timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT)
    if not lock.acquire():
        raise OngoingNetworkError("waited too long for this goods owner's previous call",
                                  never_sent=True)
    try:
        yield
    finally:
        try:
            lock.release()
        except LockError:  # it expired during a slow call: the call itself still counts
            log.warning("Ongoing serialisation lock expired before release", extra={"key": key})


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
