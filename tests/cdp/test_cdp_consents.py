"""Consent history per purpose and channel, the current state, and the consent import kind."""

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.clock import parse_timestamp
from cdp.consents.models import ConsentChannel, ConsentIn, ConsentPurpose, ConsentStatus
from cdp.consents.service import consent_history, current_consents, has_consent, record_consent
from cdp.errors import ImportRecordError, ProfileNotFound
from cdp.importer import import_file

MARKETING = ConsentPurpose.MARKETING
SERVICE = ConsentPurpose.SERVICE_MESSAGES
GRANTED = ConsentStatus.GRANTED
WITHDRAWN = ConsentStatus.WITHDRAWN


def _consent(
    purpose: ConsentPurpose, channel: ConsentChannel, status: ConsentStatus, at: str
) -> ConsentIn:
    return ConsentIn("C-1", purpose, channel, status, parse_timestamp(at), "test", "clicked")


def test_latest_record_per_purpose_and_channel_is_in_force(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    email, sms = ConsentChannel.EMAIL, ConsentChannel.SMS
    assert not has_consent(session, "C-1", MARKETING, email)  # nothing recorded: no consent
    record_consent(session, _consent(MARKETING, email, GRANTED, "2026-01-01T00:00:00Z"))
    record_consent(session, _consent(MARKETING, email, WITHDRAWN, "2026-02-01T00:00:00Z"))
    # arrives late but happened earlier: history grows, the state does not change
    record_consent(session, _consent(MARKETING, email, GRANTED, "2025-12-01T00:00:00Z"))
    record_consent(session, _consent(SERVICE, sms, GRANTED, "2026-01-05T00:00:00Z"))
    assert not has_consent(session, "C-1", MARKETING, email)
    assert has_consent(session, "C-1", SERVICE, sms)
    assert not has_consent(session, "C-1", SERVICE, email)
    history = [
        (c.purpose, c.status, c.recorded_at.date().isoformat())
        for c in consent_history(session, "C-1")
    ]
    assert history == [
        (MARKETING, GRANTED, "2025-12-01"),
        (MARKETING, GRANTED, "2026-01-01"),
        (SERVICE, GRANTED, "2026-01-05"),
        (MARKETING, WITHDRAWN, "2026-02-01"),
    ]
    states = [(s.purpose, s.channel, s.status) for s in current_consents(session, "C-1")]
    assert states == [(MARKETING, email, WITHDRAWN), (SERVICE, sms, GRANTED)]


def test_any_channel_covers_every_channel_until_a_later_specific_record(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    record_consent(
        session, _consent(MARKETING, ConsentChannel.ANY, GRANTED, "2026-01-01T00:00:00Z")
    )
    assert has_consent(session, "C-1", MARKETING, ConsentChannel.MESSENGER)
    record_consent(
        session, _consent(MARKETING, ConsentChannel.MESSENGER, WITHDRAWN, "2026-02-01T00:00:00Z")
    )
    assert not has_consent(session, "C-1", MARKETING, ConsentChannel.MESSENGER)
    assert has_consent(session, "C-1", MARKETING, ConsentChannel.WEB)
    record_consent(
        session, _consent(MARKETING, ConsentChannel.ANY, WITHDRAWN, "2026-03-01T00:00:00Z")
    )
    assert not has_consent(session, "C-1", MARKETING, ConsentChannel.WEB)


def test_recording_the_same_decision_twice_is_unchanged(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    decision = _consent(MARKETING, ConsentChannel.EMAIL, GRANTED, "2026-01-01T00:00:00Z")
    assert record_consent(session, decision) is Change.CREATED
    assert record_consent(session, decision) is Change.UNCHANGED
    assert len(consent_history(session, "C-1")) == 1
    with pytest.raises(ProfileNotFound):
        record_consent(session, ConsentIn(**{**decision.__dict__, "customer_id": "C-404"}))


def test_import_consent_kind(
    session: Session,
    make_profile: Callable[..., None],
    write_jsonl: Callable[..., Path],
) -> None:
    make_profile("C-1")
    record = {
        "kind": "consent",
        "customer_id": "C-1",
        "purpose": "marketing",
        "channel": "email",
        "status": "granted",
        "at": "2026-11-26T10:31:00Z",
        "source": "web_checkout",
        "evidence": "ticked 'Email me offers' (form v3)",
    }
    path = write_jsonl([record])
    assert import_file(session, path).by_kind["consent"].created == 1
    assert import_file(session, path).by_kind["consent"].unchanged == 1
    stored = consent_history(session, "C-1")[0]
    assert stored.evidence == "ticked 'Email me offers' (form v3)"
    for field, value, reason in [
        ("purpose", "spam", "unknown purpose 'spam'; expected one of service_messages, marketing"),
        ("channel", "fax", "unknown channel 'fax'"),
        ("status", "maybe", "unknown status 'maybe'"),
        ("at", "2026-11-26T10:31:00", "has no timezone"),
        ("source", "", "must not be empty"),
        ("customer_id", "C-404", "unknown customer C-404"),
    ]:
        with pytest.raises(ImportRecordError) as caught:
            import_file(session, write_jsonl([{**record, field: value}], name="bad.jsonl"))
        assert caught.value.field == field and reason in caught.value.reason
