"""Handoff tables: one row per handoff, its transitions, its messages, and the agents.

A conversation is owned by the bot unless it has an open handoff (`requested` or `accepted`);
a partial unique index makes "at most one open handoff per conversation" a database fact.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.column_types import BIG_ID, string_enum
from cdp.db import Base

HANDOFF_ID_MAX_LENGTH = 64
CONVERSATION_ID_MAX_LENGTH = 255
USERNAME_MAX_LENGTH = 64
MESSAGE_ID_MAX_LENGTH = 128


class HandoffState(str, Enum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"
    RETURNED = "returned"
    ABANDONED = "abandoned"


OPEN_STATES = (HandoffState.REQUESTED, HandoffState.ACCEPTED)


class ReasonCode(str, Enum):
    USER_REQUESTED = "user_requested"
    NLU_FALLBACK = "nlu_fallback"
    LOW_CONFIDENCE = "low_confidence"
    NEGATIVE_SENTIMENT = "negative_sentiment"
    POLICY = "policy"
    BOT_ERROR = "bot_error"


class MessageAuthor(str, Enum):
    CUSTOMER = "customer"
    AGENT = "agent"
    NOTE = "note"


class Delivery(str, Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class AgentRole(str, Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"


class Handoff(Base):
    """A request for a person, with the package built when it was made and its routing."""

    __tablename__ = "handoffs"
    __table_args__ = (
        Index(
            "uq_handoffs_open_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text("state IN ('requested', 'accepted')"),
            postgresql_where=text("state IN ('requested', 'accepted')"),
        ),
        Index("ix_handoffs_state_team", "state", "team"),
    )

    id: Mapped[str] = mapped_column(String(HANDOFF_ID_MAX_LENGTH), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_MAX_LENGTH))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[HandoffState] = mapped_column(string_enum(HandoffState, "handoff_state"))
    reason: Mapped[ReasonCode] = mapped_column(string_enum(ReasonCode, "handoff_reason"))
    channel: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(35))
    team: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int]
    triage_score: Mapped[int]
    rule_id: Mapped[str] = mapped_column(String(64))
    package: Mapped[dict[str, Any]] = mapped_column(default=dict)
    routing: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent: Mapped[str | None] = mapped_column(String(USERNAME_MAX_LENGTH))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # When Rasa was told the handoff ended; NULL on a closed handoff means "tell it again".
    bot_notified_at: Mapped[datetime | None]
    followup: Mapped[str | None] = mapped_column(String(16))


class HandoffEvent(Base):
    """One transition of a handoff: the analytics source and the audit trail."""

    __tablename__ = "handoff_events"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    handoff_id: Mapped[str] = mapped_column(ForeignKey(Handoff.id, ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class HandoffMessage(Base):
    """A customer message relayed to the agent, an agent reply, or an internal note.

    The id is the idempotency key: Rasa's message id for customer messages, the console's
    client-made key for replies and notes, so a redelivery never stores a second copy.
    """

    __tablename__ = "handoff_messages"
    __table_args__ = (
        Index("ix_handoff_messages_handoff_id_created_at", "handoff_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(MESSAGE_ID_MAX_LENGTH), primary_key=True)
    handoff_id: Mapped[str] = mapped_column(ForeignKey(Handoff.id, ondelete="CASCADE"))
    author: Mapped[MessageAuthor] = mapped_column(string_enum(MessageAuthor, "message_author"))
    agent: Mapped[str | None] = mapped_column(String(USERNAME_MAX_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivery: Mapped[Delivery | None] = mapped_column(string_enum(Delivery, "message_delivery"))
    delivery_error: Mapped[str | None] = mapped_column(String(500))
    # Set by the relay action when it utters the reply: a second trigger then utters nothing.
    relayed_at: Mapped[datetime | None]


class Agent(Base):
    """A person who works the console; the role decides whether personal data is shown."""

    __tablename__ = "agents"

    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[AgentRole] = mapped_column(string_enum(AgentRole, "agent_role"))
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
