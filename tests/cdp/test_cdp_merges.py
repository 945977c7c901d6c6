"""Merging profiles on a verified identifier, the merge rules, conflicts, and exact unmerge."""

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.clock import parse_timestamp
from cdp.computed.service import computed_values
from cdp.consents.models import ConsentChannel, ConsentIn, ConsentPurpose, ConsentStatus
from cdp.consents.service import record_consent
from cdp.conversations.service import find_conversation_profile, record_conversation
from cdp.errors import IdentityConflict, MergeNotFound, MergeRefused
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.identities.service import find_profile_by_identity, link_identity
from cdp.merges.service import link_verified_identity, merge_profiles, unmerge
from cdp.models import Base
from cdp.privacy.models import AuditAction, AuditEntry
from cdp.profiles.models import Profile
from cdp.profiles.service import resolve_ref

# Bookkeeping that a merge adds on purpose and an unmerge keeps (history, not state), and
# the computed-attribute cache, compared by value instead: a rebuild may store zero-valued
# rows where there were none.
_NOT_COMPARED = {
    "profile_merges",
    "merge_conflicts",
    "audit_log",
    "computed_state",
    "computed_parts",
}
_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def _state(session: Session) -> dict[str, Any]:
    """Every row of every table but those above as sorted tuples, plus computed values."""
    session.flush()
    state: dict[str, Any] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in _NOT_COMPARED:
            continue
        rows = session.execute(select(table)).tuples()
        state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    state["computed"] = {
        customer_id: computed_values(session, customer_id, now=_NOW)
        for customer_id in session.scalars(select(Profile.customer_id))
    }
    return state


@pytest.fixture
def two_profiles(
    session: Session, make_profile: Callable[..., None], make_order: Callable[..., None]
) -> None:
    """C-1 (older, imported) and C-2 (newer, from a conversation): the same person."""
    make_profile(
        "C-1",
        first_name="Ana",
        last_name="Diaz",
        email="ana@example.com",
        phone="+15551230001",
        language="en",
        custom={"roast": "dark", "cup": "M"},
    )
    make_profile(
        "C-2",
        first_name="Anita",
        email="ana.diaz@example.com",
        email_verified=True,
        phone="+15551230002",
        language="es",
        custom={"roast": "light", "milk": "oat"},
    )
    older = session.get_one(Profile, "C-1")
    newer = session.get_one(Profile, "C-2")
    newer.created_at = older.created_at + timedelta(days=1)
    newer.updated_at = older.updated_at + timedelta(days=1)
    make_order("C-1", "O-1", "2026-10-01T10:00:00Z")
    make_order("C-2", "O-2", "2026-11-01T10:00:00Z")
    for customer_id, event_id in (("C-1", "E-1"), ("C-2", "E-2")):
        record_event(
            session,
            EventIn(event_id, customer_id, "visit", parse_timestamp("2026-11-02T10:00:00Z")),
        )
    record_consent(
        session,
        ConsentIn(
            "C-2",
            ConsentPurpose.MARKETING,
            ConsentChannel.SMS,
            ConsentStatus.GRANTED,
            parse_timestamp("2026-11-03T10:00:00Z"),
            "sms_keyword",
        ),
    )
    record_conversation(session, "C-2", "twilio", "whatsapp:+15551230002")
    link_identity(session, "C-2", "messenger_psid", "2411")
    session.flush()


def test_unverified_identifier_never_merges(session: Session, two_profiles: None) -> None:
    with pytest.raises(IdentityConflict, match="already belongs to C-2"):
        link_identity(session, "C-1", "phone", "+15551230002")
    assert session.get_one(Profile, "C-2").merged_into is None


def test_verified_identifier_merges_into_the_older_profile(
    session: Session, two_profiles: None
) -> None:
    result = link_verified_identity(session, "C-2", "phone", "+1 555 123 0001", actor="agent:jo")
    assert result.change is Change.UPDATED and result.customer_id == "C-1"
    merge = result.merge
    assert merge is not None and (merge.survivor_id, merge.merged_id) == ("C-1", "C-2")
    survivor = session.get_one(Profile, "C-1")
    assert session.get_one(Profile, "C-2").merged_into == "C-1"
    # names from the survivor; the verified email beats the unverified one; the newer
    # language wins; free-form keys: the newer profile wins a key, missing keys are added.
    assert (survivor.first_name, survivor.last_name) == ("Ana", "Diaz")
    assert survivor.email == "ana.diaz@example.com"
    assert survivor.language == "es"
    assert survivor.custom == {"roast": "light", "cup": "M", "milk": "oat"}
    conflicts = {c.attribute: c for c in merge.conflicts}
    assert set(conflicts) == {"first_name", "email", "phone", "language", "custom.roast"}
    assert conflicts["first_name"].rule == "names_from_survivor"
    assert (conflicts["first_name"].kept_value, conflicts["first_name"].other_value) == (
        "Ana",
        "Anita",
    )
    assert conflicts["email"].rule == "verified_beats_unverified"
    assert (
        conflicts["email"].kept_from.startswith("C-2 (")
        and "verified" in conflicts["email"].kept_from
    )
    assert conflicts["email"].other_value == "ana@example.com"
    assert conflicts["language"].rule == "newer_beats_older"
    # everything that follows the person now points at the survivor
    assert resolve_ref(session, "C-2") is survivor
    found = find_profile_by_identity(session, "messenger_psid", "2411")
    assert found is not None and found.customer_id == "C-1"
    assert find_conversation_profile(session, "twilio", "whatsapp:+15551230002") == "C-1"
    document = _state(session)
    assert {row[1] for row in document["orders"]} == {"C-1"}
    assert {row[2] for row in document["events"]} == {"C-1"}
    assert {row[1] for row in document["consents"]} == {"C-1"}
    linking = find_profile_by_identity(session, "phone", "+15551230001")
    assert linking is survivor
    audit = session.scalars(select(AuditEntry)).one()
    assert (audit.actor, audit.action, audit.customer_id) == ("agent:jo", AuditAction.MERGE, "C-1")


