"""Validators for plain values shared by the domains and the importer.

Each returns the cleaned value or raises InvalidValue with a reason a person can act on.
"""

import re
from decimal import Decimal

from cdp.errors import InvalidValue

MONEY_PLACES = Decimal("0.01")
# Numeric(12, 2) holds ten digits before the point.
MONEY_LIMIT = Decimal(10) ** 10
INT32_MAX = 2**31 - 1

_CURRENCY = re.compile(r"[A-Z]{3}")
# Ids we mint or import (customers, orders): no spaces and no ":", which separates the type
# from the value in references like phone:+15551230001.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def describe_type(value: object) -> str:
    """The JSON name of a value's type, for messages about records read from JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def clean_text(value: object, *, max_length: int) -> str:
    """A non-empty string, trimmed, at most max_length characters."""
    if not isinstance(value, str):
        raise InvalidValue(f"must be a string, got {describe_type(value)}")
    text = value.strip()
    if not text:
        raise InvalidValue("must not be empty")
    if len(text) > max_length:
        raise InvalidValue(f"must be at most {max_length} characters, got {len(text)}")
    return text


def clean_code(value: object, *, max_length: int) -> str:
    """An id such as C-1001 or O-5001: letters, digits, '.', '_' and '-'."""
    code = clean_text(value, max_length=max_length)
    if not _CODE.fullmatch(code):
        raise InvalidValue(f"{code!r} may only contain letters, digits, '.', '_' and '-'")
    return code


def clean_currency(value: object) -> str:
    """An ISO 4217 style code: three letters, stored upper case."""
    code = clean_text(value, max_length=3).upper()
    if not _CURRENCY.fullmatch(code):
        raise InvalidValue(f"{value!r} is not a currency code like USD or EUR")
    return code


def clean_amount(value: object) -> Decimal:
    """A non-negative money amount with at most two decimal places.

    Floats are refused: they can't represent most cents exactly, so callers pass Decimal
    (the importer parses JSON numbers straight to Decimal).
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidValue(f"must be a number, got {describe_type(value)}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise InvalidValue(f"must be a non-negative amount, got {value}")
    if amount != amount.quantize(MONEY_PLACES):
        raise InvalidValue(f"must have at most two decimal places, got {value}")
    if amount >= MONEY_LIMIT:
        raise InvalidValue(f"must be less than {MONEY_LIMIT}, got {value}")
    return amount.quantize(MONEY_PLACES)


def clean_positive_int(value: object) -> int:
    """A whole number from 1 up to the 32-bit limit both databases store."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"must be a whole number, got {describe_type(value)}")
    if not 0 < value <= INT32_MAX:
        raise InvalidValue(f"must be a positive whole number, got {value}")
    return value
