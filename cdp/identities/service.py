"""Normalising identifiers and linking them to profiles.

Identifiers are stored normalised, so the same phone typed two ways finds the same profile.
"""

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.errors import IdentityConflict, InvalidIdentifier, ProfileNotFound
from cdp.identities.models import (
    IDENTITY_VALUE_MAX_LENGTH,
    Identity,
    IdentitySource,
    IdentityType,
)
from cdp.profiles.models import EMAIL_MAX_LENGTH, Profile

# Values that channels and forms send when they have no real identifier.
PLACEHOLDER_VALUES = frozenset({"", "null", "none", "undefined", "anonymous", "unknown"})

_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
# E.164: "+", a country code that never starts with 0, 8 to 15 digits in all.
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def parse_identity_type(name: IdentityType | str) -> IdentityType:
    """The IdentityType for a name like "phone"; InvalidIdentifier for unknown names."""
    try:
        return IdentityType(name)
    except ValueError:
        known = ", ".join(member.value for member in IdentityType)
        raise InvalidIdentifier(f"unknown identity type {name!r}; known types: {known}") from None


def normalise(identity_type: IdentityType | str, value: object) -> str:
    """The canonical form of an identifier, or InvalidIdentifier saying what is wrong.

    phone: E.164 (`+` and 8-15 digits; spaces, dots, dashes and parentheses dropped; a
    leading 00 becomes +). email: trimmed, lower case, local@domain.tld. Others: trimmed.
    Placeholders such as "null" or "unknown", all-zero values and one-digit-repeated phone
    numbers are refused, so they can never merge strangers into one profile.
    """
    kind = parse_identity_type(identity_type)
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind.value} must be a string, got {type(value).__name__}")
    text = value.strip()
    if text.lower() in PLACEHOLDER_VALUES or set(text) == {"0"}:
        raise InvalidIdentifier(f"{kind.value} {value!r} is a placeholder, not an identifier")
    if kind is IdentityType.PHONE:
        return _normalise_phone(text)
    if kind is IdentityType.EMAIL:
        return _normalise_email(text)
    if len(text) > IDENTITY_VALUE_MAX_LENGTH:
        raise InvalidIdentifier(
            f"{kind.value} is longer than {IDENTITY_VALUE_MAX_LENGTH} characters"
        )
    return text


def _normalise_phone(text: str) -> str:
    phone = _PHONE_SEPARATORS.sub("", text)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not _E164.fullmatch(phone):
        raise InvalidIdentifier(
            f"phone {text!r} is not an international number: "
            "expected + and 8-15 digits, like +15551230001"
        )
    if len(set(phone[1:])) == 1:
        raise InvalidIdentifier(f"phone {text!r} is a placeholder, not an identifier")
    return phone


def _normalise_email(text: str) -> str:
    email = text.lower()
    if len(email) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(email):
        raise InvalidIdentifier(f"email {text!r} is not an address like name@example.com")
    return email


def find_profile_by_identity(
    session: Session, identity_type: IdentityType | str, value: object
) -> Profile | None:
    """The profile the identifier belongs to, None if nobody has it.

    Raises InvalidIdentifier for a malformed value, so callers can ask the user again
    instead of reporting "not found".
    """
    kind = parse_identity_type(identity_type)
    normalised = normalise(kind, value)
    return session.scalar(
        select(Profile)
        .join(Identity, Identity.customer_id == Profile.customer_id)
        .where(Identity.type == kind, Identity.value == normalised)
    )


def link_identity(
    session: Session,
    customer_id: str,
    identity_type: IdentityType | str,
    value: object,
    verified: bool = False,
    source: IdentitySource = IdentitySource.API,
) -> Change:
    """Link an identifier to a profile, idempotently.

    Linking it again changes nothing, except that verified=True upgrades an unverified link
    (verification is never taken back here). The first source is kept. An identifier owned
    by another profile raises IdentityConflict naming both.
    """
    kind = parse_identity_type(identity_type)
    normalised = normalise(kind, value)
    if session.get(Profile, customer_id) is None:
        raise ProfileNotFound(customer_id)
    existing = session.scalar(
        select(Identity).where(Identity.type == kind, Identity.value == normalised)
    )
    if existing is None:
        session.add(
            Identity(
                customer_id=customer_id,
                type=kind,
                value=normalised,
                verified=verified,
                source=source,
            )
        )
        session.flush()
        return Change.CREATED
    if existing.customer_id != customer_id:
        raise IdentityConflict(kind.value, normalised, existing.customer_id, customer_id)
    if verified and not existing.verified:
        existing.verified = True
        return Change.UPDATED
    return Change.UNCHANGED


def list_identities(session: Session, customer_id: str) -> list[Identity]:
    """A profile's identifiers, ordered by type then value."""
    return list(
        session.scalars(
            select(Identity)
            .where(Identity.customer_id == customer_id)
            .order_by(Identity.type, Identity.value)
        )
    )
