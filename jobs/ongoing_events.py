"""The one translator from Ongoing statuses to exchange events.

Ongoing statuses are numbers the merchant maps (Settings → Statuses); texts are never compared.
The Ongoing webhook handler (jobs/event_topics.py) and reconciliation (jobs/reconcile.py) both
ask here, so "is this status Sent or later" is decided once.
"""
from __future__ import annotations

from jobs.exchange_rules import RELEASE, SENT
from models.settings import ShopSettings

CANCELLED_STATUS = 1000  # Ongoing's default Cancelled: never a shipping status
# Which Ongoing order a status belongs to.
EXCHANGE_ORDER, ORIGINAL_ORDER, RETURN_ORDER = "exchange order", "original order", "return order"


def event_for(settings: ShopSettings, which: str, status: int | None) -> str | None:
    """The exchange event an Ongoing status means, or None (only noted).

    The exchange order at the merchant's Sent code or any later shipping status is `sent` (a
    missed Sent must not strand it); the original order at the merchant's Returned order code,
    or the return order at the Returned return code, is `release` (the parcel came back)."""
    if status is None:
        return None
    if which == EXCHANGE_ORDER:
        sent = settings.order_status_sent
        return SENT if sent is not None and sent <= status < CANCELLED_STATUS else None
    if which == ORIGINAL_ORDER:
        returned = settings.order_status_returned  # None: the warehouse has no Returned status
        return RELEASE if returned is not None and status == returned else None
    if which == RETURN_ORDER:
        returned = settings.return_status_returned
        return RELEASE if returned is not None and status == returned else None
    raise ValueError(f"unknown Ongoing order kind {which!r}")
