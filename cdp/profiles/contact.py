"""Contact details a customer gives in a conversation: email and phone, under the provenance rule.

A chat message does not prove that the customer owns an address or a number, so such a value
is stored unverified unless the channel proved it (an SMS from that very number). An unverified
value never replaces a verified one: `update_contact` reports `kept_verified` and writes
nothing, so the assistant can tell the customer what happened instead of failing.
"""

from dataclasses import dataclass
from enum import Enum

from sqlalchemy.orm import Session

from cdp.attributes.service import attribute_rows
from cdp.errors import ErasedIdentity, IdentityConflict, InvalidValue, ProfileNotFound
from cdp.identities.models import IdentitySource, IdentityType
from cdp.identities.service import normalise
from cdp.profiles.models import Profile, ProfileAttributes
from cdp.profiles.service import upsert_profile

CONTACT_TYPES = (IdentityType.EMAIL, IdentityType.PHONE)


class ContactOutcome(str, Enum):
    """What `update_contact` did."""

    SAVED = "saved"  # stored (unverified unless the channel proved it)
    UNCHANGED = "unchanged"  # the profile already has this value
    KEPT_VERIFIED = "kept_verified"  # a verified value is in place; the new one was not stored
    IN_USE = "in_use"  # another profile owns the value (or an erased person did)


@dataclass(frozen=True)
class ContactUpdate:
    """The outcome, the normalised value asked for, and the value now on the profile."""

    outcome: ContactOutcome
    requested: str
    current: str | None
    verified: bool


def current_contact(
    session: Session, customer_id: str, kind: IdentityType
) -> tuple[str | None, bool]:
    """The profile's email or phone and whether its stored provenance is verified."""
    profile = session.get(Profile, customer_id)
    if profile is None:
        raise ProfileNotFound(customer_id)
    row = attribute_rows(session, customer_id).get(kind.value)
    return getattr(profile, kind.value), bool(row is not None and row.verified)


def update_contact(
    session: Session,
    customer_id: str,
    kind: IdentityType,
    value: str,
    *,
    verified: bool = False,
    source: IdentitySource = IdentitySource.CONVERSATION,
) -> ContactUpdate:
    """Set the customer's email or phone; idempotent (the same value again is UNCHANGED).

    Raises InvalidIdentifier for a malformed value (the message says why) and InvalidValue
    for a kind other than email or phone.
    """
    if kind not in CONTACT_TYPES:
        raise InvalidValue(f"only email and phone can be updated here, not {kind.value}")
    requested = normalise(kind, value)
    current, current_verified = current_contact(session, customer_id, kind)
    if current == requested and (current_verified or not verified):
        return ContactUpdate(ContactOutcome.UNCHANGED, requested, current, current_verified)
    if current is not None and current != requested and current_verified and not verified:
        return ContactUpdate(ContactOutcome.KEPT_VERIFIED, requested, current, True)
    flags = {f"{kind.value}_verified": verified}
    attributes = ProfileAttributes(**{kind.value: requested}, **flags)
    try:
        # A savepoint, so a refused identity link leaves the caller's transaction usable.
        with session.begin_nested():
            upsert_profile(session, customer_id, attributes, source=source)
    except (IdentityConflict, ErasedIdentity):
        return ContactUpdate(ContactOutcome.IN_USE, requested, current, current_verified)
    return ContactUpdate(ContactOutcome.SAVED, requested, requested, verified)
