"""Standard and custom attributes: types, definitions, provenance, and their import."""

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp.attributes.definitions import CUSTOM_ATTRIBUTES_ENV, load_custom_definitions
from cdp.attributes.errors import (
    AttributeTypeChanged,
    DefinitionError,
    UnknownAttribute,
    UnverifiedOverwrite,
)
from cdp.attributes.models import AttributeValue
from cdp.attributes.service import check_definitions_against_data
from cdp.attributes.types import AttributeType, clean_typed_value
from cdp.db import transaction
from cdp.errors import ImportRecordError, InvalidValue
from cdp.identities.models import IdentitySource
from cdp.importer import import_file
from cdp.profiles.context import profile_context
from cdp.profiles.models import Profile, ProfileAttributes
from cdp.profiles.service import profile_document, upsert_profile

WriteJsonl = Callable[..., Path]


@pytest.mark.parametrize(
    ("attribute_type", "value", "stored"),
    [
        (AttributeType.TEXT, " premium ", "premium"),
        (AttributeType.NUMBER, Decimal("2.5"), 2.5),
        (AttributeType.NUMBER, 3, 3),
        (AttributeType.INTEGER, 4, 4),
        (AttributeType.BOOLEAN, False, False),
        (AttributeType.DATE, "2026-12-15", "2026-12-15"),
        (AttributeType.DATETIME, "2026-12-15T10:00:00+01:00", "2026-12-15T09:00:00Z"),
        (AttributeType.LIST_OF_TEXT, ["coffee", " tea "], ["coffee", "tea"]),
    ],
)
def test_values_of_each_type_are_stored_in_json_form(
    attribute_type: AttributeType, value: object, stored: object
) -> None:
    assert clean_typed_value(attribute_type, value) == stored


@pytest.mark.parametrize(
    ("attribute_type", "value", "message"),
    [
        (AttributeType.TEXT, 5, "expected text, got integer 5"),
        (AttributeType.NUMBER, "5", "expected number, got string '5'"),
        (AttributeType.NUMBER, True, "expected number, got boolean True"),
        (AttributeType.INTEGER, Decimal("2.5"), "expected integer, got number"),
        (AttributeType.BOOLEAN, "yes", "expected boolean, got string 'yes'"),
        (AttributeType.DATE, "15/12/2026", "expected date (YYYY-MM-DD), got string"),
        (AttributeType.DATETIME, "2026-12-15T10:00:00", "has no timezone"),
        (AttributeType.LIST_OF_TEXT, "coffee", "expected list_of_text, got string"),
        (AttributeType.LIST_OF_TEXT, ["coffee", 3], "item 2: expected text, got integer 3"),
    ],
)
def test_wrong_types_say_what_was_expected_and_got(
    attribute_type: AttributeType, value: object, message: str
) -> None:
    with pytest.raises(InvalidValue, match=message.replace("(", r"\(").replace(")", r"\)")):
        clean_typed_value(attribute_type, value)