def test_unmerge_restores_both_profiles_exactly(session: Session, two_profiles: None) -> None:
    before = _state(session)
    merge = link_verified_identity(session, "C-1", "phone", "+15551230002").merge
    assert merge is not None
    assert _state(session) != before
    unmerge(session, merge.id, actor="operator")
    assert _state(session) == before
    assert merge.undone_by == "operator" and merge.undone_at is not None
    assert len(merge.conflicts) == 5  # the record of what happened stays
    with pytest.raises(MergeRefused, match="already undone"):
        unmerge(session, merge.id)


def test_merge_then_unmerge_keeps_what_the_survivor_gained_later(
    session: Session, two_profiles: None, make_order: Callable[..., None]
) -> None:
    merge = merge_profiles(session, "C-1", "C-2", reason="test")
    make_order("C-1", "O-3", "2026-11-20T10:00:00Z")
    unmerge(session, merge.id)
    orders = session.execute(select(Base.metadata.tables["orders"].c["order_id", "customer_id"]))
    assert sorted(orders.tuples()) == [("O-1", "C-1"), ("O-2", "C-2"), ("O-3", "C-1")]


def test_unmerge_goes_last_first(
    session: Session, two_profiles: None, make_profile: Callable[..., None]
) -> None:
    make_profile("C-3", email="third@example.com")
    first = merge_profiles(session, "C-1", "C-2", reason="first")
    second = merge_profiles(session, "C-1", "C-3", reason="second")
    with pytest.raises(MergeRefused, match=f"merge {second.id} into C-1 came later"):
        unmerge(session, first.id)
    unmerge(session, second.id)
    unmerge(session, first.id)
    assert session.scalars(select(Profile.merged_into)).all() == [None, None, None]


def test_merge_refusals(session: Session, two_profiles: None) -> None:
    with pytest.raises(MergeRefused, match="into itself"):
        merge_profiles(session, "C-1", "C-1", reason="x")
    merge_profiles(session, "C-1", "C-2", reason="x")
    with pytest.raises(MergeRefused, match="C-2 was already merged into C-1"):
        merge_profiles(session, "C-2", "C-1", reason="x")
    with pytest.raises(MergeNotFound, match="unknown merge 999"):
        unmerge(session, 999)


def test_verified_link_without_another_owner_just_verifies(
    session: Session, two_profiles: None
) -> None:
    result = link_verified_identity(session, "C-1", "member_id", "NWC-7")
    assert (result.change, result.customer_id, result.merge) == (Change.CREATED, "C-1", None)
    again = link_verified_identity(session, "C-1", "member_id", "NWC-7")
    assert again.change is Change.UNCHANGED


def test_a_merged_away_customer_links_for_its_survivor(
    session: Session, two_profiles: None
) -> None:
    merge_profiles(session, "C-1", "C-2", reason="x")
    result = link_verified_identity(session, "C-2", "member_id", "NWC-8")
    assert (result.customer_id, result.merge) == ("C-1", None)
    found = find_profile_by_identity(session, "member_id", "NWC-8")
    assert found is not None and found.customer_id == "C-1"


_side = st.fixed_dictionaries(
    {
        "first_name": st.none() | st.sampled_from(["Ana", "Anita", "Bo"]),
        "email": st.none() | st.sampled_from(["a", "b"]),
        "email_verified": st.booleans(),
        "language": st.none() | st.sampled_from(["en", "es"]),
        "verified": st.booleans(),
        "custom": st.none()
        | st.dictionaries(
            st.sampled_from(["membership_tier", "cup", "roast"]),
            st.sampled_from(["basic", "plus"]),
            max_size=3,
        ),
        "orders": st.integers(min_value=0, max_value=2),
    }
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sides=st.tuples(_side, _side), survivor_first=st.booleans())
def test_merge_then_unmerge_gives_back_the_original_state(
    session: Session,
    make_profile: Callable[..., None],
    make_order: Callable[..., None],
    sides: tuple[dict[str, Any], dict[str, Any]],
    survivor_first: bool,
) -> None:
    attempt = session.begin_nested()
    try:
        for number, side in enumerate(sides, start=1):
            attributes = {
                key: side[key] for key in ("first_name", "language", "custom", "verified")
            }
            if side["email"]:
                attributes["email"] = f"{side['email']}{number}@example.com"
                attributes["email_verified"] = side["email_verified"]
            make_profile(f"C-{number}", **attributes)
            for order in range(side["orders"]):
                make_order(f"C-{number}", f"O-{number}-{order}", f"2026-10-0{order + 1}T10:00:00Z")
        before = _state(session)
        survivor, merged = ("C-1", "C-2") if survivor_first else ("C-2", "C-1")
        record = merge_profiles(session, survivor, merged, reason="property")
        unmerge(session, record.id)
        assert _state(session) == before
    finally:
        attempt.rollback()
