"""Shopify's tracking company for an Ongoing transporter: only a name Shopify links is useful.

Shopify builds a clickable tracking URL only for the company names in its list (Admin GraphQL
`FulfillmentTrackingInfo.company`, "Supported tracking companies"; the 2026-04 schema in
../shared/shopify/admin_2026-04.json.gz carries the same text). The names must be sent exactly
as written there. A carrier missing from that list (Budbee, Instabox, Early Bird, Airmee,
DB Schenker, DSV, Posti, Helthjem, DHL Freight…) gets no link from Shopify: only a tracking URL
from Ongoing makes its number clickable.
"""
from __future__ import annotations

import re

# Shopify's names used below, each spelt as in its list ("any country" unless noted).
SUPPORTED = frozenset({
    "PostNord SE", "PostNord DK", "PostNord NO", "Bring",  # Bring: listed for Norway
    "DHL Express", "DHL eCommerce", "GLS", "UPS", "FedEx", "TNT", "DPD", "USPS",
    "Royal Mail", "Deutsche Post", "PostNL", "Swiss Post", "Iceland Post", "Colissimo",
    "Chronopost", "Packeta", "Venipak", "Evri", "Mondial Relay", "Amazon", "An Post",
    "BPost", "Canada Post", "Australia Post", "Poste Italiane", "Correos", "Latvia Post",
    "Lietuvos Paštas", "Inpost",  # Inpost: listed for Poland
})

# Ongoing transporter codes with a known meaning: those in Ongoing's own examples
# (OngoingWarehouse/Ongoing-Warehouse-REST-API-Example-Requests, v1/Order "Get an order" and
# v1/Transporter contracts). Ongoing publishes no full code list, so names decide the rest.
BY_CODE: dict[str, str | None] = {
    "PLAB": "PostNord SE",  # "PostNord Sweden AB"
    "SBTL": None,  # "DB Schenker": not in Shopify's list
}

# (pattern on the transporter's name, Shopify's name or None), first match wins: specific
# before general (DHL Express before DHL, PostNord DK/NO before PostNord).
BY_NAME: tuple[tuple[str, str | None], ...] = (
    (r"postnord.*\b(denmark|danmark|dk)\b", "PostNord DK"),
    (r"postnord.*\b(norway|norge|no)\b", "PostNord NO"),
    # A PostNord without a country: Sweden, where Ongoing's own example has it.
    (r"postnord", "PostNord SE"),
    (r"\bbring\b|posten norge", "Bring"),
    (r"dhl.*express", "DHL Express"),
    (r"dhl.*ecommerce", "DHL eCommerce"),
    # DHL Freight and the Nordic DHL Parcel (a DHL Freight service) track on DHL Freight's
    # pages; Shopify's "DHL Parcel" is the UK/Benelux network and its "DHL" is Germany's.
    (r"dhl", None),
    (r"\bgls\b", "GLS"),
    (r"\bups\b|united parcel service", "UPS"),
    (r"fedex|federal express", "FedEx"),
    (r"\btnt\b", "TNT"),
    (r"\bdpd\b", "DPD"),
    (r"\busps\b|united states postal", "USPS"),
    (r"royal mail", "Royal Mail"),
    (r"deutsche post", "Deutsche Post"),
    (r"postnl", "PostNL"),
    (r"swiss post|die post", "Swiss Post"),
    (r"iceland post|p[oó]sturinn", "Iceland Post"),
    (r"colissimo", "Colissimo"),
    (r"chronopost", "Chronopost"),
    (r"packeta|z[aá]silkovna", "Packeta"),
    (r"venipak", "Venipak"),
    (r"evri|hermes uk", "Evri"),
    (r"mondial relay", "Mondial Relay"),
    (r"inpost", "Inpost"),
)


def shopify_company(transporter: dict | None) -> str | None:
    """Shopify's exact name for an Ongoing transporter (code first, then name), or None."""
    transporter = transporter or {}
    code = str(transporter.get("code") or transporter.get("transporterCode") or "").upper()
    if code in BY_CODE:
        return BY_CODE[code]
    for name in (transporter.get("transporterName"), transporter.get("name")):
        for pattern, company in BY_NAME:
            if name and re.search(pattern, name, re.IGNORECASE):
                return company
    return None


def linked(company: str | None) -> bool:
    """Whether Shopify turns a number sent with this company into a tracking link."""
    return company in SUPPORTED
