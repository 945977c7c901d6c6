"""Column types that make SQLite and PostgreSQL return the same Python values."""

from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Numeric
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.types import TypeDecorator, TypeEngine

from cdp.validation import MONEY_LIMIT, MONEY_PLACES

# SQLite only auto-increments INTEGER PRIMARY KEY; elsewhere ids get 64 bits to grow into.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


def stored_utc(value: datetime) -> datetime:
    """The value in UTC as a UtcDateTime column stores it; a naive datetime is refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the CDP stores timezone-aware UTC only")
    return value.astimezone(timezone.utc)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out.

    SQLite keeps no offset and PostgreSQL answers in the session's zone; both come back as
    UTC here. Naive datetimes are refused on the way in rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else stored_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Money(TypeDecorator[Decimal]):
    """Numeric(12, 2) that always yields Decimal with two places.

    SQLite has no decimal type, so its values arrive as floats; at 12 significant digits the
    float's shortest repr is exact, and converting through str avoids SQLAlchemy's lossy path
    and its warning. Floats and extra decimal places are refused on the way in.
    """

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(12, 2, asdecimal=False))
        return dialect.type_descriptor(Numeric(12, 2))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be Decimal, got {type(value).__name__}")
        if value != value.quantize(MONEY_PLACES) or abs(value) >= MONEY_LIMIT:
            raise ValueError(f"{value} does not fit Numeric(12, 2)")
        return value

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(MONEY_PLACES)


def string_enum(enum_class: type[Enum], name: str) -> SqlEnum:
    """Store an enum's values (not member names) as VARCHAR plus a CHECK constraint.

    Portable across both databases, and new values only need the constraint rebuilt.
    """
    return SqlEnum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )
