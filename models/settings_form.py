"""Validation of the settings, shared by the Settings pages and `flask shop configure`.

`clean(form, current)` checks formats and returns (values, errors by field); `check_live` checks
the chosen warehouse and statuses against what the shop's Ongoing account really has. Nothing is
stored unless both return no errors.
"""
from __future__ import annotations

import re

from models.settings import (
    DEFAULT_EXCHANGE_TAG,
    EXCHANGE_TAG_MAX,
    OPTIONAL_ORDER_CODES,
    ORDER_CODES,
    RETURN_CODES,
    ShopSettings,
)

SERVER = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
URL_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")
PREFIX = re.compile(r"^[A-Za-z0-9-]{1,20}$")
TOKEN = re.compile(r"^[\x21-\x7e]{24,200}$")  # printable ASCII, no spaces
SHIPPING_CODE = re.compile(r"^[A-Za-z0-9._-]{1,50}$")  # Ongoing codes such as PLAB, P19, SHP1
SHIPPING_FIELDS = ("default_transporter_code", "default_transporter_service_code",
                   "default_way_of_delivery")
ORDER_FIELDS = tuple(f"order_status_{c}" for c in ORDER_CODES)
RETURN_FIELDS = tuple(f"return_status_{c}" for c in RETURN_CODES)
OPTIONAL_ORDER_FIELDS = tuple(f"order_status_{c}" for c in OPTIONAL_ORDER_CODES)
# Ongoing's standard order statuses (its example GET /orders/statuses answer; Returned is not
# among them). Texts follow the system language, so the number is tried first.
STANDARD_ORDER_NUMBERS = {"open": 200, "released": 300, "sent": 450}
# English and Swedish texts (docs.ongoingwarehouse.com/manuals/statuses), for renumbered systems.
DEFAULT_ORDER_NAMES = {"open": ("Open", "Öppen"), "returned": ("Returned", "Returnerad"),
                       "released": ("Released", "Frisläppt"), "sent": ("Sent", "Skickad")}
# Ongoing publishes no standard return-order statuses, so these go by text alone.
DEFAULT_RETURN_NAMES = {"notified": ("Notified",), "returned": ("Returned",)}
TRUE = {"1", "on", "true", "yes"}


def _text(form, name: str) -> str:
    return (form.get(name) or "").strip()


def _integer(form, name: str, errors: dict, label: str, required: bool = True) -> int | None:
    raw = _text(form, name)
    if not raw:
        if required:
            errors[name] = f"{label} is required."
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:  # "²".isdigit() is True
        errors[name] = f"{label} must be a positive whole number."
        return None
    return int(raw)


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def clean_connection(form, current: ShopSettings | None) -> tuple[dict, dict]:
    """The Authentication and API server fields: what Test connection needs."""
    values, errors = {}, {}
    server = _text(form, "ongoing_server").lower() or "api"
    if not SERVER.match(server):
        errors["ongoing_server"] = "API server is a host name part such as api or wms1."
    warehouse = _text(form, "ongoing_warehouse").strip("/")
    if not URL_SEGMENT.match(warehouse):
        errors["ongoing_warehouse"] = ("Warehouse is the name in your Ongoing URL, e.g. "
                                       "returnflows (letters, digits, . _ ~ -).")
    username = _text(form, "ongoing_username")
    if not username.startswith("WSI") or len(username) > 100 or not _latin1(username):
        errors["ongoing_username"] = "Ongoing API usernames begin with WSI."
    password = form.get("password") or ""
    if not password and not (current and current.password_set):
        errors["password"] = "Password is required."
    elif not _latin1(password):  # HTTP Basic auth sends latin-1; anything else cannot be sent
        errors["password"] = "The password has a character Ongoing's API cannot receive."
    values.update(ongoing_server=server, ongoing_warehouse=warehouse, ongoing_username=username,
                  password=password,
                  goods_owner_id=_integer(form, "goods_owner_id", errors, "Goods Owner ID"))
    return values, errors


