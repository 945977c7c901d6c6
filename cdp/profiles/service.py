"""Reading, resolving and upserting profiles, and the JSON view of one."""

import re
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from cdp.attributes.definitions import CustomDefinitions, load_custom_definitions
from cdp.attributes.errors import UnknownAttribute
from cdp.attributes.models import AttributeKind
from cdp.attributes.service import attribute_rows, record_value, set_custom_attributes
from cdp.changes import Change
from cdp.clock import isoformat_z, utcnow
from cdp.errors import InvalidIdentifier, InvalidValue
from cdp.identities.models import IdentitySource, IdentityType
from cdp.identities.service import (
    canonical_profile,
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
    TIMEZONE_MAX_LENGTH,
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


@cache
def _profile_statement() -> Select[tuple[Profile]]:
    return select(Profile).where(Profile.customer_id == bindparam("customer_id"))


def load_profile(session: Session, customer_id: str) -> Profile | None:
    """`get_profile` by one statement built once, for the first read of a fresh session.

    `session.get` builds and hashes a new statement on every miss of the identity map, which
    was half the cost of reading a profile on every bot turn. Unlike `get_profile` this
    always queries (after an autoflush), so use it where the session holds nothing yet.
    """
    return session.scalars(_profile_statement(), {"customer_id": customer_id}).first()


def resolve_ref(session: Session, ref: str) -> Profile | None:
    """The profile a reference points at: a customer id (C-1001) or type:value.

    In `type:value` (phone:+15551230001, email:ana@example.com) the value is normalised
    before the lookup. An unknown type or malformed value raises InvalidIdentifier. A
    profile merged into another resolves to the one that survived.
    """
    text = ref.strip()
    if ":" not in text:
        profile = get_profile(session, text)
        return canonical_profile(session, profile) if profile else None
    type_name, _, value = text.partition(":")
    if not type_name.strip():
        raise InvalidIdentifier(f"reference {ref!r} has no type before ':'")
    return find_profile_by_identity(session, type_name.strip(), value)


def normalise_timezone(value: object) -> str:
    """An IANA time zone name like Europe/Paris, checked against the zone database."""
    name = clean_text(value, max_length=TIMEZONE_MAX_LENGTH)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"{name!r} is not an IANA time zone like Europe/Paris") from None
    return name


def upsert_profile(
    session: Session,
    customer_id: str,
    attributes: ProfileAttributes,
    source: IdentitySource = IdentitySource.API,
) -> Change:
    """Create the profile or update the attributes given; unchanged values touch nothing.

    updated_at moves only when a stored attribute actually changes. Every attribute written
    records its provenance (source, verified, when); an unverified value that would replace
    a verified one raises UnverifiedOverwrite. Email and phone are also linked as
    identities (IdentityConflict if another profile owns them); an old email or phone stays
    linked, since it still identifies this customer.
    """
    customer_id = normalise_customer_id(customer_id)
    wanted = _provided_columns(attributes)
    if attributes.address is not None:
        wanted["address"] = attributes.address
    definitions = load_custom_definitions() if attributes.custom is not None else None
    declared, undeclared = _split_custom(attributes.custom, definitions)
    if undeclared is not None:
        wanted["custom"] = undeclared
    now = utcnow()
    profile = session.get(Profile, customer_id)
    created = profile is None
    if profile is None:
        profile = Profile(customer_id=customer_id, custom={}, created_at=now, updated_at=now)
        session.add(profile)
        session.flush()
    rows = {} if created else attribute_rows(session, customer_id)
    changed = False
    for name, value in wanted.items():
        differs = getattr(profile, name) != value
        if name != "custom":
            changed |= record_value(
                session,
                rows,
                customer_id,
                name,
                kind=AttributeKind.STANDARD,
                value=None,
                value_type=None,
                source=source,
                verified=_verified_flag(attributes, name),
                now=now,
                changed=differs,
            )
        if differs:
            setattr(profile, name, value)
            changed = True
    if declared and definitions is not None:
        changed |= set_custom_attributes(
            session,
            rows,
            customer_id,
            declared,
            definitions,
            source=source,
            verified=attributes.verified,
            now=now,
        )
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


def _verified_flag(attributes: ProfileAttributes, name: str) -> bool:
    if name == "email":
        return attributes.email_verified
    if name == "phone":
        return attributes.phone_verified
    return attributes.verified


def _split_custom(
    custom: dict[str, Any] | None, definitions: CustomDefinitions | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Declared custom values (typed, with provenance) and the free-form rest (None: not given).

    Undeclared keys are refused when the definitions say `undeclared: reject`.
    """
    if custom is None or definitions is None:
        return {}, None
    declared = {key: value for key, value in custom.items() if key in definitions.attributes}
    undeclared = {key: value for key, value in custom.items() if key not in declared}
    if undeclared and definitions.undeclared == "reject":
        raise UnknownAttribute(sorted(undeclared)[0])
    return declared, undeclared


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
    if attributes.timezone is not None:
        columns["timezone"] = normalise_timezone(attributes.timezone)
    return columns


def profile_document(session: Session, profile: Profile) -> dict[str, Any]:
    """The profile as a JSON-ready dict, for the assistant, the CLI and later an API.

    Datetimes are ISO 8601 UTC with a Z suffix; money is a string with two decimals
    ("12.50"), never a float. `custom` holds the free-form keys and the declared custom
    values together; cdp.profiles.context adds provenance and computed values.
    """
    latest = last_order(session, profile.customer_id)
    address = profile.address
    declared = {
        name: row.value
        for name, row in attribute_rows(session, profile.customer_id).items()
        if row.kind is AttributeKind.CUSTOM and row.value is not None
    }
    return {
        "customer_id": profile.customer_id,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": profile.email,
        "phone": profile.phone,
        "language": profile.language,
        "timezone": profile.timezone,
        "address": address.as_dict() if address else None,
        "custom": {**profile.custom, **declared},
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
