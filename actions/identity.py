"""Who is writing: a verified customer or an anonymous visitor.

Identity comes only from a signed customer token in the message metadata (`customer_token`,
HS256 JWT signed with `CDP_IDENTITY_SECRET`). It is checked again on every action that reads
or writes personal data, so a conversation id alone never unlocks anyone's data.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from cdp.identity_token import identity_secret, verify_token
from cdp.profiles.models import Profile
from cdp.profiles.service import get_profile

TOKEN_METADATA_KEY = "customer_token"


def _token_in(metadata: Any) -> object:
    return metadata.get(TOKEN_METADATA_KEY) if isinstance(metadata, dict) else None


def message_token(tracker: Tracker) -> object:
    """The token sent with the latest user message."""
    return _token_in((tracker.latest_message or {}).get("metadata"))


def session_start_token(tracker: Tracker) -> object:
    """The token of the message that opened the session.

    `action_session_start` runs before that message is logged: only the session metadata has it.
    """
    return _token_in(tracker.get_slot("session_started_metadata"))


def verified_customer_id(tracker: Tracker, *, at_session_start: bool = False) -> str | None:
    """The `sub` of a valid token on this turn, checked without touching the database."""
    token = session_start_token(tracker) if at_session_start else message_token(tracker)
    return verify_token(token, identity_secret())


def identified_profile(session: Session, customer_id: str | None) -> Profile | None:
    """The CDP profile of a verified customer id; an unknown id counts as anonymous."""
    return get_profile(session, customer_id) if customer_id else None
