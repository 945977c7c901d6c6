"""Recording which profile a Rasa conversation belongs to, and listing a profile's ones."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.clock import utcnow
from cdp.conversations.models import CHANNEL_MAX_LENGTH, SENDER_ID_MAX_LENGTH, ConversationRef
from cdp.errors import InvalidValue, ProfileNotFound
from cdp.profiles.models import Profile
from cdp.validation import clean_text


def record_conversation(session: Session, customer_id: str, channel: str, sender_id: str) -> Change:
    """Link the conversation (channel, sender_id) to the profile, idempotently.

    Seeing it again only moves last_seen_at. A conversation first linked to another profile
    is re-pointed (UPDATED): the customer who identified last owns it. Two first messages
    racing are settled by UNIQUE(channel, sender_id) and a savepoint retry.
    """
    channel = _field("channel", channel, CHANNEL_MAX_LENGTH)
    sender_id = _field("sender_id", sender_id, SENDER_ID_MAX_LENGTH)
    if session.get(Profile, customer_id) is None:
        raise ProfileNotFound(customer_id)
    now = utcnow()
    existing = _find(session, channel, sender_id)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(
                    ConversationRef(
                        customer_id=customer_id,
                        channel=channel,
                        sender_id=sender_id,
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                )
            return Change.CREATED
        except IntegrityError:
            existing = _find(session, channel, sender_id)
            if existing is None:
                raise
    existing.last_seen_at = now
    if existing.customer_id == customer_id:
        session.flush()
        return Change.UNCHANGED
    existing.customer_id = customer_id
    session.flush()
    return Change.UPDATED


def find_conversation_profile(session: Session, channel: str, sender_id: str) -> str | None:
    """The customer_id a conversation belongs to, None if it was never linked."""
    ref = _find(session, channel.strip(), sender_id.strip())
    return ref.customer_id if ref else None


def list_conversations(session: Session, customer_id: str) -> list[ConversationRef]:
    """A profile's conversations, oldest first."""
    return list(
        session.scalars(
            select(ConversationRef)
            .where(ConversationRef.customer_id == customer_id)
            .order_by(ConversationRef.first_seen_at, ConversationRef.id)
        )
    )


def _find(session: Session, channel: str, sender_id: str) -> ConversationRef | None:
    return session.scalar(
        select(ConversationRef).where(
            ConversationRef.channel == channel, ConversationRef.sender_id == sender_id
        )
    )


def _field(name: str, value: object, max_length: int) -> str:
    try:
        return clean_text(value, max_length=max_length)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field=name) from None
