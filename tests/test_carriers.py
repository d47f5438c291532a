"""Ongoing transporters → Shopify's tracking company names (only names Shopify links)."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from jobs.carriers import SUPPORTED, linked, shopify_company
from jobs.exchange_fulfil import tracking_of

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "shopify" / "admin_2026-04.json.gz"


def shopify_list() -> set[str]:
    """Every company name in the schema's FulfillmentTrackingInfo.company description."""
    types = json.load(gzip.open(SCHEMA))["data"]["__schema"]["types"]
    info = next(t for t in types if t["name"] == "FulfillmentTrackingInfo")
    text = next(f for f in info["fields"] if f["name"] == "company")["description"]
    names = set(re.findall(r"^  \* ([^*\n]+)$", text, re.M))
    for countries in re.findall(r"^  \* \*\*[^*]+\*\*: (.+)$", text, re.M):
        names.update(n.strip().rstrip(".") for n in countries.split(","))
    return names


@pytest.mark.skipif(not SCHEMA.exists(), reason="needs ../shared/shopify")
def test_every_name_we_send_is_spelt_as_in_shopify_s_list():
    assert SUPPORTED <= shopify_list(), SUPPORTED - shopify_list()


@pytest.mark.parametrize("transporter,company", [
    ({"transporterName": "PostNord Sweden AB", "name": "PostNord Parcel (Nordic)",
      "code": "PLAB", "serviceCode": "P18"}, "PostNord SE"),  # Ongoing's example order
    ({"code": "plab"}, "PostNord SE"),
    ({"transporterName": "PostNord Danmark", "code": "PDKX"}, "PostNord DK"),
    ({"transporterName": "PostNord Norge AS"}, "PostNord NO"),
    ({"transporterName": "PostNord"}, "PostNord SE"),
    ({"transporterName": "Bring Parcels AB"}, "Bring"),
    ({"transporterName": "Posten Norge"}, "Bring"),
    ({"transporterName": "DHL Express Sweden"}, "DHL Express"),
    ({"transporterName": "DHL Freight Sweden AB"}, None),
    ({"name": "DHL Parcel Connect"}, None),
    ({"transporterName": "DB Schenker", "code": "SBTL"}, None),  # Ongoing's example contract
    ({"transporterName": "Budbee AB"}, None),
    ({"transporterName": "Instabox"}, None),
    ({"transporterName": "Early Bird"}, None),
    ({"transporterName": "Airmee"}, None),
    ({"transporterName": "DSV Road"}, None),
    ({"transporterName": "Posti Oy"}, None),
    ({"transporterName": "Helthjem"}, None),
    ({"transporterName": "GLS Sweden"}, "GLS"),
    ({"transporterName": "UPS Sweden"}, "UPS"),
    ({"transporterName": "FedEx Express"}, "FedEx"),
    ({"transporterName": "TNT"}, "TNT"),
    ({"transporterName": "DPD"}, "DPD"),
    ({"transporterName": "Somebody Else", "name": "UPS Standard"}, "UPS"),  # then the service
    ({}, None),
    (None, None),
])
def test_transporter_to_shopify_company(transporter, company):
    assert shopify_company(transporter) == company
    assert linked(company) is (company is not None)


def test_tracking_sends_shopify_s_name_or_ongoing_s_own():
    order = {"orderInfo": {"wayBill": "UA65456546"}, "tracking": [],
             "transporter": {"transporterName": "PostNord Sweden AB", "code": "PLAB"}}
    assert tracking_of(order) == {"number": "UA65456546", "url": None,
                                  "company": "PostNord SE"}
    order["transporter"] = {"transporterName": "Budbee AB", "code": "BUDBEE"}
    order["parcels"] = [{"isReturnParcel": True, "tracking": {"trackingUrl": "https://r/1"}},
                        {"isReturnParcel": False, "tracking": {"trackingUrl": "https://b/1"}}]
    assert tracking_of(order) == {"number": "UA65456546", "url": "https://b/1",
                                  "company": "Budbee AB"}
