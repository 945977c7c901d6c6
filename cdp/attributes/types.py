"""The value types a custom attribute may have, and how values are checked and stored.

Values are stored as JSON: text, numbers and booleans as themselves, dates as YYYY-MM-DD,
datetimes as ISO 8601 UTC with a Z, lists of text as arrays of strings.
"""

import math
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from cdp.clock import isoformat_z, parse_timestamp
from cdp.errors import InvalidValue
from cdp.validation import describe_type

TEXT_MAX_LENGTH = 1000
LIST_MAX_ITEMS = 100


class AttributeType(str, Enum):
    """Types a designer may give a custom attribute."""

    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    LIST_OF_TEXT = "list_of_text"


def _got(value: object) -> str:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"got {describe_type(value)} {shown}"


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"expected text, {_got(value)}")
    text = value.strip()
    if len(text) > TEXT_MAX_LENGTH:
        raise InvalidValue(f"expected text of at most {TEXT_MAX_LENGTH} characters")
    return text


def _number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidValue(f"expected number, {_got(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidValue(f"expected a finite number, {_got(value)}")
    return int(value) if number.is_integer() and abs(number) < 2**53 else number


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidValue(f"expected integer, {_got(value)}")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise InvalidValue(f"expected integer, {_got(value)}")
    return int(value)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"expected boolean, {_got(value)}")
    return value


def _date(value: object) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise InvalidValue(f"expected date (YYYY-MM-DD), {_got(value)}")


def _datetime(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidValue("expected datetime with a timezone, got a naive datetime")
        return isoformat_z(value)
    try:
        return isoformat_z(parse_timestamp(value))
    except InvalidValue as error:
        raise InvalidValue(f"expected datetime: {error.reason}") from None


def _list_of_text(value: object) -> list[str]:
    if not isinstance(value, list):
        raise InvalidValue(f"expected list_of_text, {_got(value)}")
    if len(value) > LIST_MAX_ITEMS:
        raise InvalidValue(f"expected at most {LIST_MAX_ITEMS} items, got {len(value)}")
    items = []
    for number, item in enumerate(value, start=1):
        try:
            items.append(_text(item))
        except InvalidValue as error:
            raise InvalidValue(f"item {number}: {error.reason}") from None
    return items


_CLEANERS = {
    AttributeType.TEXT: _text,
    AttributeType.NUMBER: _number,
    AttributeType.INTEGER: _integer,
    AttributeType.BOOLEAN: _boolean,
    AttributeType.DATE: _date,
    AttributeType.DATETIME: _datetime,
    AttributeType.LIST_OF_TEXT: _list_of_text,
}


def clean_typed_value(attribute_type: AttributeType, value: object) -> Any:
    """The value in stored JSON form; InvalidValue says what type was expected and got."""
    return _CLEANERS[attribute_type](value)


def typed_for_formulas(attribute_type: AttributeType, stored: Any) -> Any:
    """A stored value as formulas see it: dates and datetimes become Python objects."""
    if stored is None:
        return None
    if attribute_type is AttributeType.DATE:
        return date.fromisoformat(stored)
    if attribute_type is AttributeType.DATETIME:
        return parse_timestamp(stored)
    if attribute_type in (AttributeType.NUMBER, AttributeType.INTEGER):
        return Decimal(str(stored))
    return stored
