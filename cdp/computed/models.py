"""Stored state of aggregate computed attributes, updated in the writer's transaction.

computed_state holds one row per profile and aggregate (count, exact decimal total, the
current extreme or first/last value and its time). computed_parts holds per-key tallies
(most_frequent, unique_list: key = the value) and per-day buckets (windowed aggregates:
key = the UTC day, `day` set) so windows are summed at read time with the current clock.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cdp.db import Base
from cdp.profiles.models import Profile

COMPUTED_NAME_MAX_LENGTH = 64
PART_KEY_MAX_LENGTH = 255
DECIMAL_TEXT_MAX_LENGTH = 64
SPEC_HASH_LENGTH = 16


class ComputedState(Base):
    """One aggregate of one profile; `spec_hash` ties it to the definition it was built by."""

    __tablename__ = "computed_state"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(COMPUTED_NAME_MAX_LENGTH), primary_key=True)
    spec_hash: Mapped[str] = mapped_column(String(SPEC_HASH_LENGTH))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Decimal as text: exact on both databases, whatever the scale of the summed field.
    total: Mapped[str] = mapped_column(String(DECIMAL_TEXT_MAX_LENGTH), default="0")
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime | None]


class ComputedPart(Base):
    """A tally per value, or a bucket per day, of one aggregate of one profile."""

    __tablename__ = "computed_parts"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(COMPUTED_NAME_MAX_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(PART_KEY_MAX_LENGTH), primary_key=True)
    day: Mapped[date | None]
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[str] = mapped_column(String(DECIMAL_TEXT_MAX_LENGTH), default="0")
