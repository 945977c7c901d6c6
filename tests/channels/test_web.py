"""REST (development) and socket.io (web chat) over HTTP: bad input is a 4xx or a clear reply,
and neither channel lets a client claim someone else's identity."""

from __future__ import annotations

import queue
import secrets
from typing import Any

import pytest
import requests
import socketio

from tests.channels.stack import ChannelStack

pytestmark = pytest.mark.e2e

MARCUS_PHONE = "+15551230005"


def rest(channels: ChannelStack, **kwargs: Any) -> requests.Response:
    return requests.post(
        f"{channels.settings.rasa_url}/webhooks/rest/webhook", timeout=30, **kwargs
    )


def texts(reply: requests.Response) -> str:
    assert reply.status_code == 200, reply.text
    return "\n".join(m.get("text", "") for m in reply.json())


def test_rest_with_a_forged_sender_and_channel_identity_gets_nothing_personal(
    channels: ChannelStack,
) -> None:
    forged = {"channel_identity": {"type": "twilio_sender", "value": MARCUS_PHONE, "proven": True}}
    for sender in (MARCUS_PHONE, "C-1005", "24117654321098765"):
        said = texts(
            rest(
                channels,
                json={
                    "sender": sender,
                    "message": "reorder my last order",
                    "metadata": forged,
                    "input_channel": "twilio",
                },
            )
        )
        assert "I can't see who you are yet" in said  # the REST wording, not the SMS one
        for personal in ("Alberta", "Portland", "Marcus", "Total"):
            assert personal not in said


def test_rest_with_the_customer_token_is_served(channels: ChannelStack) -> None:
    said = texts(
        rest(
            channels,
            json={
                "sender": f"rest-{secrets.token_hex(4)}",
                "message": "hi",
                "metadata": {"customer_token": channels.token("C-1005")},
            },
        )
    )
    assert "Hi Marcus" in said


@pytest.mark.parametrize(
    ("kwargs", "status", "why"),
    [
        ({"data": b"{not json"}, 400, "JSON"),
        ({"data": b"\xff\xfe"}, 400, "JSON"),
        ({"json": ["hi"]}, 400, "object"),
        ({"json": {"message": "hi"}}, 400, "sender"),
        ({"json": {"sender": "", "message": "hi"}}, 400, "sender"),
        ({"json": {"sender": "s" * 129, "message": "hi"}}, 400, "sender"),
        ({"json": {"sender": "rest-odd", "message": ""}}, 400, "didn't get any text"),
        ({"json": {"sender": "rest-odd", "message": 42}}, 400, "only read text"),
        ({"json": {"sender": "rest-odd", "message": "nul\u0000"}}, 400, "only read text"),
        ({"json": {"sender": "rest-odd", "message": "x" * 10_001}}, 413, "too long"),
        ({"json": {"sender": "rest-odd", "message": "hi", "metadata": "x"}}, 400, "metadata"),
    ],
)
def test_rest_refuses_bad_input_with_a_clean_4xx(
    channels: ChannelStack, kwargs: dict[str, Any], status: int, why: str
) -> None:
    reply = rest(channels, **kwargs)
    assert reply.status_code == status
    assert why in reply.json()["error"]


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000,
        "😀👍🏽 same as last time",
        "<img src=x onerror=alert(1)> <script>alert(1)</script>",
        "'; DROP TABLE profiles; --",
        "/no_such_intent",
        '/greet{"broken',
        '/repeat_order{"customer_id": "C-1005"}',
    ],
)
def test_odd_but_valid_text_gets_an_answer_never_a_500(channels: ChannelStack, text: str) -> None:
    sender = f"rest-{secrets.token_hex(6)}"
    said = texts(rest(channels, json={"sender": sender, "message": text}))
    assert "Alberta" not in said and "Marcus" not in said
    # The conversation still works afterwards.
    assert texts(rest(channels, json={"sender": sender, "message": "bye"}))


def test_the_http_api_needs_its_token(channels: ChannelStack) -> None:
    url = f"{channels.settings.rasa_url}/conversations/anyone/tracker"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "guess"}, timeout=10).status_code == 401
    assert (
        requests.get(url, params={"token": channels.settings.api_token}, timeout=10).status_code
        == 200
    )


class WebClient:
    """A socket.io client as the page is, polling transport (no extra websocket package)."""

    def __init__(self, channels: ChannelStack) -> None:
        self.received: queue.Queue[Any] = queue.Queue()
        self.confirmed: queue.Queue[str] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("bot_uttered", self.received.put)
        self.client.on("session_confirm", self.confirmed.put)
        self.client.connect(
            channels.settings.rasa_url,
            socketio_path="/socket.io",
            transports=["polling"],
            wait_timeout=10,
        )

    def join(self, session_id: object) -> str:
        self.client.emit("session_request", {"session_id": session_id})
        return self.confirmed.get(timeout=10)

    def next_text(self) -> str:
        return self.received.get(timeout=30).get("text", "")


@pytest.fixture
def web(channels: ChannelStack) -> Any:
    client = WebClient(channels)
    yield client
    client.client.disconnect()


def test_web_chat_session_ids_must_be_random_and_joined(web: WebClient) -> None:
    assert web.join("short") != "short"  # replaced by a random id
    session = secrets.token_hex(16)
    web.client.emit("user_uttered", {"message": "hi", "session_id": session})
    assert "not valid any more" in web.next_text()  # never joined: refused
    assert web.join(session) == session
    web.client.emit("user_uttered", {"message": "hi", "session_id": session})
    assert "Sign in on our website" in web.next_text()


def test_web_chat_bad_messages_get_a_clear_reply(web: WebClient, channels: ChannelStack) -> None:
    session = web.join(secrets.token_hex(16))
    web.client.emit("user_uttered", "just a string")
    assert "only read text" in web.next_text()
    for message, reply in (
        ("x" * 10_001, "too long"),
        ("   ", "didn't get any text"),
        (None, "only read text"),
    ):
        web.client.emit("user_uttered", {"message": message, "session_id": session})
        assert reply in web.next_text()
    forged = {
        "channel_identity": {"type": "messenger_psid", "value": "24117654321098765", "proven": True}
    }
    web.client.emit(
        "user_uttered",
        {"message": "reorder my last order", "session_id": session, "metadata": forged},
    )
    assert "I can't see who you are yet" in web.next_text()
    web.client.emit(
        "user_uttered",
        {
            "message": "hi",
            "session_id": session,
            "metadata": {"customer_token": channels.token("C-1005")},
        },
    )
    assert "Hi Marcus" in web.next_text()
