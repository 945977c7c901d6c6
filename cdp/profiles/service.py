"""Reading, resolving and upserting profiles, and the JSON view of one."""

import re
from typing import Any

from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.clock import isoformat_z, utcnow
from cdp.errors import InvalidIdentifier, InvalidValue
from cdp.identities.models import IdentitySource, IdentityType
from cdp.identities.service import (
    find_profile_by_identity,
    link_identity,
    list_identities,
    normalise,
)
from cdp.orders.service import count_orders, last_order
from cdp.profiles.models import (
    CUSTOMER_ID_MAX_LENGTH,
    LANGUAGE_MAX_LENGTH,
    NAME_MAX_LENGTH,
    Profile,
    ProfileAttributes,
)
from cdp.validation import clean_code, clean_text

# A BCP 47 tag in its common shape: en, es-MX, zh-Hant-TW.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def normalise_customer_id(value: object) -> str:
    """A customer id like C-1001; it has no ":", so it never looks like a type:value ref."""
    return clean_code(value, max_length=CUSTOMER_ID_MAX_LENGTH)


def normalise_language(value: object) -> str:
    """A language tag like en or es-MX."""
    tag = clean_text(value, max_length=LANGUAGE_MAX_LENGTH)
    if not _LANGUAGE_TAG.fullmatch(tag):
        raise InvalidValue(f"{tag!r} is not a language tag like en or es-MX")
    return tag


def normalise_name(value: object) -> str:
    """A first or last name, trimmed."""
    return clean_text(value, max_length=NAME_MAX_LENGTH)


def get_profile(session: Session, customer_id: str) -> Profile | None:
    """The profile with this customer id, None if there is none."""
    return session.get(Profile, customer_id)


def resolve_ref(session: Session, ref: str) -> Profile | None:
    """The profile a reference points at: a customer id (C-1001) or type:value.

    In `type:value` (phone:+15551230001, email:ana@example.com) the value is normalised
    before the lookup. An unknown type or malformed value raises InvalidIdentifier.
    """
    text = ref.strip()
    if ":" not in text:
        return get_profile(session, text)
    type_name, _, value = text.partition(":")
    if not type_name.strip():
        raise InvalidIdentifier(f"reference {ref!r} has no type before ':'")
    return find_profile_by_identity(session, type_name.strip(), value)


def upsert_profile(
    session: Session,
    customer_id: str,
    attributes: ProfileAttributes,
    source: IdentitySource = IdentitySource.API,
) -> Change:
    """Create the profile or update the attributes given; unchanged values touch nothing.

    updated_at moves only when a stored attribute actually changes. Email and phone are
    also linked as identities (IdentityConflict if another profile owns them); an old email
    or phone stays linked, since it still identifies this customer.
    """
    customer_id = normalise_customer_id(customer_id)
    wanted = _provided_columns(attributes)
    now = utcnow()
    profile = session.get(Profile, customer_id)
    created = profile is None
    if profile is None:
        profile = Profile(customer_id=customer_id, custom={}, created_at=now, updated_at=now)
        session.add(profile)
    changed = False
    for name, value in wanted.items():
        if getattr(profile, name) != value:
            setattr(profile, name, value)
            changed = True
    if attributes.address is not None and profile.address != attributes.address:
        profile.address = attributes.address
        changed = True
    if changed and not created:
        profile.updated_at = now
    session.flush()
    identity_changes = [
        link_identity(session, customer_id, kind, wanted[kind.value], verified, source)
        for kind, verified in (
            (IdentityType.EMAIL, attributes.email_verified),
            (IdentityType.PHONE, attributes.phone_verified),
        )
        if kind.value in wanted
    ]
    if created:
        return Change.CREATED
    if changed or any(change is not Change.UNCHANGED for change in identity_changes):
        return Change.UPDATED
    return Change.UNCHANGED


def _provided_columns(attributes: ProfileAttributes) -> dict[str, Any]:
    """The attributes that were given, in stored (normalised) form, keyed by column."""
    columns: dict[str, Any] = {}
    if attributes.first_name is not None:
        columns["first_name"] = normalise_name(attributes.first_name)
    if attributes.last_name is not None:
        columns["last_name"] = normalise_name(attributes.last_name)
    if attributes.email is not None:
        columns["email"] = normalise(IdentityType.EMAIL, attributes.email)
    if attributes.phone is not None:
        columns["phone"] = normalise(IdentityType.PHONE, attributes.phone)
    if attributes.language is not None:
        columns["language"] = normalise_language(attributes.language)
    if attributes.custom is not None:
        columns["custom"] = dict(attributes.custom)
    return columns


def profile_document(session: Session, profile: Profile) -> dict[str, Any]:
    """The profile as a JSON-ready dict, for the assistant, the CLI and later an API.

    Datetimes are ISO 8601 UTC with a Z suffix; money is a string with two decimals
    ("12.50"), never a float.
    """
    latest = last_order(session, profile.customer_id)
    address = profile.address
    return {
        "customer_id": profile.customer_id,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": profile.email,
        "phone": profile.phone,
        "language": profile.language,
        "address": address.as_dict() if address else None,
        "custom": profile.custom,
        "identities": [
            {
                "type": identity.type.value,
                "value": identity.value,
                "verified": identity.verified,
                "source": identity.source.value,
                "created_at": isoformat_z(identity.created_at),
            }
            for identity in list_identities(session, profile.customer_id)
        ],
        "orders": {
            "count": count_orders(session, profile.customer_id),
            "last_order_id": latest.order_id if latest else None,
            "last_order_placed_at": isoformat_z(latest.placed_at) if latest else None,
            "last_order_status": latest.status.value if latest else None,
            "last_order_total": str(latest.total) if latest else None,
            "last_order_currency": latest.currency if latest else None,
        },
        "created_at": isoformat_z(profile.created_at),
        "updated_at": isoformat_z(profile.updated_at),
    }
