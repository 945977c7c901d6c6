"""Conversation references: linking a Rasa conversation to a profile, once."""

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.conversations.service import (
    find_conversation_profile,
    list_conversations,
    record_conversation,
)
from cdp.errors import InvalidValue, ProfileNotFound


def test_record_conversation_is_idempotent_and_repoints(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    make_profile("C-2")
    assert record_conversation(session, "C-1", "socketio", "sid-1") is Change.CREATED
    first_seen = list_conversations(session, "C-1")[0].first_seen_at
    assert record_conversation(session, "C-1", " socketio ", "sid-1 ") is Change.UNCHANGED
    assert find_conversation_profile(session, "socketio", "sid-1") == "C-1"
    # the visitor signed in as another customer: the conversation follows them
    assert record_conversation(session, "C-2", "socketio", "sid-1") is Change.UPDATED
    assert list_conversations(session, "C-1") == []
    [moved] = list_conversations(session, "C-2")
    assert moved.first_seen_at == first_seen and moved.last_seen_at >= first_seen
    assert find_conversation_profile(session, "rest", "sid-1") is None


def test_record_conversation_refuses_bad_input(
    session: Session, make_profile: Callable[..., None]
) -> None:
    make_profile("C-1")
    with pytest.raises(InvalidValue, match="sender_id: must not be empty"):
        record_conversation(session, "C-1", "rest", "  ")
    with pytest.raises(InvalidValue, match="channel: must be at most 32 characters"):
        record_conversation(session, "C-1", "x" * 33, "s")
    with pytest.raises(ProfileNotFound, match="C-404"):
        record_conversation(session, "C-404", "rest", "s")
