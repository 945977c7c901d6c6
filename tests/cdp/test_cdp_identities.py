"""Identifier normalisation, junk refusal, lookups, one owner per identifier, and race-safe
resolution of first messages."""

import threading
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.errors import IdentityConflict, InvalidIdentifier, ProfileNotFound
from cdp.identities.models import Identity, IdentitySource, IdentityType
from cdp.identities.service import (
    canonical_profile,
    find_profile_by_identity,
    link_identity,
    normalise,
    resolve_or_create_profile,
)
from cdp.profiles.models import Profile
from cdp.profiles.service import resolve_ref


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
        ("phone", "+0000000000", "placeholder"),
        ("phone", "+0000000", "placeholder"),
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
    "junk",
    [
        "",
        "   ",
        "null",
        "NULL",
        "None",
        "nil",
        "undefined",
        "anonymous",
        "Unknown",
        "n/a",
        "N/A",
        "-",
        "0",
        "0000",
        "00000",
        "000-000",
        "+0000000",
    ],
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


def test_resolve_or_create_profile_creates_once_then_finds(session: Session) -> None:
    created = resolve_or_create_profile(session, "phone", "+1 555 123 0009")
    assert created.customer_id.startswith("C-") and created.phone == "+15551230009"
    again = resolve_or_create_profile(session, "phone", "+15551230009")
    assert again.customer_id == created.customer_id
    identity = session.scalars(select(Identity)).one()
    assert (identity.type, identity.value, identity.verified, identity.source) == (
        IdentityType.PHONE,
        "+15551230009",
        False,
        IdentitySource.CONVERSATION,
    )
    psid = resolve_or_create_profile(session, "messenger_psid", "2411", verified=True)
    assert psid.customer_id != created.customer_id and psid.phone is None


def test_resolve_or_create_profile_refuses_junk(session: Session) -> None:
    with pytest.raises(InvalidIdentifier, match="placeholder"):
        resolve_or_create_profile(session, "member_id", "00000")
    assert session.scalars(select(Profile)).all() == []


def test_concurrent_first_messages_create_exactly_one_profile(cdp_engine: Engine) -> None:
    """Eight threads, each on its own connection, resolve the same new phone at once."""
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[str] = []
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            with Session(cdp_engine) as session, session.begin():
                barrier.wait(timeout=30)
                profile = resolve_or_create_profile(session, "phone", "+15557770001")
                results.append(profile.customer_id)
        except BaseException as error:  # reported below, with the thread's traceback lost
            errors.append(error)

    workers = [threading.Thread(target=resolve) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    assert len(results) == threads and len(set(results)) == 1
    with Session(cdp_engine) as session:
        assert session.scalar(select(func.count()).select_from(Profile)) == 1
        owner = session.scalars(select(Identity.customer_id)).one()
    assert owner == results[0]


def test_canonical_profile_follows_merges(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    make_profile("C-2")
    make_profile("C-3")
    session.get_one(Profile, "C-3").merged_into = "C-2"
    session.get_one(Profile, "C-2").merged_into = "C-1"
    assert canonical_profile(session, session.get_one(Profile, "C-3")).customer_id == "C-1"
    assert resolve_ref(session, "C-3") is session.get(Profile, "C-1")
