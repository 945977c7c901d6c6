"""Normalising identifiers and linking them to profiles.

Identifiers are stored normalised, so the same phone typed two ways finds the same profile.
"""

import base64
import re
import secrets
from datetime import datetime
from functools import cache

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.clock import utcnow
from cdp.errors import ErasedIdentity, IdentityConflict, InvalidIdentifier, ProfileNotFound
from cdp.identities.models import (
    IDENTITY_VALUE_MAX_LENGTH,
    Identity,
    IdentitySource,
    IdentityType,
)
from cdp.privacy.keys import is_erased_identifier
from cdp.profiles.models import EMAIL_MAX_LENGTH, Profile

# Values that channels and forms send when they have no real identifier.
PLACEHOLDER_VALUES = frozenset(
    {"", "null", "none", "nil", "nan", "undefined", "anonymous", "unknown", "n/a", "na", "-", "?"}
)
# Only zeros, a plus and separators: +0000000, 000-000, (00) 00 00.
_ALL_ZEROS = re.compile(r"[+0\s.\-()/]*0[+0\s.\-()/]*")
NEW_CUSTOMER_ID_PREFIX = "C-"
# Five random bytes are eight base32 characters: 2**40 ids, checked by the primary key.
_NEW_CUSTOMER_ID_BYTES = 5
_NEW_CUSTOMER_ID_ATTEMPTS = 10

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
    Placeholders such as "null", "n/a" or "unknown", all-zero values (+0000000, 00000) and
    one-digit-repeated phone numbers are refused, so they can never merge strangers into one
    profile.
    """
    kind = parse_identity_type(identity_type)
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{kind.value} must be a string, got {type(value).__name__}")
    text = value.strip()
    if text.lower() in PLACEHOLDER_VALUES or _ALL_ZEROS.fullmatch(text):
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
    return session.scalars(
        _profile_by_identity_statement(), {"type": kind, "value": normalised}
    ).first()


@cache
def _profile_by_identity_statement() -> Select[tuple[Profile]]:
    # Built once: SQLAlchemy reuses its cache key and compiled SQL on every lookup (the
    # first read of nearly every bot turn).
    return (
        select(Profile)
        .join(Identity, Identity.customer_id == Profile.customer_id)
        .where(Identity.type == bindparam("type"), Identity.value == bindparam("value"))
    )


def mark_proven(
    session: Session, identity_type: IdentityType, normalised: str, at: datetime | None = None
) -> None:
    """Record that the customer has just proven this identifier again (a code, a signed
    channel): a code-linked session counts from this moment (VERIFIED_SESSION_DAYS)."""
    session.execute(
        update(Identity)
        .where(Identity.type == identity_type, Identity.value == normalised)
        .values(verified_at=at or utcnow())
        .execution_options(synchronize_session="fetch")
    )


def link_identity(
    session: Session,
    customer_id: str,
    identity_type: IdentityType | str,
    value: object,
    verified: bool = False,
    source: IdentitySource = IdentitySource.API,
    *,
    allow_erased: bool = False,
) -> Change:
    """Link an identifier to a profile, idempotently.

    Linking it again changes nothing, except that verified=True upgrades an unverified link
    (verification is never taken back here). The first source is kept. An identifier owned
    by another profile raises IdentityConflict naming both; one of an erased person raises
    ErasedIdentity unless allow_erased, so an old export can't bring them back.
    """
    kind = parse_identity_type(identity_type)
    normalised = normalise(kind, value)
    if session.get(Profile, customer_id) is None:
        raise ProfileNotFound(customer_id)
    existing = session.scalar(
        select(Identity).where(Identity.type == kind, Identity.value == normalised)
    )
    if existing is None:
        if not allow_erased and is_erased_identifier(session, kind.value, normalised):
            raise ErasedIdentity(kind.value)
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
    return list(session.scalars(_identities_statement(), {"customer_id": customer_id}))


@cache
def _identities_statement() -> Select[tuple[Identity]]:
    return (
        select(Identity)
        .where(Identity.customer_id == bindparam("customer_id"))
        .order_by(Identity.type, Identity.value)
    )


def canonical_profile(session: Session, profile: Profile) -> Profile:
    """The profile that survives `profile`: itself, or where its merges lead."""
    seen = {profile.customer_id}
    while profile.merged_into is not None:
        target = session.get(Profile, profile.merged_into)
        if target is None or target.customer_id in seen:
            raise RuntimeError(f"broken merge chain at {profile.customer_id}")
        seen.add(target.customer_id)
        profile = target
    return profile


def resolve_or_create_profile(
    session: Session,
    identity_type: IdentityType | str,
    value: object,
    *,
    source: IdentitySource = IdentitySource.CONVERSATION,
    verified: bool = False,
    allow_erased: bool = False,
) -> Profile:
    """The (surviving) profile the identifier belongs to, created with it if nobody has it.

    Safe when first messages race: the profile and its identity are inserted in a savepoint,
    and a loser of the race hits UNIQUE(type, value), rolls the savepoint back and returns
    the winner's profile (on PostgreSQL it waits for the winner's commit; on SQLite BEGIN
    IMMEDIATE serialises writers). A new phone or email also becomes the profile's contact
    value. An identifier of an erased person raises ErasedIdentity unless allow_erased.
    """
    kind = parse_identity_type(identity_type)
    normalised = normalise(kind, value)
    owner = find_profile_by_identity(session, kind, normalised)
    if owner is not None:
        return canonical_profile(session, owner)
    if not allow_erased and is_erased_identifier(session, kind.value, normalised):
        raise ErasedIdentity(kind.value)
    now = utcnow()
    profile = Profile(
        customer_id=_unused_customer_id(session),
        custom={},
        created_at=now,
        updated_at=now,
        email=normalised if kind is IdentityType.EMAIL else None,
        phone=normalised if kind is IdentityType.PHONE else None,
    )
    try:
        with session.begin_nested():
            session.add(profile)
            session.flush()
            session.add(
                Identity(
                    customer_id=profile.customer_id,
                    type=kind,
                    value=normalised,
                    verified=verified,
                    source=source,
                    created_at=now,
                )
            )
        return profile
    except IntegrityError:
        owner = find_profile_by_identity(session, kind, normalised)
        if owner is None:
            raise
        return canonical_profile(session, owner)


def new_customer_id() -> str:
    """A random customer id like C-K3ZQ7M2A for profiles first seen in a conversation."""
    suffix = base64.b32encode(secrets.token_bytes(_NEW_CUSTOMER_ID_BYTES)).decode("ascii")
    return NEW_CUSTOMER_ID_PREFIX + suffix


def _unused_customer_id(session: Session) -> str:
    for _ in range(_NEW_CUSTOMER_ID_ATTEMPTS):
        candidate = new_customer_id()
        if session.get(Profile, candidate) is None:
            return candidate
    raise RuntimeError(f"no free customer id after {_NEW_CUSTOMER_ID_ATTEMPTS} attempts")
