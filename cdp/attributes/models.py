"""Attribute values with provenance, and the registry of custom attribute types in use."""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.column_types import string_enum
from cdp.db import Base
from cdp.identities.models import IdentitySource
from cdp.profiles.models import Profile

ATTRIBUTE_NAME_MAX_LENGTH = 64


class AttributeKind(str, Enum):
    """Standard values live in profile columns (only provenance here); custom values here."""

    STANDARD = "standard"
    CUSTOM = "custom"


class AttributeValue(Base):
    """Who set one attribute of one profile, when, and whether it was verified."""

    __tablename__ = "attribute_values"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(ATTRIBUTE_NAME_MAX_LENGTH), primary_key=True)
    kind: Mapped[AttributeKind] = mapped_column(string_enum(AttributeKind, "attribute_kind"))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    value_type: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[IdentitySource] = mapped_column(string_enum(IdentitySource, "attribute_source"))
    verified: Mapped[bool] = mapped_column(default=False)
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttributeTypeInUse(Base):
    """The type each custom attribute had when its first value was stored; it may not change."""

    __tablename__ = "attribute_types"

    name: Mapped[str] = mapped_column(String(ATTRIBUTE_NAME_MAX_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Provenance:
    """Where a value came from: source, verified, when it was set."""

    source: str
    verified: bool
    set_at: datetime
