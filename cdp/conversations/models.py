"""The conversation_refs table: which Rasa conversation belongs to which profile."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.column_types import BIG_ID
from cdp.db import Base
from cdp.profiles.models import Profile

SENDER_ID_MAX_LENGTH = 255
CHANNEL_MAX_LENGTH = 32


class ConversationRef(Base):
    """One Rasa conversation (sender_id on a channel); merges re-point it, erasure deletes it."""

    __tablename__ = "conversation_refs"
    __table_args__ = (UniqueConstraint("channel", "sender_id"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX_LENGTH))
    sender_id: Mapped[str] = mapped_column(String(SENDER_ID_MAX_LENGTH))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
