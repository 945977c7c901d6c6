"""One-time codes against the demo CDP on SQLite and PostgreSQL: the right code links the
channel identity, wrong and expired codes don't, limits hold, and races have one winner."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp.db import transaction
from cdp.errors import InvalidIdentifier
from cdp.events.models import Event
from cdp.identities.models import Identity, IdentityType
from cdp.privacy.service import erase_person
from cdp.verification.models import CodeState, OutboxMessage, TargetType, VerificationCode
from cdp.verification.senders import OutboxSender, outbox_messages
from cdp.verification.service import (
    CheckOutcome,
    IssueOutcome,
    Requester,
    VerificationSettings,
    check_code,
    issue_code,
)
from tests.verification.conftest import MovableClock

ANA_EMAIL, ANA_PHONE = "ana.diaz@example.com", "+15551230001"
MARCUS_PSID = "24117654321098765"
NEW_PSID = "31000000000000001"
CODE = re.compile(r"\b(\d{6})\b")


def ask(
    engine: Engine,
    settings: VerificationSettings,
    requester: Requester,
    target: str = ANA_EMAIL,
    kind: TargetType = TargetType.EMAIL,
) -> str | None:
    """Issue a code and deliver it through the outbox; the code the customer would read."""
    with transaction(engine) as session:
        issued = issue_code(session, requester, kind, target, settings)
    assert issued.outcome is IssueOutcome.SENT
    if issued.message is None:
        return None
    OutboxSender(engine).send(issued.message)
    return CODE.search(issued.message.body).group(1)


def check(engine: Engine, settings: VerificationSettings, requester: Requester, code: str) -> Any:
    with transaction(engine) as session:
        return check_code(session, requester, code, settings)


def identity(session: Session, kind: IdentityType, value: str) -> Identity | None:
    return session.scalar(select(Identity).where(Identity.type == kind, Identity.value == value))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def psid_requester(value: str = NEW_PSID) -> Requester:
    return Requester.of("messenger_psid", value, channel="facebook")


def test_the_right_code_links_the_psid_as_verified_with_an_event(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = psid_requester()
    code = ask(demo, settings, requester)
    with transaction(demo) as session:
        [sent] = outbox_messages(session, ANA_EMAIL)
        assert code in sent.body and sent.target_type is TargetType.EMAIL
        stored = session.scalar(select(VerificationCode))
        # Never in clear: neither the code nor the target is in the row.
        row_text = " ".join(str(getattr(stored, c.key)) for c in VerificationCode.__table__.c)
        assert code not in row_text and ANA_EMAIL not in row_text
    result = check(demo, settings, requester, f" {code[:3]} {code[3:]} ")
    assert result.outcome is CheckOutcome.VERIFIED and result.customer_id == "C-1001"
    with transaction(demo) as session:
        linked = identity(session, IdentityType.MESSENGER_PSID, NEW_PSID)
        assert linked is not None and linked.customer_id == "C-1001" and linked.verified
        [event] = session.scalars(select(Event).where(Event.type == "identity_verified"))
        assert (event.customer_id, event.channel) == ("C-1001", "facebook")
        assert event.properties == {"identity_type": "messenger_psid", "via": "email"}


def test_a_used_code_cannot_be_replayed_here_or_from_another_conversation(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = psid_requester()
    code = ask(demo, settings, requester)
    assert check(demo, settings, requester, code).outcome is CheckOutcome.VERIFIED
    assert check(demo, settings, requester, code).outcome is CheckOutcome.NO_CODE
    other = psid_requester("31000000000000002")
    assert check(demo, settings, other, code).outcome is CheckOutcome.NO_CODE
    with transaction(demo) as session:
        assert identity(session, IdentityType.MESSENGER_PSID, other.value) is None
        assert (
            len(list(session.scalars(select(Event).where(Event.type == "identity_verified")))) == 1
        )


def test_wrong_codes_count_down_then_the_code_is_dead(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = psid_requester()
    code = ask(demo, settings, requester)
    left = [check(demo, settings, requester, wrong(code)) for _ in range(4)]
    assert [(r.outcome, r.attempts_left) for r in left] == [
        (CheckOutcome.WRONG, 4),
        (CheckOutcome.WRONG, 3),
        (CheckOutcome.WRONG, 2),
        (CheckOutcome.WRONG, 1),
    ]
    assert check(demo, settings, requester, wrong(code)).outcome is CheckOutcome.EXHAUSTED
    # Dead: even the right code is refused now, and nothing was linked.
    assert check(demo, settings, requester, code).outcome is CheckOutcome.EXHAUSTED
    with transaction(demo) as session:
        assert identity(session, IdentityType.MESSENGER_PSID, NEW_PSID) is None
        assert session.scalar(select(VerificationCode.state)) is CodeState.EXHAUSTED


def test_something_that_is_not_a_code_takes_no_attempt(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = psid_requester()
    code = ask(demo, settings, requester)
    for typo in ("12345", "1234567", "12a456", "", "١٢٣٤٥٦"):
        assert check(demo, settings, requester, typo).outcome is CheckOutcome.MALFORMED
    assert check(demo, settings, requester, wrong(code)).attempts_left == 4


def test_an_expired_code_is_refused(
    demo: Engine, settings: VerificationSettings, moving_clock: MovableClock
) -> None:
    requester = psid_requester()
    code = ask(demo, settings, requester)
    moving_clock.advance(minutes=9, seconds=59)
    assert check(demo, settings, requester, wrong(code)).outcome is CheckOutcome.WRONG
    moving_clock.advance(seconds=1)
    assert check(demo, settings, requester, code).outcome is CheckOutcome.EXPIRED
    # A new code works again.
    fresh = ask(demo, settings, requester)
    assert check(demo, settings, requester, fresh).outcome is CheckOutcome.VERIFIED


def test_a_new_code_replaces_the_pending_one(demo: Engine, settings: VerificationSettings) -> None:
    requester = psid_requester()
    first = ask(demo, settings, requester)
    second = ask(demo, settings, requester)
    if first != second:
        assert check(demo, settings, requester, first).outcome is CheckOutcome.WRONG
    assert check(demo, settings, requester, second).outcome is CheckOutcome.VERIFIED


def test_codes_per_target_are_limited_per_hour_decoys_included(
    demo: Engine, settings: VerificationSettings, moving_clock: MovableClock
) -> None:
    for n in range(3):
        ask(demo, settings, psid_requester(f"3100000000000010{n}"))
    with transaction(demo) as session:
        limited = issue_code(session, psid_requester(), TargetType.EMAIL, ANA_EMAIL, settings)
    assert limited.outcome is IssueOutcome.RATE_LIMITED and limited.message is None
    # Typed differently, the same target: still limited.
    with transaction(demo) as session:
        again = issue_code(session, psid_requester(), "email", " Ana.Diaz@Example.com ", settings)
    assert again.outcome is IssueOutcome.RATE_LIMITED
    unknown = "nobody@example.org"
    for _ in range(3):
        ask(demo, settings, psid_requester(), unknown)
    with transaction(demo) as session:
        decoy = issue_code(session, psid_requester(), TargetType.EMAIL, unknown, settings)
    assert decoy.outcome is IssueOutcome.RATE_LIMITED
    moving_clock.advance(hours=1, seconds=1)
    assert ask(demo, settings, psid_requester()) is not None


def test_an_identifier_not_on_file_gets_the_same_answer_and_nothing_is_sent(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = psid_requester()
    with transaction(demo) as session:
        issued = issue_code(session, requester, TargetType.PHONE, "+1 555 999 0000", settings)
    assert issued.outcome is IssueOutcome.SENT and issued.expires_at is not None
    assert issued.message is None
    with transaction(demo) as session:
        assert session.scalars(select(OutboxMessage)).all() == []
    # Checking behaves like a real code: attempts count down, then dead.
    outcomes = [check(demo, settings, requester, "123456") for _ in range(5)]
    assert [r.attempts_left for r in outcomes[:4]] == [4, 3, 2, 1]
    assert outcomes[4].outcome is CheckOutcome.EXHAUSTED


def test_malformed_targets_and_requesters_are_clear_errors(
    demo: Engine, settings: VerificationSettings
) -> None:
    with transaction(demo) as session, pytest.raises(InvalidIdentifier, match="phone"):
        issue_code(session, psid_requester(), TargetType.PHONE, "call me", settings)
    with transaction(demo) as session, pytest.raises(InvalidIdentifier, match="email"):
        issue_code(session, psid_requester(), TargetType.EMAIL, "ana at example", settings)
    with pytest.raises(InvalidIdentifier, match="not one of"):
        Requester.of("customer_id", "C-1001")
    with pytest.raises(InvalidIdentifier, match="phone"):
        Requester.of("twilio_sender", "not-a-phone")


def test_an_sms_sender_verified_by_a_code_to_that_phone_becomes_a_verified_phone(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = Requester.of("twilio_sender", ANA_PHONE, channel="twilio")
    with transaction(demo) as session:
        assert not identity(session, IdentityType.PHONE, ANA_PHONE).verified
    code = ask(demo, settings, requester, ANA_PHONE, TargetType.PHONE)
    with transaction(demo) as session:
        [sent] = outbox_messages(session, ANA_PHONE)
        assert sent.target_type is TargetType.PHONE
    assert check(demo, settings, requester, code).outcome is CheckOutcome.VERIFIED
    with transaction(demo) as session:
        phone = identity(session, IdentityType.PHONE, ANA_PHONE)
        assert phone.verified and phone.customer_id == "C-1001"


@pytest.mark.parametrize(
    ("kind", "value", "identity_type"),
    [
        ("socketio_session", "a3f1c2d4e5b6a7980f1e2d3c4b5a6978", IdentityType.SOCKETIO_SENDER),
        ("rest_sender", "rest-dev-7", IdentityType.REST_SENDER),
    ],
)
def test_web_and_rest_conversations_are_linked_by_their_sender_id(
    demo: Engine,
    settings: VerificationSettings,
    kind: str,
    value: str,
    identity_type: IdentityType,
) -> None:
    requester = Requester.of(kind, value, channel=kind.split("_")[0])
    code = ask(demo, settings, requester)
    assert check(demo, settings, requester, code).outcome is CheckOutcome.VERIFIED
    with transaction(demo) as session:
        linked = identity(session, identity_type, value)
        assert linked.customer_id == "C-1001" and linked.verified


def test_a_channel_identity_of_another_customer_is_not_moved(
    demo: Engine, settings: VerificationSettings
) -> None:
    # Marcus' PSID proves Ana's email: the PSID stays Marcus', nothing is linked.
    requester = psid_requester(MARCUS_PSID)
    code = ask(demo, settings, requester)
    assert check(demo, settings, requester, code).outcome is CheckOutcome.LINKED_ELSEWHERE
    with transaction(demo) as session:
        assert identity(session, IdentityType.MESSENGER_PSID, MARCUS_PSID).customer_id == "C-1005"
        assert session.scalars(select(Event).where(Event.type == "identity_verified")).all() == []
    assert check(demo, settings, requester, code).outcome is CheckOutcome.NO_CODE


def race(threads: int, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in several threads released together; their results."""
    barrier = threading.Barrier(threads)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        results.append(work())

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=60)
    assert len(results) == threads
    return results