def write_definitions(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("version: 1\nattributes:\n  tier: {type: colour}\n", "tier: unknown type 'colour'"),
        ("version: 1\nattributes:\n  Tier: {type: text}\n", "'Tier': names are lower_snake_case"),
        ("version: 1\nattributes:\n  email: {type: text}\n", "email: is a standard attribute"),
        ("version: 1\nattributes:\n  tier: {type: text, colour: red}\n", "unknown key 'colour'"),
        ("version: 1\nattributes:\n  n: {type: integer, allowed: [a]}\n", "allowed: only for text"),
        ("attributes: {}\n", "version: must be a whole number"),
        ("version: 1\nundeclared: drop\n", "undeclared: must be keep or reject"),
        ("version: [\n", "not valid YAML"),
    ],
)
def test_bad_definition_files_are_refused_with_the_reason(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write_definitions(tmp_path / "custom.yml", body)
    with pytest.raises(DefinitionError, match=message) as raised:
        load_custom_definitions(path)
    assert str(path) in str(raised.value)


def test_shipped_definitions_declare_the_assistant_attributes() -> None:
    definitions = load_custom_definitions()
    types = {name: spec.type for name, spec in definitions.attributes.items()}
    assert types["contract_end_date"] is AttributeType.DATE
    assert types["membership_tier"] is AttributeType.TEXT
    assert types["store_card_holder"] is AttributeType.BOOLEAN
    assert types["preferred_categories"] is AttributeType.LIST_OF_TEXT
    assert definitions.attributes["membership_tier"].allowed == ("basic", "plus", "premium")


def test_custom_values_are_typed_with_provenance(session: Session) -> None:
    attributes = ProfileAttributes(
        first_name="Ana",
        timezone="Europe/Paris",
        custom={"membership_tier": "premium", "contract_end_date": "2026-12-15", "note": "x"},
        verified=True,
    )
    upsert_profile(session, "C-1", attributes, IdentitySource.IMPORT)
    rows = {row.name: row for row in session.scalars(select(AttributeValue))}
    assert rows["membership_tier"].value == "premium"
    assert rows["contract_end_date"].value_type == "date"
    assert (rows["first_name"].source, rows["first_name"].verified) == (IdentitySource.IMPORT, True)
    assert rows["timezone"].value is None  # standard values stay in the profile columns
    profile = session.get_one(Profile, "C-1")
    assert (profile.timezone, profile.custom) == ("Europe/Paris", {"note": "x"})
    document = profile_document(session, profile)
    assert document["timezone"] == "Europe/Paris"
    assert document["custom"] == {
        "note": "x",
        "membership_tier": "premium",
        "contract_end_date": "2026-12-15",
    }


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({"membership_tier": "gold"}, "membership_tier: expected one of basic, plus, premium"),
        ({"contract_end_date": 20261215}, "contract_end_date: expected date"),
        ({"store_card_holder": "yes"}, "store_card_holder: expected boolean, got string 'yes'"),
    ],
)
def test_a_wrong_custom_value_names_the_attribute(
    session: Session, custom: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidValue, match=message):
        upsert_profile(session, "C-1", ProfileAttributes(custom=custom))


def test_timezones_must_be_iana_names(session: Session) -> None:
    with pytest.raises(InvalidValue, match="'Mars/Olympus' is not an IANA time zone"):
        upsert_profile(session, "C-1", ProfileAttributes(timezone="Mars/Olympus"))


def test_an_unverified_value_never_replaces_a_verified_one(session: Session) -> None:
    verified = ProfileAttributes(
        first_name="Ana", custom={"membership_tier": "plus"}, verified=True
    )
    upsert_profile(session, "C-1", verified, IdentitySource.AGENT)
    session.commit()

    for typed in (
        ProfileAttributes(first_name="Anna"),
        ProfileAttributes(custom={"membership_tier": "premium"}),
    ):
        with pytest.raises(UnverifiedOverwrite) as refused:
            upsert_profile(session, "C-1", typed, IdentitySource.CONVERSATION)
        session.rollback()
        assert "refusing to replace a verified value (from agent)" in str(refused.value)

    profile = session.get_one(Profile, "C-1")
    assert profile.first_name == "Ana"
    # The same value said again in chat is fine and keeps the verified provenance.
    again = ProfileAttributes(first_name="Ana", custom={"membership_tier": "plus"})
    upsert_profile(session, "C-1", again, IdentitySource.CONVERSATION)
    row = session.get_one(AttributeValue, ("C-1", "first_name"))
    assert (row.source, row.verified) == (IdentitySource.AGENT, True)
    # A verified write may replace a verified value.
    upsert_profile(session, "C-1", ProfileAttributes(first_name="Anna", verified=True))
    assert session.get_one(Profile, "C-1").first_name == "Anna"


