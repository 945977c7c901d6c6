"""SMS and WhatsApp through Twilio, over HTTP against the real servers.

Requests are signed with Twilio's own RequestValidator over the public URL; replies are read
from what the connector sent to the Twilio REST API (a local recorder).
"""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.channels.stack import SMS_NUMBER, WHATSAPP_NUMBER, ChannelStack

pytestmark = pytest.mark.e2e

MARCUS_PHONE = "+15551230005"  # verified phone of C-1005
ANA_PHONE = "+15551230001"  # on C-1001's profile, not verified


def sms(sender: str, body: str, sid: str | None = None) -> dict[str, str]:
    return {
        "From": sender,
        "To": SMS_NUMBER,
        "Body": body,
        "MessageSid": sid or "SM" + secrets.token_hex(16),
        "AccountSid": "ACignored",
        "NumMedia": "0",
    }


def unknown_phone() -> str:
    return "+1555" + str(2_000_000 + secrets.randbelow(7_000_000))


def user_texts(channels: ChannelStack, sender: str) -> list[str]:
    """What Rasa received from this sender, read through its HTTP API."""
    tracker = requests.get(
        f"{channels.settings.rasa_url}/conversations/{sender}/tracker",
        params={"token": channels.settings.api_token},
        timeout=10,
    ).json()
    return [e["text"] for e in tracker["events"] if e["event"] == "user"]


def bodies(texts: list[dict[str, str]]) -> str:
    return "\n".join(t["Body"] for t in texts)


def test_a_signed_sms_is_acknowledged_and_answered_from_our_number(channels: ChannelStack) -> None:
    sender = unknown_phone()
    reply = channels.twilio_post(sms(sender, "hi"))
    assert reply.status_code == 200 and "<Response>" in reply.text
    [text] = channels.wait_texts(sender)
    assert text["From"] == SMS_NUMBER
    assert "I don't recognise this number" in text["Body"]
    sent = channels.recorder.matching(lambda r: r.path.endswith("/Messages.json"))[-1]
    assert (
        sent.path
        == f"/twilio/2010-04-01/Accounts/{channels.env['TWILIO_ACCOUNT_SID']}/Messages.json"
    )
    assert sent.headers["Authorization"].startswith("Basic ")


def test_forged_or_missing_signatures_are_refused_and_nothing_runs(channels: ChannelStack) -> None:
    sender = unknown_phone()
    form = sms(sender, "hi")
    local_url = f"{channels.settings.rasa_url}/webhooks/twilio/webhook"
    assert channels.twilio_post(form, signature="").status_code == 403
    assert channels.twilio_post(form, auth_token="0" * 32).status_code == 403
    # Signed for the URL Rasa sees, not the public one Twilio calls: refused.
    assert channels.twilio_post(form, signed_url=local_url).status_code == 403
    # Signed, then the body changed on the way.
    good = channels.twilio_post(sms(unknown_phone(), "hi"))
    signature = good.request.headers["X-Twilio-Signature"]
    forged = requests.post(
        local_url,
        data={**form, "Body": "reorder my last order"},
        headers={"X-Twilio-Signature": signature},
        timeout=10,
    )
    assert forged.status_code == 403
    assert channels.twilio_post(form, channel="whatsapp", signature="AAAA").status_code == 403
    channels.recorder.wait_for(lambda r: r.path.endswith("/Messages.json"), 1)
    assert channels.texts_to(sender) == []


def test_a_verified_phone_is_served_and_a_numbered_reply_presses_the_button(
    channels: ChannelStack,
) -> None:
    assert channels.twilio_post(sms(MARCUS_PHONE, "hi")).status_code == 200
    [greeting] = channels.wait_texts(MARCUS_PHONE)
    assert "Hi Marcus" in greeting["Body"]
    assert "1. Repeat my last order\n2. Talk to a person" in greeting["Body"]
    assert channels.twilio_post(sms(MARCUS_PHONE, "1")).status_code == 200
    texts = channels.wait_texts(MARCUS_PHONE, 2)
    proposal = bodies(texts[1:])
    assert "Your last order" in proposal and "Shall I place the same order again?" in proposal
    assert "1. Yes, order again\n2. No" in proposal
    assert all(len(t["Body"]) <= 1600 for t in texts)
    # Choices answer only the next message: after "bye", a "1" reaches Rasa as plain "1".
    assert channels.twilio_post(sms(MARCUS_PHONE, "bye")).status_code == 200
    texts = channels.wait_texts(MARCUS_PHONE, len(texts) + 1)
    assert channels.twilio_post(sms(MARCUS_PHONE, "1")).status_code == 200
    channels.wait_texts(MARCUS_PHONE, len(texts) + 1)
    said = user_texts(channels, MARCUS_PHONE)
    assert said[-4:] == ["hi", "/repeat_order", "bye", "1"]


def test_whatsapp_uses_its_own_webhook_and_number(channels: ChannelStack) -> None:
    sender = f"whatsapp:{MARCUS_PHONE}"
    form = {**sms(sender, "hello"), "To": f"whatsapp:{WHATSAPP_NUMBER}"}
    assert channels.twilio_post(form, channel="whatsapp").status_code == 200
    [text] = channels.wait_texts(sender)
    assert text["From"] == f"whatsapp:{WHATSAPP_NUMBER}"
    assert "Hi Marcus" in text["Body"]


def test_a_redelivered_message_sid_is_answered_once(channels: ChannelStack) -> None:
    sender = unknown_phone()
    form = sms(sender, "hi")
    assert channels.twilio_post(form).status_code == 200
    assert channels.twilio_post(form).status_code == 200
    assert len(channels.wait_texts(sender)) == 1


@pytest.mark.parametrize("sender", [None, ANA_PHONE])
def test_an_unknown_or_unverified_number_cannot_read_anyone_s_orders(
    channels: ChannelStack, sender: str | None
) -> None:
    sender = sender or unknown_phone()
    before = len(channels.texts_to(sender))
    for text in ("reorder my last order", "1"):
        assert channels.twilio_post(sms(sender, text)).status_code == 200
        channels.wait_texts(sender, before + 1)
        before = len(channels.texts_to(sender))
    said = bodies(channels.texts_to(sender))
    assert "can't tell whose account this number belongs to" in said
    for personal in ("Elm St", "Springfield", "Alberta", "Total", "Ana", "Marcus"):
        assert personal not in said


def test_bad_input_gets_a_clear_reply_or_a_clean_4xx(channels: ChannelStack) -> None:
    long_sender, empty_sender = unknown_phone(), unknown_phone()
    assert channels.twilio_post(sms(long_sender, "x" * 10_001)).status_code == 200
    assert "too long" in bodies(channels.wait_texts(long_sender))
    assert channels.twilio_post(sms(empty_sender, "   ")).status_code == 200
    assert "didn't get any text" in bodies(channels.wait_texts(empty_sender))
    no_sid = sms(unknown_phone(), "hi")
    del no_sid["MessageSid"]
    assert channels.twilio_post(no_sid).status_code == 400
    odd = unknown_phone()
    assert channels.twilio_post(sms(odd, "<b>hi</b> 😀 ' OR 1=1 --")).status_code == 200
    assert channels.wait_texts(odd)
    raw = requests.post(
        f"{channels.settings.rasa_url}/webhooks/twilio/webhook",
        data=b"\xff\xfe=\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert raw.status_code in (400, 403)
