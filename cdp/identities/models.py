"""The identities table: which identifier belongs to which profile."""

from datetime import datetime
from enum import Enum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.column_types import BIG_ID, string_enum
from cdp.db import Base
from cdp.profiles.models import Profile

IDENTITY_VALUE_MAX_LENGTH = 255


class IdentityType(str, Enum):
    """Kinds of identifier, one per contact point or channel that can recognise a customer."""

    PHONE = "phone"
    EMAIL = "email"
    MESSENGER_PSID = "messenger_psid"
    WEB_CUSTOMER_ID = "web_customer_id"
    MEMBER_ID = "member_id"
    TWILIO_SENDER = "twilio_sender"
    SOCKETIO_SENDER = "socketio_sender"
    # A REST conversation linked by a one-time code (development channel, cdp.verification).
    REST_SENDER = "rest_sender"


class IdentitySource(str, Enum):
    """Where a link between identifier and profile came from, to weigh it later."""

    IMPORT = "import"
    CONVERSATION = "conversation"
    AGENT = "agent"
    API = "api"


class Identity(Base):
    """One identifier linked to one profile; UNIQUE(type, value) makes the database refuse a
    second owner."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("type", "value"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), index=True
    )
    type: Mapped[IdentityType] = mapped_column(string_enum(IdentityType, "identity_type"))
    value: Mapped[str] = mapped_column(String(IDENTITY_VALUE_MAX_LENGTH))
    verified: Mapped[bool] = mapped_column(default=False)
    source: Mapped[IdentitySource] = mapped_column(string_enum(IdentitySource, "identity_source"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the customer last proved it in a conversation (a one-time code, a verified link);
    # a code-linked web or REST session counts only for VERIFIED_SESSION_DAYS after it.
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