def test_unverified_values_may_be_corrected_and_then_verified(session: Session) -> None:
    upsert_profile(session, "C-1", ProfileAttributes(language="en"), IdentitySource.CONVERSATION)
    upsert_profile(session, "C-1", ProfileAttributes(language="fr"), IdentitySource.CONVERSATION)
    upsert_profile(
        session, "C-1", ProfileAttributes(language="fr", verified=True), IdentitySource.AGENT
    )
    row = session.get_one(AttributeValue, ("C-1", "language"))
    assert (row.source, row.verified) == (IdentitySource.AGENT, True)


def test_a_type_cannot_change_once_values_are_stored(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upsert_profile(session, "C-1", ProfileAttributes(custom={"household_size": 3}))
    changed = write_definitions(
        tmp_path / "custom.yml",
        "version: 2\nattributes:\n  household_size: {type: text}\n",
    )
    definitions = load_custom_definitions(changed)
    with pytest.raises(
        AttributeTypeChanged, match="household_size: type cannot change from integer to text"
    ):
        check_definitions_against_data(session, definitions)
    monkeypatch.setenv(CUSTOM_ATTRIBUTES_ENV, str(changed))
    with pytest.raises(AttributeTypeChanged, match="from integer to text"):
        upsert_profile(session, "C-2", ProfileAttributes(custom={"household_size": "three"}))
    dropped = write_definitions(tmp_path / "dropped.yml", "version: 3\nattributes: {}\n")
    with pytest.raises(AttributeTypeChanged, match=r"household_size: .*definition removed"):
        check_definitions_against_data(session, load_custom_definitions(dropped))


def test_undeclared_keys_can_be_refused(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = write_definitions(
        tmp_path / "strict.yml",
        "version: 1\nundeclared: reject\nattributes:\n  tier: {type: text}\n",
    )
    monkeypatch.setenv(CUSTOM_ATTRIBUTES_ENV, str(strict))
    upsert_profile(session, "C-1", ProfileAttributes(custom={"tier": "gold"}))
    with pytest.raises(UnknownAttribute, match="attribute shoe_size: not declared"):
        upsert_profile(session, "C-1", ProfileAttributes(custom={"shoe_size": 42}))


def test_import_validates_custom_values_and_writes_nothing_on_error(
    cdp_engine: Engine, write_jsonl: WriteJsonl
) -> None:
    good = {
        "kind": "profile",
        "customer_id": "C-1",
        "timezone": "America/Chicago",
        "verified": True,
        "custom": {"store_card_holder": True, "preferred_categories": ["tea"], "credit_limit": 500},
    }
    bad = {"kind": "profile", "customer_id": "C-2", "custom": {"household_size": 2.5}}
    with pytest.raises(ImportRecordError) as error, transaction(cdp_engine) as session:
        import_file(session, write_jsonl([good, bad]))
    assert (error.value.line_no, error.value.field) == (2, "custom.household_size")
    assert error.value.reason == "expected integer, got number 2.5"
    with Session(cdp_engine) as session:
        assert session.scalar(select(AttributeValue).limit(1)) is None

    with transaction(cdp_engine) as session:
        import_file(session, write_jsonl([good]))
    with transaction(cdp_engine) as session:
        context = profile_context(session, "C-1", now=datetime(2026, 11, 26, tzinfo=timezone.utc))
    assert context is not None
    assert context.standard["timezone"].value == "America/Chicago"
    card = context.custom["store_card_holder"]
    assert card.value is True
    assert card.provenance is not None
    assert (card.provenance.source, card.provenance.verified) == ("import", True)
    assert context.custom["credit_limit"].value == 500


def test_import_refuses_an_unverified_overwrite_naming_the_field(
    cdp_engine: Engine, write_jsonl: WriteJsonl
) -> None:
    verified = {"kind": "profile", "customer_id": "C-1", "first_name": "Ana", "verified": True}
    unverified = {"kind": "profile", "customer_id": "C-1", "custom": {}, "first_name": "Anne"}
    with pytest.raises(ImportRecordError) as error, transaction(cdp_engine) as session:
        import_file(session, write_jsonl([verified, unverified]))
    assert (error.value.line_no, error.value.field) == (2, "first_name")
    assert "refusing to replace a verified value" in error.value.reason
