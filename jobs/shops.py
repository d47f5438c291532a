"""Jobs about the shop itself."""
from __future__ import annotations

import logging

from clients.shopify import shopify
from jobs.queue import enqueue, job_id
from models import db
from models.shop import get_shop
from models.types import utcnow

log = logging.getLogger(__name__)


def enqueue_details_sync(domain: str) -> None:
    """Queue the shop-details sync; a queue outage is logged, never raised (a page must load)."""
    try:
        enqueue(sync_shop_details, domain, job_id=job_id("shop-details", domain), shop=domain)
    except Exception as exc:  # noqa: BLE001 - reported, and the next app open queues it again
        log.warning("could not queue the shop details sync: %s", type(exc).__name__,
                    extra={"shop": domain})


def sync_shop_details(domain: str) -> str:
    """Read the shop's name from Admin GraphQL and store it (after install, and on demand)."""
    data = shopify().graphql(domain, "ShopDetails")
    with db.session() as s:
        shop = get_shop(domain, session=s)
        if shop is None:
            return "shop gone"
        shop.name = data["shop"]["name"]
        shop.updated_at = utcnow()
    return "shop details stored"
