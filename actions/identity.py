"""Who is writing: a verified customer or an anonymous visitor.

Two things identify a customer, checked again on every action that reads or writes personal
data, so a conversation id alone never unlocks anyone's data:

- a signed customer token in the message metadata (`customer_token`, HS256 JWT signed with
  `CDP_IDENTITY_SECRET`), on any channel;
- a channel identity the connector proved (`metadata.channel_identity`, docs/channels.md):
  an SMS or WhatsApp sender phone proven by Twilio's signature counts only if it is a
  *verified* phone identity in the CDP; a Messenger PSID only through a *verified*
  `messenger_psid` identity. Web chat and REST identities are never proven.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.errors import InvalidIdentifier
from cdp.identities.models import Identity, IdentityType
from cdp.identities.service import normalise
from cdp.identity_token import identity_secret, verify_token
from cdp.profiles.models import Profile
from cdp.profiles.service import load_profile

TOKEN_METADATA_KEY = "customer_token"
CHANNEL_IDENTITY_KEY = "channel_identity"
# Channel identities a connector can prove, and the CDP identity that must be verified to
# link one to a profile.
PROVEN_IDENTITY_LINKS = {
    "twilio_sender": IdentityType.PHONE,
    "messenger_psid": IdentityType.MESSENGER_PSID,
}
WHATSAPP_PREFIX = "whatsapp:"


def _token_in(metadata: Any) -> object:
    return metadata.get(TOKEN_METADATA_KEY) if isinstance(metadata, dict) else None


def _message_metadata(tracker: Tracker) -> Any:
    return (tracker.latest_message or {}).get("metadata")


def _session_start_metadata(tracker: Tracker) -> Any:
    # `action_session_start` runs before the opening message is logged: only the session
    # metadata has it.
    return tracker.get_slot("session_started_metadata")


def message_token(tracker: Tracker) -> object:
    """The token sent with the latest user message."""
    return _token_in(_message_metadata(tracker))


def session_start_token(tracker: Tracker) -> object:
    """The token of the message that opened the session."""
    return _token_in(_session_start_metadata(tracker))


def proven_channel_ref(metadata: Any, sender_id: str) -> str | None:
    """`type:value` of a channel identity the connector proved for this very conversation.

    Only the types in PROVEN_IDENTITY_LINKS count, and only when the value is the
    conversation's own sender (the connectors use the phone or PSID as conversation id), so
    metadata copied into another conversation proves nothing.
    """
    claim = metadata.get(CHANNEL_IDENTITY_KEY) if isinstance(metadata, dict) else None
    if not isinstance(claim, dict) or claim.get("proven") is not True:
        return None
    kind, value = claim.get("type"), claim.get("value")
    if kind not in PROVEN_IDENTITY_LINKS or not isinstance(value, str) or not value:
        return None
    if sender_id.removeprefix(WHATSAPP_PREFIX) != value:
        return None
    return f"{kind}:{value}"


def verified_customer_id(tracker: Tracker, *, at_session_start: bool = False) -> str | None:
    """Who this turn proves the writer to be, checked without touching the database.

    The `sub` of a valid token (a customer id, which never contains ":"), else a proven
    channel identity as `type:value`; `identified_profile` turns either into a profile.
    """
    metadata = _session_start_metadata(tracker) if at_session_start else _message_metadata(tracker)
    customer_id = verify_token(_token_in(metadata), identity_secret())
    return customer_id or proven_channel_ref(metadata, tracker.sender_id)


def profile_by_verified_identity(
    session: Session, identity_type: IdentityType, value: str
) -> Profile | None:
    """The profile owning this identifier through a verified link; None if unverified."""
    try:
        normalised = normalise(identity_type, value)
    except InvalidIdentifier:
        return None
    return session.scalar(
        select(Profile)
        .join(Identity, Identity.customer_id == Profile.customer_id)
        .where(
            Identity.type == identity_type,
            Identity.value == normalised,
            Identity.verified.is_(True),
        )
    )


def identified_profile(session: Session, customer_id: str | None) -> Profile | None:
    """The CDP profile of what `verified_customer_id` returned; unknown means anonymous."""
    if not customer_id:
        return None
    kind, separator, value = customer_id.partition(":")
    if separator:
        link = PROVEN_IDENTITY_LINKS.get(kind)
        return profile_by_verified_identity(session, link, value) if link else None
    return load_profile(session, customer_id)
