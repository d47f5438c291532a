"""Amounts as Shopify sends them ("5.0") are shown and stored to the currency's minor unit."""
from decimal import Decimal

import pytest

from models.money import money_text
from sandbox.shopify.store import decimal_text


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    ("5.0", "EUR", "5.00"), ("12.5", "SEK", "12.50"), ("0.0", "USD", "0.00"),
    ("1000.0", "JPY", "1000"), ("1.5", "KWD", "1.500"), ("19.999", "EUR", "20.00"),
])
def test_amounts_show_the_currencys_decimals(amount, currency, shown):
    assert money_text(Decimal(amount), currency) == shown


@pytest.mark.parametrize(("amount", "wire"), [
    ("12.50", "12.5"), ("16", "16.0"), ("0.00", "0.0"), ("100", "100.0"), ("29.999", "29.999"),
])
def test_the_sandbox_writes_decimal_amounts_as_live_shopify_does(amount, wire):
    assert decimal_text(Decimal(amount)) == wire
