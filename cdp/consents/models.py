"""The consents table: one row per grant or withdrawal, never updated."""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.column_types import BIG_ID, string_enum
from cdp.db import Base
from cdp.profiles.models import Profile

SOURCE_MAX_LENGTH = 64
EVIDENCE_MAX_LENGTH = 2000


class ConsentPurpose(str, Enum):
    """What the customer lets us contact them for."""

    SERVICE_MESSAGES = "service_messages"
    MARKETING = "marketing"


class ConsentChannel(str, Enum):
    """Where; `any` covers every channel unless a channel-specific record is newer."""

    EMAIL = "email"
    SMS = "sms"
    MESSENGER = "messenger"
    WEB = "web"
    ANY = "any"


class ConsentStatus(str, Enum):
    """The decision a record states."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class Consent(Base):
    """One decision of the customer, with when, where it came from and the evidence."""

    __tablename__ = "consents"
    __table_args__ = (Index(None, "customer_id", "purpose", "channel", "recorded_at"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey(Profile.customer_id, ondelete="CASCADE"))
    purpose: Mapped[ConsentPurpose] = mapped_column(string_enum(ConsentPurpose, "consent_purpose"))
    channel: Mapped[ConsentChannel] = mapped_column(string_enum(ConsentChannel, "consent_channel"))
    status: Mapped[ConsentStatus] = mapped_column(string_enum(ConsentStatus, "consent_status"))
    recorded_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(SOURCE_MAX_LENGTH))
    evidence: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class ConsentIn:
    """A decision to record; values already validated."""

    customer_id: str
    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    recorded_at: datetime
    source: str
    evidence: str | None = None
