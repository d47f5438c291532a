"""Money as people read it. Shopify serializes amounts as its `Decimal` scalar ("5.0", "12.5",
"0.0" in live answers), so an amount is shown and stored to its currency's minor unit instead."""
from __future__ import annotations

from decimal import Decimal

# ISO 4217 minor units other than 2 (currencies Shopify can settle in).
MINOR_UNITS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                                "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
               **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}


def money_text(amount: Decimal, currency: str) -> str:
    """`amount` with exactly its currency's decimals: 5.0 EUR -> "5.00", 1000.0 JPY -> "1000"."""
    return f"{Decimal(amount):.{MINOR_UNITS.get(currency, 2)}f}"
