"""SQLModel tables, one module per aggregate; `db` owns the engine and sessions."""
from models.alert import Alert, AlertMessage
from models.delivery import WebhookDelivery
from models.exchange import Exchange, ExchangeEvent
from models.exchange_signal import ExchangeSignal
from models.settings import ShopSettings
from models.shop import Shop

__all__ = ["Alert", "AlertMessage", "Exchange", "ExchangeEvent", "ExchangeSignal", "Shop",
           "ShopSettings", "WebhookDelivery"]
