"""SQLModel tables, one module per aggregate; `db` owns the engine and sessions."""
from models.delivery import WebhookDelivery
from models.exchange import Exchange, ExchangeEvent
from models.settings import ShopSettings
from models.shop import Shop

__all__ = ["Exchange", "ExchangeEvent", "Shop", "ShopSettings", "WebhookDelivery"]
