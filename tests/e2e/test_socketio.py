"""The web chat's transport: socket.io with session persistence, identity in the metadata.

This guards the python-socketio pin: with releases from 5.10 on, Rasa 3.6 never joins the
client to its room and the web chat receives no bot message at all.
"""

from __future__ import annotations

import queue
import secrets

import pytest
import socketio

from tests.e2e.harness import Assistant

pytestmark = pytest.mark.e2e


def test_web_chat_gets_a_personal_greeting_over_socketio(assistant: Assistant) -> None:
    received: queue.Queue[dict] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("bot_uttered", received.put)
    session_id = f"web-{secrets.token_hex(6)}"
    client.connect(
        assistant.settings.rasa_url,
        socketio_path="/socket.io",
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        client.emit("session_request", {"session_id": session_id})
        client.emit(
            "user_uttered",
            {
                "message": "hello",
                "session_id": session_id,
                "metadata": {"customer_token": assistant.token("C-1001")},
            },
        )
        greeting = received.get(timeout=20)
        assert "Hi Ana" in greeting["text"]
        assert [b["payload"] for b in greeting["quick_replies"]] == [
            "/repeat_order",
            "/human_handoff",
        ]
    finally:
        client.disconnect()
