"""Profile upserts, references and the profile document."""

import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.addresses import make_address
from cdp.changes import Change
from cdp.errors import IdentityConflict, InvalidIdentifier, InvalidValue
from cdp.identities.models import Identity, IdentitySource, IdentityType
from cdp.identities.service import link_identity
from cdp.orders.models import OrderStatus
from cdp.profiles.models import Profile, ProfileAttributes
from cdp.profiles.service import get_profile, profile_document, resolve_ref, upsert_profile

SPRINGFIELD = make_address(
    line1="12 Elm St", city="Springfield", region="IL", postal_code="62701", country="us"
)


def test_upsert_creates_profile_and_registers_email_and_phone(session: Session) -> None:
    attributes = ProfileAttributes(
        first_name=" Ana ",
        last_name="Diaz",
        email="Ana@Example.com",
        phone="+1 555 123 0001",
        language="en",
        address=SPRINGFIELD,
        custom={"tier": "gold"},
        phone_verified=True,
    )
    assert upsert_profile(session, "C-1", attributes, IdentitySource.IMPORT) is Change.CREATED
    profile = get_profile(session, "C-1")
    assert profile is not None
    assert (profile.first_name, profile.email, profile.phone) == (
        "Ana",
        "ana@example.com",
        "+15551230001",
    )
    assert profile.address == SPRINGFIELD
    assert profile.address_country == "US"
    assert profile.custom == {"tier": "gold"}
    assert profile.created_at == profile.updated_at
    identities = session.scalars(select(Identity).order_by(Identity.type)).all()
    assert [(i.type, i.value, i.verified, i.source) for i in identities] == [
        (IdentityType.EMAIL, "ana@example.com", False, IdentitySource.IMPORT),
        (IdentityType.PHONE, "+15551230001", True, IdentitySource.IMPORT),
    ]


def test_upsert_with_same_values_changes_nothing(session: Session) -> None:
    attributes = ProfileAttributes(first_name="Ana", email="ana@example.com", custom={"a": 1})
    upsert_profile(session, "C-1", attributes)
    session.commit()
    updated_at = session.get_one(Profile, "C-1").updated_at
    again = ProfileAttributes(first_name="Ana", email="ANA@example.com", custom={"a": 1})
    assert upsert_profile(session, "C-1", again) is Change.UNCHANGED
    session.commit()
    assert session.get_one(Profile, "C-1").updated_at == updated_at


def test_upsert_updates_given_fields_and_keeps_the_rest(session: Session) -> None:
    upsert_profile(session, "C-1", ProfileAttributes(first_name="Ana", language="en"))
    session.commit()
    before = session.get_one(Profile, "C-1").updated_at
    assert upsert_profile(session, "C-1", ProfileAttributes(language="es-MX")) is Change.UPDATED
    profile = session.get_one(Profile, "C-1")
    assert (profile.first_name, profile.language) == ("Ana", "es-MX")
    assert profile.updated_at > before


def test_upsert_keeps_old_email_linked_when_email_changes(session: Session) -> None:
    upsert_profile(session, "C-1", ProfileAttributes(email="old@example.com"))
    upsert_profile(session, "C-1", ProfileAttributes(email="new@example.com"))
    assert session.get_one(Profile, "C-1").email == "new@example.com"
    values = session.scalars(select(Identity.value).order_by(Identity.value)).all()
    assert values == ["new@example.com", "old@example.com"]


def test_upsert_refuses_email_owned_by_another_profile(session: Session) -> None:
    upsert_profile(session, "C-1", ProfileAttributes(email="ana@example.com"))
    with pytest.raises(IdentityConflict, match=r"C-1.*C-2"):
        upsert_profile(session, "C-2", ProfileAttributes(email="ana@example.com"))


@pytest.mark.parametrize(
    ("customer_id", "attributes", "message"),
    [
        ("C 1", ProfileAttributes(), "may only contain"),
        ("phone:+1555", ProfileAttributes(), "may only contain"),
        ("C-1", ProfileAttributes(email="nope"), "not an address"),
        ("C-1", ProfileAttributes(language="english!"), "not a language tag"),
        ("C-1", ProfileAttributes(first_name="  "), "must not be empty"),
    ],
)
def test_upsert_validates_input(
    session: Session, customer_id: str, attributes: ProfileAttributes, message: str
) -> None:
    with pytest.raises(InvalidValue, match=message):
        upsert_profile(session, customer_id, attributes)


def test_resolve_ref_by_customer_id_and_by_identifier(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1001", email="ana@example.com", phone="+15551230001")
    link_identity(session, "C-1001", "twilio_sender", "whatsapp:+15551230001")
    for ref in [
        "C-1001",
        " C-1001 ",
        "phone:+15551230001",
        "phone:+1 (555) 123-0001",
        "email:ANA@example.com",
        "twilio_sender:whatsapp:+15551230001",
    ]:
        profile = resolve_ref(session, ref)
        assert profile is not None and profile.customer_id == "C-1001", ref
    assert resolve_ref(session, "C-9999") is None
    assert resolve_ref(session, "email:nobody@example.com") is None


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("fax:+15551230001", "unknown identity type 'fax'"),
        (":+15551230001", "no type"),
        ("phone:12", "not an international number"),
        ("email:null", "placeholder"),
    ],
)
def test_resolve_ref_refuses_bad_references(session: Session, ref: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        resolve_ref(session, ref)


def test_profile_document_is_json_ready(
    session: Session,
    make_profile: Callable[..., None],
    make_order: Callable[..., None],
) -> None:
    make_profile(
        "C-1", first_name="Ana", email="ana@example.com", address=SPRINGFIELD, custom={"k": [1]}
    )
    make_order("C-1", "O-1", "2026-09-01T10:00:00Z")
    make_order(
        "C-1",
        "O-2",
        "2026-10-02T20:30:00+02:00",
        lines=[("SKU-1", "Beans", 2, "3.50"), ("SKU-2", "Mug", 1, "12.00")],
    )
    make_order("C-1", "O-3", "2026-11-01T10:00:00Z", status=OrderStatus.CANCELLED)
    document = profile_document(session, session.get_one(Profile, "C-1"))

    assert json.loads(json.dumps(document)) == document
    assert document["customer_id"] == "C-1"
    assert document["email"] == "ana@example.com"
    assert document["phone"] is None
    assert document["address"] == {
        "line1": "12 Elm St",
        "line2": None,
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    }
    assert document["custom"] == {"k": [1]}
    assert [(i["type"], i["value"], i["source"]) for i in document["identities"]] == [
        ("email", "ana@example.com", "import")
    ]
    assert document["orders"] == {
        "count": 3,
        "last_order_id": "O-2",
        "last_order_placed_at": "2026-10-02T18:30:00Z",
        "last_order_status": "delivered",
        "last_order_total": str(Decimal("19.00")),
        "last_order_currency": "USD",
    }
    for key in ("created_at", "updated_at"):
        assert document[key].endswith("Z")
    assert document["identities"][0]["created_at"].endswith("Z")
