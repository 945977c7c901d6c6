"""Trackers and tokens as Rasa and the website would send them to the action server."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from cdp.identity_token import mint_token

SECRET = "test-identity-secret-of-a-decent-length"


def token_for(customer_id: str) -> str:
    return mint_token(customer_id, SECRET, 600)


def tracker(
    text: str = "hello",
    token: str | None = None,
    slots: dict[str, Any] | None = None,
    session_metadata: dict[str, Any] | None = None,
    input_channel: str = "rest",
) -> Tracker:
    """A tracker as Rasa sends it to the action server, after one user message."""
    metadata = {"customer_token": token} if token else {}
    latest = {"text": text, "intent": {}, "entities": [], "message_id": "m-1", "metadata": metadata}
    events = [{"event": "user", "text": text, "input_channel": input_channel, "metadata": metadata}]
    all_slots = {"session_started_metadata": session_metadata, **(slots or {})}
    return Tracker("conversation-1", all_slots, latest, events, False, None, {}, "action_listen")
