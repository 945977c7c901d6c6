"""The verification_codes and verification_outbox tables.

A code is never stored in clear: only an HMAC of it (keyed, with a per-row nonce). The target
(the phone or email on file the code went to) is kept as a keyed hash too, enough to count
the codes sent to it; the development outbox is the one place a code is readable.
"""

from datetime import datetime
from enum import Enum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cdp.column_types import BIG_ID, string_enum
from cdp.db import Base
from cdp.profiles.models import CUSTOMER_ID_MAX_LENGTH, Profile

CHANNEL_KIND_MAX_LENGTH = 32
CHANNEL_VALUE_MAX_LENGTH = 255
CHANNEL_MAX_LENGTH = 32
HASH_LENGTH = 64
NONCE_LENGTH = 32


class TargetType(str, Enum):
    """Where a code can go: a contact point on file."""

    PHONE = "phone"
    EMAIL = "email"


class CodeState(str, Enum):
    """`pending` until checked right (`verified`), out of attempts (`exhausted`), replaced by
    a newer code for the same requester (`superseded`), refused at link time (`refused`:
    the channel identity belongs to another profile) or never delivered (`undelivered`).
    Expiry is not a state: it is read from `expires_at` against the clock."""

    PENDING = "pending"
    VERIFIED = "verified"
    EXHAUSTED = "exhausted"
    SUPERSEDED = "superseded"
    REFUSED = "refused"
    UNDELIVERED = "undelivered"


class VerificationCode(Base):
    """One code issued to a requester (the channel identity that asked).

    `customer_id` is NULL for a decoy: the target was not on file, nothing was sent, but the
    row behaves like a real code (attempts, expiry, send limit), so the conversation can't
    tell the two apart.
    """

    __tablename__ = "verification_codes"
    __table_args__ = (
        Index(None, "requester_type", "requester_value", "created_at"),
        Index(None, "target_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(
        String(CUSTOMER_ID_MAX_LENGTH),
        ForeignKey(Profile.customer_id, ondelete="CASCADE"),
        index=True,
    )
    requester_type: Mapped[str] = mapped_column(String(CHANNEL_KIND_MAX_LENGTH))
    requester_value: Mapped[str] = mapped_column(String(CHANNEL_VALUE_MAX_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_MAX_LENGTH))
    target_type: Mapped[TargetType] = mapped_column(
        string_enum(TargetType, "verification_target_type")
    )
    target_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    nonce: Mapped[str] = mapped_column(String(NONCE_LENGTH))
    code_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    state: Mapped[CodeState] = mapped_column(string_enum(CodeState, "verification_code_state"))
    attempts_left: Mapped[int]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """A message the development sender "sent": read with `python -m cdp outbox`."""

    __tablename__ = "verification_outbox"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    code_id: Mapped[int | None] = mapped_column(
        BIG_ID, ForeignKey(VerificationCode.id, ondelete="CASCADE"), index=True
    )
    target_type: Mapped[TargetType] = mapped_column(
        string_enum(TargetType, "verification_target_type")
    )
    recipient: Mapped[str] = mapped_column(String(CHANNEL_VALUE_MAX_LENGTH), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
