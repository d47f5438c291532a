"""SQLModel tables, one module per aggregate; `db` owns the engine and sessions."""
from models.delivery import WebhookDelivery
from models.exchange import Exchange, ExchangeEvent
from models.exchange_signal import ExchangeSignal
from models.settings import ShopSettings
from models.shop import Shop

__all__ = ["Exchange", "ExchangeEvent", "ExchangeSignal", "Shop", "ShopSettings", "WebhookDelivery"]