def test_two_concurrent_checks_of_one_code_have_exactly_one_winner(
    demo: Engine, settings: VerificationSettings
) -> None:
    for round_no in range(3):
        requester = psid_requester(f"3200000000000000{round_no}")
        code = ask(demo, settings, requester, ANA_PHONE, TargetType.PHONE)
        results = race(2, lambda r=requester, c=code: check(demo, settings, r, c))
        outcomes = sorted(r.outcome.value for r in results)
        assert outcomes == ["no_code", "verified"], outcomes
    with transaction(demo) as session:
        events = session.scalars(select(Event).where(Event.type == "identity_verified")).all()
        assert len(events) == 3


def test_concurrent_wrong_guesses_never_exceed_the_attempts(
    demo: Engine, settings: VerificationSettings
) -> None:
    requester = psid_requester()
    code = ask(demo, settings, requester)
    results = race(8, lambda: check(demo, settings, requester, wrong(code)))
    counted = [r for r in results if r.outcome is CheckOutcome.WRONG]
    assert sorted(r.attempts_left for r in counted) == [1, 2, 3, 4]
    assert sum(r.outcome is CheckOutcome.EXHAUSTED for r in results) == 4
    assert check(demo, settings, requester, code).outcome is CheckOutcome.EXHAUSTED


def test_erasing_the_customer_removes_their_codes_and_outbox_messages(
    demo: Engine, settings: VerificationSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_ERASURE_KEY", "erasure-key-for-the-verification-tests")
    ask(demo, settings, psid_requester())
    with transaction(demo) as session:
        erase_person(session, "C-1001", "test", "asked to be forgotten")
    with transaction(demo) as session:
        assert session.scalars(select(VerificationCode)).all() == []
        assert session.scalars(select(OutboxMessage)).all() == []
