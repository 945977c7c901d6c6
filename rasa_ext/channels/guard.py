"""What every channel checks before a message reaches Rasa, and the identity it passes on.

Pure functions, no Rasa imports. A refused message is answered with a clear reply (chat
channels) or a 4xx (REST) and never reaches the dialogue, so it cannot break a conversation.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Longer messages are refused, not truncated: a cut message could change what a customer asked.
MAX_MESSAGE_CHARS = 10_000
# Conversation ids chosen by a client (socket.io session ids, REST senders).
_CLIENT_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Control characters other than tab and newlines say the bytes were not text.
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"}

CHANNEL_IDENTITY_KEY = "channel_identity"
REPLY_EMPTY = "I didn't get any text in that message. Please type your question."
REPLY_NOT_TEXT = "Sorry, I can only read text messages. Please type your question."


def too_long_reply(length: int) -> str:
    return (
        f"Sorry, that message is too long for me ({length:,} characters). "
        f"Please keep it under {MAX_MESSAGE_CHARS:,} characters."
    )


def text_problem(text: object) -> str | None:
    """Why this message text must not reach Rasa (a reply to send back), or None if fine."""
    if not isinstance(text, str):
        return REPLY_NOT_TEXT
    if not text.strip():
        return REPLY_EMPTY
    if len(text) > MAX_MESSAGE_CHARS:
        return too_long_reply(len(text))
    if any(ch in _CONTROL or unicodedata.category(ch) == "Cs" for ch in text):
        return REPLY_NOT_TEXT
    return None


def is_client_conversation_id(value: object) -> bool:
    """A client-chosen conversation id is long and random enough not to be guessed or shared."""
    return isinstance(value, str) and _CLIENT_CONVERSATION_ID.fullmatch(value) is not None


def channel_identity(kind: str, value: str, *, proven: bool) -> dict[str, Any]:
    """The one shape every channel uses to tell the actions who sent a message.

    `proven` means the channel itself proved the value (a Twilio signature proves the sender
    phone; a Messenger signature proves the PSID); it never means the value is linked to a
    customer profile. That link is the actions' decision, against verified CDP identities.
    """
    return {"type": kind, "value": value, "proven": proven}


def with_identity(metadata: object, identity: dict[str, Any]) -> dict[str, Any]:
    """Client metadata with the channel's own identity, replacing anything the client sent."""
    clean = dict(metadata) if isinstance(metadata, dict) else {}
    clean[CHANNEL_IDENTITY_KEY] = identity
    return clean
