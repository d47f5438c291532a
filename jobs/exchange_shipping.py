"""How the exchange order ships: like the original order in Ongoing, else the merchant's defaults.

Field names follow Ongoing's own examples: GET /orders/{id} answers `transporter{code,
serviceCode}`, `orderInfo.wayOfDelivery{code, name}`, `orderInfo.servicePointCode` and
`consignee.customerNumber`; PUT /orders takes `transporter{transporterCode,
transporterServiceCode}`, `wayOfDelivery{code, name}`, `servicePointCode` and
`consignee.customerNumber`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from models.settings import ShopSettings


@dataclass
class Shipping:
    """What the exchange order carries, and where it came from (for the timeline)."""

    fields: dict = field(default_factory=dict)  # top-level PUT /orders fields
    customer_number: str | None = None  # consignee.customerNumber
    source: str = ""
    warning: bool = False  # nothing says how to ship: the 3PL must choose by hand


def ship_like(original: dict | None, settings: ShopSettings) -> Shipping:
    """The original order's customer, transporter, way of delivery and pickup point; the
    Settings defaults for what the original does not say (or when it is not in Ongoing)."""
    copied = _from_original(original) if original else Shipping()
    defaults = _defaults(settings)
    for name, value in defaults.fields.items():
        copied.fields.setdefault(name, value)
    copied.source = _describe(original, copied, defaults)
    copied.warning = "transporter" not in copied.fields
    return copied


def _from_original(original: dict) -> Shipping:
    info = original.get("orderInfo") or {}
    transporter = original.get("transporter") or {}
    fields = {}
    if transporter.get("code"):
        fields["transporter"] = _transporter(transporter["code"], transporter.get("serviceCode"))
        if info.get("servicePointCode"):  # a pickup point belongs to its transporter
            fields["servicePointCode"] = info["servicePointCode"]
    way = info.get("wayOfDelivery") or {}
    if way.get("code"):
        fields["wayOfDelivery"] = {k: way[k] for k in ("code", "name") if way.get(k)}
    customer = (original.get("consignee") or {}).get("customerNumber")
    return Shipping(fields, customer or None)


def _defaults(settings: ShopSettings) -> Shipping:
    fields = {}
    if settings.default_transporter_code:
        fields["transporter"] = _transporter(settings.default_transporter_code,
                                             settings.default_transporter_service_code)
    if settings.default_way_of_delivery:
        fields["wayOfDelivery"] = {"code": settings.default_way_of_delivery}
    return Shipping(fields)


def _transporter(code: str, service: str | None) -> dict:
    found = {"transporterCode": code, "transporterServiceCode": service}
    return {k: v for k, v in found.items() if v}


def _describe(original: dict | None, shipping: Shipping, defaults: Shipping) -> str:
    """One timeline line: each piece and whether it came from the original or Settings."""
    number = ((original or {}).get("orderInfo") or {}).get("orderNumber")
    parts = []
    for name, label in (("transporter", "transporter"), ("wayOfDelivery", "way of delivery"),
                        ("servicePointCode", "pickup point")):
        value = shipping.fields.get(name)
        if value is None:
            continue
        if name == "wayOfDelivery":
            value = value["code"]
        text = value if isinstance(value, str) else "/".join(str(v) for v in value.values())
        origin = "Settings" if name in defaults.fields and \
            shipping.fields[name] is defaults.fields[name] else "original"
        parts.append(f"{label} {text} ({origin})")
    if shipping.customer_number:
        parts.append(f"customer {shipping.customer_number} (original)")
    where = f"original order {number} found in Ongoing" if original \
        else "original order not in Ongoing"
    if "transporter" not in shipping.fields:
        parts.append("no transporter: the warehouse must choose one by hand")
    return f"{where}: " + ", ".join(parts)
