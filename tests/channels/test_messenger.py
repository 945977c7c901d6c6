"""Messenger over HTTP against the real Rasa and action servers: signatures, batches,
redeliveries, and what an unverified PSID may see."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import requests

from tests.channels.stack import ChannelStack

pytestmark = pytest.mark.e2e

MARCUS_PSID = "24117654321098765"  # verified messenger_psid identity of C-1005


def psid() -> str:
    return str(10**16 + secrets.randbelow(10**16))


def event(sender: str, text: str, mid: str | None = None) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": "PAGE"},
        "timestamp": 1700000000000,
        "message": {"mid": mid or f"m_{secrets.token_hex(8)}", "text": text},
    }


def delivery(*entries: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": e} for e in entries]}
    ).encode()


def all_text(messages: list[dict[str, Any]]) -> str:
    texts = []
    for m in messages:
        template = m.get("attachment", {}).get("payload", {})
        texts.append(m.get("text") or template.get("text", ""))
    return "\n".join(texts)


def test_unsigned_or_wrongly_signed_webhooks_are_refused_before_anything_runs(
    channels: ChannelStack,
) -> None:
    sender = psid()
    body = delivery([event(sender, "hi")])
    url = f"{channels.settings.rasa_url}/webhooks/facebook/webhook"
    assert requests.post(url, data=body, timeout=10).status_code == 403
    assert channels.messenger_post(body, secret="not-the-app-secret").status_code == 403
    # Signed right, then changed: the signature covers the raw body.
    signed = channels.messenger_post(delivery([event(psid(), "hi")]))
    assert signed.status_code == 200
    tampered = requests.post(
        url,
        data=body,
        timeout=10,
        headers={"X-Hub-Signature-256": signed.request.headers["X-Hub-Signature-256"]},
    )
    assert tampered.status_code == 403
    # Rasa's own connector accepted the old SHA-1 header; this one does not.
    legacy = requests.post(url, data=body, timeout=10, headers={"X-Hub-Signature": "sha1=00"})
    assert legacy.status_code == 403
    # The one good delivery above was answered; the refused sender never was.
    channels.recorder.wait_for(lambda r: r.path.endswith("/me/messages"), 1)
    assert channels.graph_sends(sender) == []


def test_the_verification_handshake(channels: ChannelStack) -> None:
    url = f"{channels.settings.rasa_url}/webhooks/facebook/webhook"
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": channels.env["MESSENGER_VERIFY_TOKEN"],
        "hub.challenge": "1158201444",
    }
    assert requests.get(url, params=good, timeout=10).text == "1158201444"
    bad = {**good, "hub.verify_token": "guess"}
    assert requests.get(url, params=bad, timeout=10).status_code == 403


def test_every_event_of_a_batch_is_answered_exactly_once_even_when_redelivered(
    channels: ChannelStack,
) -> None:
    first, second, third = psid(), psid(), psid()
    body = delivery(
        [event(first, "hi"), event(second, "hello")],
        [event(third, "good morning")],
    )
    reply = channels.messenger_post(body)
    assert reply.status_code == 200 and reply.text == "EVENT_RECEIVED"
    # Messenger redelivers what it thinks went unanswered: the same message ids again.
    assert channels.messenger_post(body).status_code == 200
    for sender in (first, second, third):
        messages = channels.wait_graph(sender)
        assert len(messages) == 1, messages
        assert "isn't linked to a Northwind Corner account" in all_text(messages)


def test_turns_of_one_sender_in_one_batch_run_in_order(channels: ChannelStack) -> None:
    sender = psid()
    body = delivery([event(sender, "hi"), event(sender, "bye")])
    assert channels.messenger_post(body).status_code == 200
    messages = channels.wait_graph(sender, 2)
    assert "isn't linked" in all_text(messages[:1])
    assert "Bye for now" in all_text(messages[1:])


def test_a_verified_psid_gets_its_own_order_with_buttons(channels: ChannelStack) -> None:
    body = delivery([event(MARCUS_PSID, "same as last time please")])
    assert channels.messenger_post(body).status_code == 200
    [message] = channels.wait_graph(MARCUS_PSID)
    template = message["attachment"]["payload"]
    assert template["template_type"] == "button"
    assert "Your last order" in template["text"]
    assert [b["payload"] for b in template["buttons"]] == ["/affirm", "/deny"]
    assert all(len(b["title"]) <= 20 for b in template["buttons"])


def test_an_unverified_psid_cannot_read_anyone_s_orders_or_address(
    channels: ChannelStack,
) -> None:
    sender = psid()
    asks = ["reorder my last order", "same as last time please"]
    body = delivery([event(sender, text) for text in asks])
    assert channels.messenger_post(body).status_code == 200
    text = all_text(channels.wait_graph(sender, 2))
    for personal in ("Alberta", "Portland", "Elm St", "Marcus", "Ana", "Total"):
        assert personal not in text


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b"[]",
        b'{"object": "user", "entry": []}',
        b'{"object": "page", "entry": "x"}',
    ],
)
def test_a_signed_but_malformed_body_is_a_clean_400(channels: ChannelStack, raw: bytes) -> None:
    reply = channels.messenger_post(raw)
    assert reply.status_code == 400 and reply.json()["error"]


def test_odd_messages_get_a_clear_reply_and_never_break_the_turn(channels: ChannelStack) -> None:
    too_long, sticker, script = psid(), psid(), psid()
    sticker_event = {
        "sender": {"id": sticker},
        "message": {
            "mid": f"m_{secrets.token_hex(6)}",
            "attachments": [{"type": "image", "payload": {"url": "https://x/y.png"}}],
        },
    }
    body = delivery(
        [
            event(too_long, "x" * 10_001),
            sticker_event,
            event(script, "<script>alert(1)</script> 😀 '; DROP TABLE profiles; --"),
        ],
        [{"sender": {"id": psid()}, "delivery": {"mids": ["m_1"]}}],  # not a message: ignored
    )
    assert channels.messenger_post(body).status_code == 200
    assert "too long" in all_text(channels.wait_graph(too_long))
    assert "only read text" in all_text(channels.wait_graph(sticker))
    assert len(channels.wait_graph(script)) >= 1
