"""Rasa's HTTP API as the console uses it: run the handoff actions, read a conversation.

Blocking `requests` calls, made from worker threads by app.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import requests

TIMEOUT_SECONDS = 15


class RasaError(RuntimeError):
    """Rasa could not be reached or refused; the message says which call and why."""


def execute(rasa_url: str, token: str, conversation_id: str, action: str) -> None:
    """Run `action` in the conversation; its messages go out on the customer's last channel."""
    url = f"{rasa_url}/conversations/{quote(conversation_id, safe='')}/execute"
    try:
        reply = requests.post(
            url,
            params={"token": token, "output_channel": "latest"},
            json={"name": action},
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        raise RasaError(f"{action} for {conversation_id}: Rasa unreachable: {error}") from None
    if reply.status_code != 200:
        raise RasaError(f"{action} for {conversation_id}: Rasa answered {reply.status_code}")


def customer_messages_since(
    rasa_url: str, token: str, conversation_id: str, since: datetime
) -> list[dict[str, Any]]:
    """Customer messages logged after `since` (to catch any the forwarding lost)."""
    url = f"{rasa_url}/conversations/{quote(conversation_id, safe='')}/tracker"
    try:
        reply = requests.get(
            url, params={"token": token, "include_events": "AFTER_RESTART"}, timeout=TIMEOUT_SECONDS
        )
    except requests.RequestException as error:
        raise RasaError(f"tracker of {conversation_id}: Rasa unreachable: {error}") from None
    if reply.status_code != 200:
        raise RasaError(f"tracker of {conversation_id}: Rasa answered {reply.status_code}")
    found = []
    for event in reply.json().get("events", []):
        at = datetime.fromtimestamp(event.get("timestamp", 0), timezone.utc)
        text = event.get("text") or ""
        if event.get("event") == "user" and at > since and text and not text.startswith("/"):
            found.append({"message_id": event.get("message_id"), "text": text, "at": at})
    return [m for m in found if m["message_id"]]
