"""Who is writing: a verified customer or an anonymous visitor.

Two things identify a customer, checked again on every action that reads or writes personal
data, so a conversation id alone never unlocks anyone's data:

- a signed customer token in the message metadata (`customer_token`, HS256 JWT signed with
  `CDP_IDENTITY_SECRET`), on any channel;
- a channel identity the connector reported (`metadata.channel_identity`, docs/channels.md),
  counted only through a *verified* CDP identity: an SMS or WhatsApp sender phone proven by
  Twilio's signature as a verified phone; a Messenger PSID proven by the app-secret
  signature as a verified `messenger_psid`; a web chat session or REST sender id (which the
  channel cannot prove) only once a one-time code linked that very conversation
  (actions/verification.py, cdp/verification).

Everything that shows or uses personal data asks `verified_customer_id` and
`identified_profile`; nothing else decides disclosure.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from cdp.clock import utcnow
from cdp.errors import InvalidIdentifier
from cdp.identities.models import Identity, IdentityType
from cdp.identities.service import normalise
from cdp.identity_token import identity_secret, verify_token
from cdp.profiles.models import Profile
from cdp.profiles.service import load_profile
from cdp.verification.service import (
    CHANNEL_IDENTITY_LINKS,
    SESSION_LINK_TYPES,
    Requester,
    session_link_lifetime,
)

TOKEN_METADATA_KEY = "customer_token"
CHANNEL_IDENTITY_KEY = "channel_identity"
# The channel identities the connectors report map to the CDP identity that must be verified
# to link one to a profile (CHANNEL_IDENTITY_LINKS). These two must also carry `proven`: the
# channel itself proved the value (Twilio's or Messenger's signature).
PROVEN_CHANNEL_TYPES = frozenset({"twilio_sender", "messenger_psid"})
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


def channel_identity_of(metadata: Any, sender_id: str) -> tuple[str, str] | None:
    """`(type, value)` of the channel identity the connector reported for this very
    conversation, or None.

    Only the types in CHANNEL_IDENTITY_LINKS count, the two provable ones only when proven,
    and only when the value is the conversation's own sender (the connectors use the phone,
    PSID, session or REST sender as conversation id), so metadata copied into another
    conversation proves nothing. Web and REST identities are never proven: they identify
    nobody until a one-time code links them (then only through that verified link).
    """
    claim = metadata.get(CHANNEL_IDENTITY_KEY) if isinstance(metadata, dict) else None
    if not isinstance(claim, dict):
        return None
    kind, value = claim.get("type"), claim.get("value")
    if kind not in CHANNEL_IDENTITY_LINKS or not isinstance(value, str) or not value:
        return None
    if kind in PROVEN_CHANNEL_TYPES and claim.get("proven") is not True:
        return None
    if sender_id.removeprefix(WHATSAPP_PREFIX) != value:
        return None
    return kind, value


def channel_requester(tracker: Tracker) -> Requester | None:
    """The channel identity of the latest message, as the requester of a one-time code."""
    found = channel_identity_of(_message_metadata(tracker), tracker.sender_id)
    if found is None:
        return None
    try:
        return Requester.of(*found, channel=tracker.get_latest_input_channel())
    except InvalidIdentifier:
        return None


def verified_customer_id(tracker: Tracker, *, at_session_start: bool = False) -> str | None:
    """Who this turn proves the writer to be, checked without touching the database.

    The `sub` of a valid token (a customer id, which never contains ":"), else the channel
    identity as `type:value`; `identified_profile` turns either into a profile, the channel
    identity only through a verified link.
    """
    metadata = _session_start_metadata(tracker) if at_session_start else _message_metadata(tracker)
    customer_id = verify_token(_token_in(metadata), identity_secret())
    if customer_id:
        return customer_id
    found = channel_identity_of(metadata, tracker.sender_id)
    return f"{found[0]}:{found[1]}" if found else None


def profile_by_verified_identity(
    session: Session, identity_type: IdentityType, value: str
) -> Profile | None:
    """The profile owning this identifier through a verified link; None if unverified, or if
    it is a code-linked session whose code is older than VERIFIED_SESSION_DAYS."""
    try:
        normalised = normalise(identity_type, value)
    except InvalidIdentifier:
        return None
    query = (
        select(Profile)
        .join(Identity, Identity.customer_id == Profile.customer_id)
        .where(
            Identity.type == identity_type,
            Identity.value == normalised,
            Identity.verified.is_(True),
        )
    )
    if identity_type in SESSION_LINK_TYPES:
        query = query.where(Identity.verified_at >= utcnow() - session_link_lifetime())
    return session.scalar(query)


def identified_profile(session: Session, customer_id: str | None) -> Profile | None:
    """The CDP profile of what `verified_customer_id` returned; unknown means anonymous."""
    if not customer_id:
        return None
    kind, separator, value = customer_id.partition(":")
    if separator:
        link = CHANNEL_IDENTITY_LINKS.get(kind)
        return profile_by_verified_identity(session, link, value) if link else None
    return load_profile(session, customer_id)


def named_customer_id(session: Session, customer_id: str | None) -> str | None:
    """The customer id of what `verified_customer_id` returned, for a caller that reads the
    profile itself: a token's customer id as it is (no query; an unknown one finds no
    profile there), a channel identity only through a verified link."""
    if customer_id and ":" not in customer_id:
        return customer_id
    profile = identified_profile(session, customer_id)
    return profile.customer_id if profile is not None else None


def _profile_id(session: Session, ref: str) -> str | None:
    profile = identified_profile(session, ref)
    return profile.customer_id if profile is not None else None


async def verified_profile_id(tracker: Tracker) -> str | None:
    """The customer id the writer is proven to be, or None for a visitor, checked in the CDP.

    `verified_customer_id` alone is not enough to tell a visitor: for web and REST it returns
    the channel identity, which only a verified link (a one-time code) makes a customer.
    """
    ref = verified_customer_id(tracker)
    if ref is None:
        return None
    return await in_cdp_transaction(lambda session: _profile_id(session, ref))
