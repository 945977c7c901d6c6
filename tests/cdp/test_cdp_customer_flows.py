"""CDP services of the customer flows, on SQLite and PostgreSQL: contact updates under the
provenance rule, consent decisions, latest events, and offer rules from YAML."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cdp.attributes.errors import DefinitionError
from cdp.attributes.service import attribute_rows
from cdp.changes import Change
from cdp.clock import parse_timestamp, utcnow
from cdp.consents.models import (
    Consent,
    ConsentChannel,
    ConsentIn,
    ConsentPurpose,
    ConsentStatus,
)
from cdp.consents.service import consent_status, decide_consent, has_consent, record_consent
from cdp.errors import InvalidIdentifier, InvalidValue, ProfileNotFound
from cdp.events.models import Event, EventIn
from cdp.events.service import events_of_types, latest_event, record_event
from cdp.identities.models import IdentityType
from cdp.identities.service import find_profile_by_identity
from cdp.profiles.contact import ContactOutcome, update_contact
from cdp.profiles.models import Profile
from cdp.profiles.offers import load_offers, offer_for, record_offer_answer

MARKETING, ANY, WEB, EMAIL = (
    ConsentPurpose.MARKETING,
    ConsentChannel.ANY,
    ConsentChannel.WEB,
    ConsentChannel.EMAIL,
)
GRANTED, WITHDRAWN = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN


def _decision(channel: ConsentChannel, status: ConsentStatus, at: str) -> ConsentIn:
    return ConsentIn("C-1", MARKETING, channel, status, parse_timestamp(at), "chat:rest", "said so")


# Contact details ---------------------------------------------------------------------------


def test_a_new_email_from_chat_is_stored_unverified_and_linked(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1", email="old@example.com")
    result = update_contact(session, "C-1", IdentityType.EMAIL, "  New.Address@Example.NET ")
    assert result.outcome is ContactOutcome.SAVED
    assert (result.requested, result.verified) == ("new.address@example.net", False)
    assert session.get(Profile, "C-1").email == "new.address@example.net"
    row = attribute_rows(session, "C-1")["email"]
    assert (row.source.value, row.verified) == ("conversation", False)
    # both addresses still find the customer; the old one stays linked
    assert find_profile_by_identity(session, "email", "old@example.com").customer_id == "C-1"
    assert find_profile_by_identity(session, "email", "new.address@example.net") is not None
    again = update_contact(session, "C-1", IdentityType.EMAIL, "new.address@example.net")
    assert again.outcome is ContactOutcome.UNCHANGED


def test_an_unverified_phone_never_replaces_a_verified_one(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1", phone="+15551230005", phone_verified=True)
    result = update_contact(session, "C-1", IdentityType.PHONE, "+1 (555) 123-0099")
    assert result.outcome is ContactOutcome.KEPT_VERIFIED
    assert (result.requested, result.current) == ("+15551230099", "+15551230005")
    assert session.get(Profile, "C-1").phone == "+15551230005"
    assert find_profile_by_identity(session, "phone", "+15551230099") is None
    # a number the channel proved may replace it, and is stored verified
    proven = update_contact(session, "C-1", IdentityType.PHONE, "+15551230099", verified=True)
    assert (proven.outcome, proven.verified) == (ContactOutcome.SAVED, True)
    assert attribute_rows(session, "C-1")["phone"].verified is True


def test_a_value_another_customer_owns_is_refused_and_the_transaction_stays_usable(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1", email="one@example.com")
    make_profile("C-2", email="two@example.com")
    result = update_contact(session, "C-1", IdentityType.EMAIL, "two@example.com")
    assert result.outcome is ContactOutcome.IN_USE
    assert session.get(Profile, "C-1").email == "one@example.com"
    assert session.scalar(select(func.count()).select_from(Profile)) == 2


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (IdentityType.EMAIL, "ana at example", "not an address like name@example.com"),
        (IdentityType.PHONE, "555 0199", "not an international number"),
    ],
)
def test_malformed_contact_values_say_what_is_wrong(
    session: Session,
    make_profile: Callable[..., None],
    kind: IdentityType,
    value: str,
    message: str,
) -> None:
    make_profile("C-1")
    with pytest.raises(InvalidIdentifier, match=message):
        update_contact(session, "C-1", kind, value)


def test_only_email_and_phone_and_only_known_customers(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    with pytest.raises(InvalidValue, match="only email and phone"):
        update_contact(session, "C-1", IdentityType.MEMBER_ID, "M-1")
    with pytest.raises(ProfileNotFound):
        update_contact(session, "C-404", IdentityType.EMAIL, "x@example.com")


# Consent decisions -------------------------------------------------------------------------


def test_a_decision_already_in_force_adds_no_record(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    assert consent_status(session, "C-1", MARKETING, WEB) is None
    assert (
        decide_consent(session, _decision(ANY, GRANTED, "2026-01-01T00:00:00Z")) is Change.CREATED
    )
    assert (
        decide_consent(session, _decision(ANY, GRANTED, "2026-01-02T00:00:00Z")) is Change.UNCHANGED
    )
    assert consent_status(session, "C-1", MARKETING, WEB) is GRANTED
    assert (
        decide_consent(session, _decision(ANY, WITHDRAWN, "2026-01-03T00:00:00Z")) is Change.CREATED
    )
    assert not has_consent(session, "C-1", MARKETING, EMAIL)
    assert session.scalar(select(func.count()).select_from(Consent)) == 2


def test_an_any_decision_overrides_a_later_channel_one(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    record_consent(session, _decision(ANY, GRANTED, "2026-01-01T00:00:00Z"))
    record_consent(session, _decision(WEB, WITHDRAWN, "2026-02-01T00:00:00Z"))
    # "subscribe me" again: `any` is granted, but the web says otherwise, so it is a change
    assert (
        decide_consent(session, _decision(ANY, GRANTED, "2026-03-01T00:00:00Z")) is Change.CREATED
    )
    assert has_consent(session, "C-1", MARKETING, WEB)


def test_a_decision_for_an_unknown_customer_is_refused(session: Session) -> None:
    with pytest.raises(ProfileNotFound):
        decide_consent(session, _decision(ANY, GRANTED, "2026-01-01T00:00:00Z"))


# Events ------------------------------------------------------------------------------------


def _event(event_id: str, kind: str, at: str, **properties: object) -> EventIn:
    return EventIn(event_id, "C-1", kind, parse_timestamp(at), "web", dict(properties))


def test_latest_event_of_types_and_since(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    record_event(session, _event("E-1", "payment_failed", "2026-01-01T00:00:00Z", order_id="O-1"))
    record_event(session, _event("E-2", "payment_failed", "2026-02-01T00:00:00Z", order_id="O-2"))
    record_event(session, _event("E-3", "password_reset", "2026-03-01T00:00:00Z"))
    latest = latest_event(session, "C-1", ["payment_failed"])
    assert latest is not None and latest.properties == {"order_id": "O-2"}
    assert latest_event(session, "C-1", ["payment_failed", "password_reset"]).event_id == "E-3"
    since = parse_timestamp("2026-02-15T00:00:00Z")
    assert latest_event(session, "C-1", ["payment_failed"], since=since) is None
    assert [e.event_id for e in events_of_types(session, "C-1", ["payment_failed"])] == [
        "E-1",
        "E-2",
    ]


# Offers ------------------------------------------------------------------------------------


def _card_holder(session: Session, make_profile: Callable[..., None], make_order) -> None:
    make_profile("C-1", first_name="Ana", custom={"store_card_holder": True})
    make_order("C-1", "O-1", utcnow().isoformat(), lines=(("SKU-1", "Kettle", 4, "48.00"),))


def test_the_card_offer_needs_consent_and_the_rule(
    session: Session, make_profile: Callable[..., None], make_order: Callable[..., None]
) -> None:
    _card_holder(session, make_profile, make_order)
    assert offer_for(session, "C-1", WEB) is None  # no consent yet
    record_consent(session, _decision(ANY, GRANTED, "2026-01-01T00:00:00Z"))
    offer = offer_for(session, "C-1", WEB)
    assert offer is not None and offer.offer_id == "store_card_limit_increase"
    assert offer.text.startswith("Ana, ")
    record_consent(session, _decision(WEB, WITHDRAWN, utcnow().isoformat()))
    assert offer_for(session, "C-1", WEB) is None  # withdrawn on this channel
    assert offer_for(session, "C-1", EMAIL) is not None


def test_an_answer_is_an_event_once_and_holds_for_the_cooldown(
    session: Session, make_profile: Callable[..., None], make_order: Callable[..., None]
) -> None:
    _card_holder(session, make_profile, make_order)
    record_consent(session, _decision(ANY, GRANTED, "2026-01-01T00:00:00Z"))
    offer_id = "store_card_limit_increase"
    assert record_offer_answer(
        session, "C-1", offer_id, accepted=True, event_id="x:1", channel="rest"
    )
    assert not record_offer_answer(
        session, "C-1", offer_id, accepted=True, event_id="x:1", channel="rest"
    )
    events = events_of_types(session, "C-1", ["offer_accepted"])
    assert [(e.type, e.properties) for e in events] == [("offer_accepted", {"offer_id": offer_id})]
    assert offer_for(session, "C-1", WEB) is None
    later = utcnow() + timedelta(days=91)
    assert offer_for(session, "C-1", WEB, now=later) is not None
    with pytest.raises(InvalidValue, match="unknown offer 'gone'"):
        record_offer_answer(session, "C-1", "gone", accepted=False, event_id="x:2", channel=None)
    assert session.scalar(select(func.count()).select_from(Event)) == 1


def _offers_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "offers.yml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("version: 1\noffers: [a]\n", "offers: must be a mapping"),
        (
            "version: 1\noffers:\n  x:\n    when: 'nope > 1'\n    text: t\n    accepted_text: a\n",
            "x: when: unknown attribute 'nope'",
        ),
        (
            "version: 1\noffers:\n  x:\n    when: 'lead_score >'\n"
            "    text: t\n    accepted_text: a\n",
            "x: when:",
        ),
        (
            "version: 1\noffers:\n  x:\n    when: 'true'\n"
            "    text: 'hi {email}'\n    accepted_text: a\n",
            "x: text: unknown placeholder {email}",
        ),
        (
            "version: 1\noffers:\n  x:\n    when: 'true'\n    text: t\n    accepted_text: ''\n",
            "x: accepted_text: must be non-empty text",
        ),
        (
            "version: 1\noffers:\n  x:\n    when: 'true'\n    text: t\n    accepted_text: a\n"
            "    cooldown_days: -1\n",
            "x: cooldown_days",
        ),
        ("version: 1\noffers:\n  x:\n    when: 'true'\n    colour: red\n", "unknown key 'colour'"),
    ],
)
def test_a_bad_offers_file_names_the_offer_and_the_key(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(DefinitionError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_offers(_offers_file(tmp_path, body))


def test_the_shipped_offers_file_loads() -> None:
    ids = [offer.offer_id for offer in load_offers()]
    assert ids == ["store_card_limit_increase", "plus_membership_trial"]
