"""The events table and the shape of an event to record."""

from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cdp.column_types import BIG_ID
from cdp.db import Base
from cdp.profiles.models import Profile

EVENT_ID_MAX_LENGTH = 128
EVENT_TYPE_MAX_LENGTH = 64
CHANNEL_MAX_LENGTH = 32


class Event(Base):
    """Something a customer did or that happened to them; `event_id` is the sender's
    idempotency key, so a redelivered event is stored once."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_MAX_LENGTH), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey(Profile.customer_id, ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(EVENT_TYPE_MAX_LENGTH))
    occurred_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_MAX_LENGTH))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)


@dataclass(frozen=True, slots=True)
class EventIn:
    """An event to record; values already validated. Slots: a bulk import holds a chunk of
    them, and the collector walks a __dict__ per event less."""

    event_id: str
    customer_id: str
    type: str
    occurred_at: datetime
    channel: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


# The events columns a writer sets, in this order: EventIn's fields (`id` is the database's).
EVENT_FIELDS = ("event_id", "customer_id", "type", "occurred_at", "channel", "properties")
_EVENT_VALUES = attrgetter(*EVENT_FIELDS)


def event_values(event: EventIn) -> tuple[Any, ...]:
    """The event's EVENT_FIELDS values, in that order."""
    return _EVENT_VALUES(event)  # type: ignore[no-any-return]
