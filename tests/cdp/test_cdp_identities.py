"""Identifier normalisation, junk refusal, lookups and one-owner-per-identifier links."""

from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.errors import IdentityConflict, InvalidIdentifier, ProfileNotFound
from cdp.identities.models import Identity, IdentitySource, IdentityType
from cdp.identities.service import find_profile_by_identity, link_identity, normalise


@pytest.mark.parametrize(
    ("identity_type", "raw", "expected"),
    [
        ("phone", "+15551230001", "+15551230001"),
        ("phone", " +1 (555) 123-0001 ", "+15551230001"),
        ("phone", "+33 6.12.34.56.78", "+33612345678"),
        ("phone", "0033612345678", "+33612345678"),
        ("phone", "+4930123456", "+4930123456"),
        ("email", "  Ana.Diaz@Example.COM ", "ana.diaz@example.com"),
        ("email", "first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
        ("messenger_psid", " 24117654321098765 ", "24117654321098765"),
        ("twilio_sender", "whatsapp:+15551230001", "whatsapp:+15551230001"),
        (IdentityType.MEMBER_ID, "NWC-M-1", "NWC-M-1"),
    ],
)
def test_normalise_accepts_and_canonicalises(identity_type: str, raw: str, expected: str) -> None:
    assert normalise(identity_type, raw) == expected


@pytest.mark.parametrize(
    ("identity_type", "raw", "message"),
    [
        ("phone", "5551230001", "not an international number"),
        ("phone", "+1555", "not an international number"),
        ("phone", "+1234567890123456", "not an international number"),
        ("phone", "+1 555 CALL NOW", "not an international number"),
        ("phone", "+0551230001", "not an international number"),
        ("phone", "+11111111111", "placeholder"),
        ("phone", "+0000000000", "not an international number"),
        ("phone", "0000000000", "placeholder"),
        ("email", "ana.example.com", "not an address"),
        ("email", "ana@example", "not an address"),
        ("email", "ana diaz@example.com", "not an address"),
        ("email", "ana@@example.com", "not an address"),
        ("web_customer_id", "x" * 256, "longer than 255"),
    ],
)
def test_normalise_refuses_malformed_values(identity_type: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        normalise(identity_type, raw)


@pytest.mark.parametrize(
    "junk", ["", "   ", "null", "NULL", "None", "undefined", "anonymous", "Unknown", "0", "0000"]
)
@pytest.mark.parametrize("identity_type", list(IdentityType))
def test_normalise_refuses_placeholders_for_every_type(
    identity_type: IdentityType, junk: str
) -> None:
    with pytest.raises(InvalidIdentifier, match="placeholder"):
        normalise(identity_type, junk)


def test_normalise_refuses_non_strings_and_unknown_types() -> None:
    with pytest.raises(InvalidIdentifier, match="must be a string, got int"):
        normalise("phone", 15551230001)
    with pytest.raises(InvalidIdentifier, match="must be a string, got NoneType"):
        normalise("email", None)
    with pytest.raises(InvalidIdentifier, match="unknown identity type 'fax'"):
        normalise("fax", "+15551230001")


def test_find_profile_by_identity_normalises_before_lookup(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1", email="ana@example.com", phone="+15551230001")
    found = find_profile_by_identity(session, "phone", "+1 555-123-0001")
    assert found is not None and found.customer_id == "C-1"
    found = find_profile_by_identity(session, IdentityType.EMAIL, "ANA@example.com")
    assert found is not None and found.customer_id == "C-1"
    assert find_profile_by_identity(session, "phone", "+15559999999") is None
    assert find_profile_by_identity(session, "messenger_psid", "+15551230001") is None


def test_link_identity_is_idempotent(session: Session, make_profile: Callable[..., None]) -> None:
    make_profile("C-1")
    assert (
        link_identity(session, "C-1", "messenger_psid", "2411", False, IdentitySource.CONVERSATION)
        is Change.CREATED
    )
    assert link_identity(session, "C-1", "messenger_psid", " 2411 ") is Change.UNCHANGED
    identities = session.scalars(select(Identity)).all()
    assert [(i.type, i.value, i.verified, i.source) for i in identities] == [
        (IdentityType.MESSENGER_PSID, "2411", False, IdentitySource.CONVERSATION)
    ]


def test_link_identity_upgrades_but_never_downgrades_verification(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    link_identity(session, "C-1", "member_id", "M-1")
    assert link_identity(session, "C-1", "member_id", "M-1", verified=True) is Change.UPDATED
    assert link_identity(session, "C-1", "member_id", "M-1", verified=False) is Change.UNCHANGED
    assert session.scalars(select(Identity.verified)).one() is True


def test_link_identity_refuses_identifier_owned_by_another_profile(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1", phone="+15551230001")
    make_profile("C-2")
    with pytest.raises(IdentityConflict) as caught:
        link_identity(session, "C-2", "phone", "+1 555 123 0001")
    assert "C-1" in str(caught.value) and "C-2" in str(caught.value)
    assert caught.value.owner_id == "C-1"
    assert caught.value.requested_id == "C-2"


def test_link_identity_needs_an_existing_profile(session: Session) -> None:
    with pytest.raises(ProfileNotFound, match="C-404"):
        link_identity(session, "C-404", "email", "x@example.com")


def test_database_refuses_duplicate_identifier(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1", email="ana@example.com")
    make_profile("C-2")
    session.commit()
    duplicate = insert(Identity).values(
        customer_id="C-2",
        type=IdentityType.EMAIL,
        value="ana@example.com",
        verified=False,
        source=IdentitySource.API,
        created_at=datetime.now(timezone.utc),
    )
    with pytest.raises(IntegrityError):
        session.execute(duplicate)
