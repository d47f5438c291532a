"""Jobs about the shop itself."""
from __future__ import annotations

from clients.shopify import shopify
from models import db
from models.shop import get_shop
from models.types import utcnow


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