def clean(form, current: ShopSettings | None) -> tuple[dict, dict]:
    """Every field of the settings form, checked for format; (values, errors by field)."""
    values, errors = clean_connection(form, current)
    values["warehouse_id"] = _integer(form, "warehouse_id", errors, "Warehouse")
    for field in ORDER_FIELDS + RETURN_FIELDS:
        values[field] = _integer(form, field, errors, "This status",
                                 required=field not in OPTIONAL_ORDER_FIELDS)
    codes = [values[f] for f in ORDER_FIELDS if values[f] is not None]
    for field in ORDER_FIELDS:
        if values[field] is not None and codes.count(values[field]) > 1:
            errors[field] = "The order status codes must all differ."
    returns = [values[f] for f in RETURN_FIELDS]
    if None not in returns and len(set(returns)) != len(returns):
        errors[RETURN_FIELDS[1]] = "Notified and Returned must be different statuses."
    for name in ("webhook_token", "events_secret"):
        secret = form.get(name) or ""
        if secret and not TOKEN.match(secret):
            errors[name] = "Use 24 to 200 printable characters without spaces (or Generate)."
        values[name] = secret
    values.update(_shipping(form, errors))
    prefix = _text(form, "order_number_prefix") or "EXCH"
    if not PREFIX.match(prefix):
        errors["order_number_prefix"] = "Prefix: up to 20 letters, digits or dashes."
    values.update(order_number_prefix=prefix,
                  instant_exchange=_text(form, "instant_exchange").lower() in TRUE,
                  notify_customer=_text(form, "notify_customer").lower() in TRUE)
    values["exchange_tag"] = _exchange_tag(form, current, errors)
    return values, errors


def _exchange_tag(form, current: ShopSettings | None, errors: dict) -> str:
    """A Shopify tag: at most 40 characters and no comma (Shopify would split it in two).
    Empty means the default; a form without the field keeps the saved tag."""
    if form.get("exchange_tag") is None:
        return current.exchange_tag if current else DEFAULT_EXCHANGE_TAG
    tag = _text(form, "exchange_tag") or DEFAULT_EXCHANGE_TAG
    if len(tag) > EXCHANGE_TAG_MAX or "," in tag or not tag.isprintable():
        errors["exchange_tag"] = (f"Exchange tag: up to {EXCHANGE_TAG_MAX} characters, no comma "
                                  "(Shopify's rules for a tag).")
    return tag


def _shipping(form, errors: dict) -> dict:
    """The shipping defaults: optional codes; a service only together with its transporter."""
    values = {name: _text(form, name) or None for name in SHIPPING_FIELDS}
    for name, value in values.items():
        if value and not SHIPPING_CODE.match(value):
            errors[name] = "Use the code from Ongoing: up to 50 letters, digits, . _ or -."
    if values["default_transporter_service_code"] and not values["default_transporter_code"]:
        errors["default_transporter_service_code"] = ("A service belongs to a transporter: "
                                                      "set the transporter code too.")
    return values


def check_live(values: dict, choices) -> dict:
    """Errors for a warehouse or status the account does not have."""
    errors = {}
    warehouse = next((w for w in choices.warehouses if w.get("id") == values["warehouse_id"]),
                     None)
    if warehouse is None:
        errors["warehouse_id"] = "Pick one of the warehouses Ongoing lists for this account."
    else:
        values["warehouse_name"] = warehouse.get("name") or warehouse.get("code")
    order_numbers = {s["number"] for s in choices.order_statuses}
    return_numbers = {s["number"] for s in choices.return_statuses}
    for field in ORDER_FIELDS:
        if values[field] is None and field in OPTIONAL_ORDER_FIELDS:
            continue
        if values[field] not in order_numbers:
            errors[field] = f"Status {values[field]} does not exist in this Ongoing account."
    for field in RETURN_FIELDS:
        if values[field] not in return_numbers:
            errors[field] = f"Return status {values[field]} does not exist in this account."
    return errors


def default_status(statuses: list[dict], names: tuple[str, ...],
                   number: int | None = None) -> int | None:
    """Preselection only, never logic: `number` when the account has it, else the status
    whose text is one of `names`."""
    if number is not None and any(s.get("number") == number for s in statuses):
        return number
    wanted = {name.lower() for name in names}
    for status in statuses:
        if str(status.get("text", "")).strip().lower() in wanted:
            return status["number"]
    return None
