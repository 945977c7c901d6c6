"""What every channel refuses before Rasa sees it, and the identity shape it passes on."""

from __future__ import annotations

import pytest

from rasa_ext.channels.guard import (
    MAX_MESSAGE_CHARS,
    REPLY_EMPTY,
    REPLY_NOT_TEXT,
    channel_identity,
    is_client_conversation_id,
    text_problem,
    with_identity,
)


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "x" * MAX_MESSAGE_CHARS,
        "same as last time 😀👍🏽",
        "<script>alert(1)</script>",
        "'; DROP TABLE profiles; --",
        "Robert'); DELETE FROM orders WHERE ('1'='1",
        '/unknown_intent{"x": 1}',
        "line one\nline two\ttabbed",
        "Chloé à Lyon, 東京",
    ],
)
def test_ordinary_text_passes_untouched(text: str) -> None:
    assert text_problem(text) is None


def test_refused_text_gets_a_reply_that_says_why() -> None:
    assert text_problem("") == REPLY_EMPTY
    assert text_problem(" \n\t ") == REPLY_EMPTY
    assert text_problem(None) == REPLY_NOT_TEXT
    assert text_problem(42) == REPLY_NOT_TEXT
    assert text_problem(["hi"]) == REPLY_NOT_TEXT
    assert text_problem("nul\x00byte") == REPLY_NOT_TEXT
    assert text_problem("lone surrogate \ud800") == REPLY_NOT_TEXT
    too_long = text_problem("x" * (MAX_MESSAGE_CHARS + 1))
    assert too_long is not None
    assert "10,001 characters" in too_long and "under 10,000" in too_long


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0123456789abcdef", True),
        ("web-0123456789ab", True),
        ("a" * 64, True),
        ("short", False),
        ("a" * 65, False),
        ("has space 012345678", False),
        ("../../etc/passwd0000", False),
        (None, False),
        (1234567890123456, False),
    ],
)
def test_client_conversation_ids_must_look_random(value: object, ok: bool) -> None:
    assert is_client_conversation_id(value) is ok


def test_the_channel_identity_replaces_whatever_the_client_claimed() -> None:
    forged = {
        "customer_token": "t",
        "channel_identity": {"type": "twilio_sender", "value": "+15551230005", "proven": True},
    }
    identity = channel_identity("rest_sender", "me", proven=False)
    assert with_identity(forged, identity) == {
        "customer_token": "t",
        "channel_identity": {"type": "rest_sender", "value": "me", "proven": False},
    }
    assert forged["channel_identity"]["proven"] is True  # the client's dict is not changed
    assert with_identity("not a dict", identity) == {"channel_identity": identity}
