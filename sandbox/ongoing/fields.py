"""Sandbox Ongoing's field checks: PUT /orders refuses a field Ongoing's order model lacks."""
from __future__ import annotations

from sandbox.ongoing.store import Refused

# PUT /orders fields (PostOrderModel, ongoing-api.md §2.4); anything else is refused, so a
# misspelt field fails here instead of vanishing.
ORDER_FIELDS = frozenset({
    "goodsOwnerId", "orderNumber", "deliveryDate", "consignee", "orderLines",
    "emailNotification", "smsNotification", "telephoneNotification", "goodsOwnerOrderId",
    "referenceNumber", "consigneeOrderNumber", "orderRemark", "deliveryInstruction",
    "warehouseInstruction", "freeText1", "freeText2", "freeText3", "salesCode",
    "servicePointCode", "orderType", "wayOfDelivery", "transporter", "returnTransporter",
    "warehouseId", "classes", "customerPrice", "freightPrice", "customsInfo", "marketPlace",
    "pickingPriority", "invoiceUrl", "languageCode", "advanced"})
CONSIGNEE_FIELDS = frozenset({
    "customerNumber", "name", "address1", "address2", "address3", "postCode", "city",
    "countryCode", "countryStateCode", "remark", "doorCode", "organisationNumber", "vatNumber",
    "invoiceAddress", "advanced"})
LINE_FIELDS = frozenset({
    "rowNumber", "articleNumber", "numberOfItems", "comment", "shouldBePicked", "externalId",
    "customerArticleNumber", "prices", "batchNumber", "serialNumber", "lineTotalCustomsValue",
    "warehouseInstruction", "deliveryDate"})
NESTED_FIELDS = {"transporter": frozenset({"transporterCode", "transporterServiceCode"}),
                 "returnTransporter": frozenset({"transporterCode", "transporterServiceCode"}),
                 "wayOfDelivery": frozenset({"code", "name"}),
                 "orderType": frozenset({"code", "name"})}


def known_fields(data: dict, allowed: frozenset, where: str = "") -> None:
    """Refuse a field the model does not have."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Refused(f"The field {where}{unknown[0]} is not known.")


def check_order_fields(body: dict) -> None:
    """Every PUT /orders field, nested ones too, must exist in PostOrderModel."""
    known_fields(body, ORDER_FIELDS)
    if isinstance(body.get("consignee"), dict):
        known_fields(body["consignee"], CONSIGNEE_FIELDS, "consignee.")
    for name, allowed in NESTED_FIELDS.items():
        if body.get(name) is not None:
            if not isinstance(body[name], dict):
                raise Refused(f"The value {body[name]!r} is not valid for {name}.")
            known_fields(body[name], allowed, f"{name}.")
    for i, line in enumerate(body.get("orderLines") or []):
        if isinstance(line, dict):
            known_fields(line, LINE_FIELDS, f"orderLines[{i}].")
