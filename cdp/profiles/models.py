"""The profiles table and the attributes an upsert may set."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from cdp.addresses import (
    CITY_MAX_LENGTH,
    LINE_MAX_LENGTH,
    POSTAL_CODE_MAX_LENGTH,
    REGION_MAX_LENGTH,
    Address,
    read_address_columns,
    write_address_columns,
)
from cdp.clock import utcnow
from cdp.db import Base

CUSTOMER_ID_MAX_LENGTH = 64
NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254
PHONE_MAX_LENGTH = 16
LANGUAGE_MAX_LENGTH = 35
TIMEZONE_MAX_LENGTH = 64


class Profile(Base):
    """One customer. Email and phone here are the current contact values; every identifier
    that ever pointed at the customer lives in identities."""

    __tablename__ = "profiles"

    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_ID_MAX_LENGTH), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    last_name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX_LENGTH))
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX_LENGTH))
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX_LENGTH))
    timezone: Mapped[str | None] = mapped_column(String(TIMEZONE_MAX_LENGTH))
    address_line1: Mapped[str | None] = mapped_column(String(LINE_MAX_LENGTH))
    address_line2: Mapped[str | None] = mapped_column(String(LINE_MAX_LENGTH))
    address_city: Mapped[str | None] = mapped_column(String(CITY_MAX_LENGTH))
    address_region: Mapped[str | None] = mapped_column(String(REGION_MAX_LENGTH))
    address_postal_code: Mapped[str | None] = mapped_column(String(POSTAL_CODE_MAX_LENGTH))
    address_country: Mapped[str | None] = mapped_column(String(2))
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a verified identifier merged this profile into another (cdp.merges).
    merged_into: Mapped[str | None] = mapped_column(String(CUSTOMER_ID_MAX_LENGTH), index=True)

    @property
    def address(self) -> Address | None:
        """The default delivery address, None when the profile has none."""
        return read_address_columns(self, "address_")

    @address.setter
    def address(self, address: Address | None) -> None:
        write_address_columns(self, "address_", address)


@dataclass(frozen=True)
class ProfileAttributes:
    """What an upsert sets. None means "not provided": the stored value is kept.

    `custom`, when given, sets the declared custom attributes it names (validated against
    the definitions; others are kept) and replaces the free-form object of undeclared keys.
    The *_verified flags apply to email and phone (value and identity); `verified` to every
    other attribute given. An unverified value never replaces a verified one
    (UnverifiedOverwrite).
    """

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    timezone: str | None = None
    address: Address | None = None
    custom: dict[str, Any] | None = None
    email_verified: bool = False
    phone_verified: bool = False
    verified: bool = False
