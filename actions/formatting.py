"""Plain-text renderings of CDP records for bot messages (any channel can show plain text)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from cdp.addresses import Address

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


class OrderLineLike(Protocol):
    name: str
    quantity: int
    unit_price: Decimal


def money(amount: Decimal, currency: str) -> str:
    """`$7.00`, `€3.50`, or `12.00 CHF` for currencies without a well-known symbol."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    value = f"{Decimal(amount).quantize(Decimal('0.01')):,}"
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def order_lines(lines: Iterable[OrderLineLike], currency: str) -> str:
    """One line per item: `- 2 x Flat white (€3.50 each)`."""
    return "\n".join(
        f"- {line.quantity} x {line.name} ({money(line.unit_price, currency)} each)"
        for line in lines
    )


def address(place: Address | None) -> str:
    """`12 Elm St, Springfield 62701, US`; an empty string when no address is known."""
    if place is None:
        return ""
    parts = [place.line1, place.line2, f"{place.city} {place.postal_code}", place.country]
    return ", ".join(p for p in parts if p)


def day(moment: datetime) -> str:
    """`2 Oct 2026`: unambiguous in every locale the store serves."""
    return f"{moment.day} {moment:%b %Y}"
