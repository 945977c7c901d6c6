"""Erasure tombstones, erasure records and the audit log of personal-data reads."""

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.column_types import BIG_ID, string_enum
from cdp.db import Base

ACTOR_MAX_LENGTH = 100
PURPOSE_MAX_LENGTH = 200
HMAC_HEX_LENGTH = 64


class Erasure(Base):
    """One erasure: who asked, why, when; the person is only a keyed hash of their id."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    customer_hmac: Mapped[str] = mapped_column(String(HMAC_HEX_LENGTH))
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX_LENGTH))
    reason: Mapped[str] = mapped_column(Text)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    profiles: Mapped[int]
    identifiers: Mapped[int]


class ErasedIdentifier(Base):
    """A keyed hash of an identifier of an erased person, so resolution won't silently
    bring them back."""

    __tablename__ = "erased_identifiers"
    __table_args__ = (UniqueConstraint("type", "value_hmac"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    erasure_id: Mapped[int] = mapped_column(ForeignKey(Erasure.id, ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    value_hmac: Mapped[str] = mapped_column(String(HMAC_HEX_LENGTH))


class AuditAction(str, Enum):
    """What a person did with someone's personal data."""

    READ = "read"
    EXPORT = "export"
    ERASE = "erase"
    MERGE = "merge"
    UNMERGE = "unmerge"


class AuditEntry(Base):
    """Who touched which profile's personal data, when, which fields and for what purpose.

    `customer_id` has no foreign key: the log outlives an erased profile.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX_LENGTH))
    action: Mapped[AuditAction] = mapped_column(string_enum(AuditAction, "audit_action"))
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(PURPOSE_MAX_LENGTH))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
