"""One-time-code verification over the real connectors (HTTP, signed like Twilio and
Messenger sign), the real action server and Rasa: codes read from the development outbox
with `python -m cdp outbox`, as a developer would.

Demo data: Ben (C-1002) has the phone +15551230002 and the email ben.okafor@example.com on
file, neither verified, and past orders; Ana (C-1001) likewise with +15551230001 and
ana.diaz@example.com. Each test uses its own conversations; at most three codes go to one
contact per hour, so each contact is used by one test.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import subprocess
from datetime import timedelta
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy import select, update

from cdp import clock
from cdp.db import make_engine, transaction
from cdp.events.models import Event
from cdp.identities.models import Identity, IdentityType
from cdp.orders.models import Order
from cdp.verification.models import CodeState, VerificationCode
from tests.channels.stack import SMS_NUMBER, ChannelStack
from tools.paths import ACTIONS_PYTHON, REPO

pytestmark = pytest.mark.e2e

BEN_PHONE, BEN_EMAIL = "+15551230002", "ben.okafor@example.com"
ANA_EMAIL = "ana.diaz@example.com"
MARCUS_PSID, MARCUS_PHONE = "24117654321098765", "+15551230005"
CODE = re.compile(r"\b(\d{6})\b")
# What nobody unverified may see: names, addresses, order ids, totals, contacts on file.
PERSONAL = (
    "Ana",
    "Ben",
    "Marcus",
    "Diaz",
    "Okafor",
    "Elm St",
    "Springfield",
    "Congress Ave",
    "Austin",
    "Alberta",
    "Portland",
    "O-50",
    "Total",
    "$",
    "ana.diaz",
    "ben.okafor",
    "marcus.lee",
    "5551230",
)


def assert_nothing_personal(said: str) -> None:
    leaked = [marker for marker in PERSONAL if marker in said]
    assert not leaked, f"{leaked} in {said!r}"


def outbox_code(channels: ChannelStack, recipient: str) -> str | None:
    """The latest code the development sender wrote for this phone or email, via the CLI."""
    result = subprocess.run(
        [str(ACTIONS_PYTHON), "-m", "cdp", "outbox", "--to", recipient, "--json"],
        cwd=REPO,
        env=channels.settings.environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return CODE.search(rows[-1]["body"]).group(1) if rows else None


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# Channels: one turn each, returning everything the bot said in it ------------------------


def sms(channels: ChannelStack, phone: str, text: str, replies: int = 1) -> str:
    before = len(channels.texts_to(phone))
    form = {
        "From": phone,
        "To": SMS_NUMBER,
        "Body": text,
        "MessageSid": "SM" + secrets.token_hex(16),
        "NumMedia": "0",
    }
    assert channels.twilio_post(form).status_code == 200
    texts = channels.wait_texts(phone, before + replies)
    return "\n".join(t["Body"] for t in texts[before:])


def messenger(channels: ChannelStack, psid: str, text: str, replies: int = 1) -> str:
    before = len(channels.graph_sends(psid))
    event = {
        "sender": {"id": psid},
        "recipient": {"id": "PAGE"},
        "timestamp": 1700000000000,
        "message": {"mid": f"m_{secrets.token_hex(8)}", "text": text},
    }
    body = json.dumps({"object": "page", "entry": [{"id": "PAGE", "messaging": [event]}]})
    assert channels.messenger_post(body.encode()).status_code == 200
    messages = channels.wait_graph(psid, before + replies)[before:]
    parts = []
    for message in messages:
        template = message.get("attachment", {}).get("payload", {})
        parts.append(message.get("text") or template.get("text", ""))
        parts.extend(b["title"] for b in template.get("buttons", []))
        parts.extend(q["title"] for q in message.get("quick_replies", []))
    return "\n".join(parts)


def rest(channels: ChannelStack, sender: str, text: str, **extra: Any) -> str:
    reply = requests.post(
        f"{channels.settings.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text, **extra},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return "\n".join(m.get("text", "") for m in reply.json())


def psid() -> str:
    return str(10**16 + secrets.randbelow(10**16))


# The flows ----------------------------------------------------------------------------------


def test_an_order_made_over_sms_is_served_on_messenger_once_the_psid_is_verified(
    channels: ChannelStack,
) -> None:
    # 1. SMS from Ben's phone, on file but not verified: nothing personal, an offer to verify.
    said = sms(channels, BEN_PHONE, "reorder my last order")
    assert "can't tell whose account this number belongs to" in said
    assert "1. Verify me" in said
    assert_nothing_personal(said)
    # 2. "1" presses "Verify me"; the code goes to the phone itself (the outbox in tests).
    said = sms(channels, BEN_PHONE, "1")
    assert "email address or phone number on your Northwind Corner account" in said
    said = sms(channels, BEN_PHONE, "+1 555 123 0002", replies=2)
    assert "If the number ending in 0002 is on a Northwind Corner account" in said
    code = outbox_code(channels, BEN_PHONE)
    said = sms(channels, BEN_PHONE, code)
    assert "Thanks Ben, you're verified! I'll recognise this number from now on." in said
    # 3. Now the number is Ben's: repeat the last order over SMS.
    said = sms(channels, BEN_PHONE, "1")  # "Repeat my last order"
    assert "Your last order, O-5011" in said
    said = sms(channels, BEN_PHONE, "1")  # "Yes, order again"
    placed = re.search(r"I've placed order (O-[A-Z0-9-]+)", said)
    assert placed, said
    sms_order = placed.group(1)
    # 4. Messenger, a PSID nobody linked: nothing personal until verified by code.
    ben_psid = psid()
    said = messenger(channels, ben_psid, "/repeat_order")
    assert "isn't linked to a Northwind Corner account" in said and "Verify me" in said
    assert_nothing_personal(said)
    said = messenger(channels, ben_psid, "/verify_identity")
    assert "To link this Messenger account" in said
    said = messenger(channels, ben_psid, BEN_EMAIL, replies=2)
    assert "If b***@example.com is on a Northwind Corner account" in said
    code = outbox_code(channels, BEN_EMAIL)
    said = messenger(channels, ben_psid, other_code(code), replies=2)
    assert "That code isn't right. You can try 4 more times." in said
    said = messenger(channels, ben_psid, code)
    assert "Thanks Ben, you're verified! This Messenger account is now linked" in said
    # 5. One profile: the order placed over SMS is Ben's last order on Messenger too.
    said = messenger(channels, ben_psid, "/repeat_order")
    assert f"Your last order, {sms_order}" in said
    # 6. The CDP recorded both verifications and the order with their channels.
    engine = make_engine(channels.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            events = session.scalars(
                select(Event).where(
                    Event.customer_id == "C-1002", Event.type == "identity_verified"
                )
            ).all()
            order = session.get(Order, sms_order)
    finally:
        engine.dispose()
    assert sorted(e.channel for e in events) == ["facebook", "twilio"]
    assert order.customer_id == "C-1002" and order.channel == "twilio"


def test_wrong_then_expired_then_a_new_code_over_rest(channels: ChannelStack) -> None:
    sender = f"rest-verify-{secrets.token_hex(6)}"
    said = rest(channels, sender, "reorder my last order")
    assert "I can't see who you are yet" in said
    assert_nothing_personal(said)
    assert "What's the email address or phone number" in rest(channels, sender, "verify me")
    said = rest(channels, sender, f"it's {ANA_EMAIL}")
    assert "If a***@example.com is on a Northwind Corner account" in said
    assert "type the 6-digit code" in said
    code = outbox_code(channels, ANA_EMAIL)
    assert "You can try 4 more times" in rest(channels, sender, other_code(code))
    assert "A code is 6 digits" in rest(channels, sender, "12345")
    # Ten minutes later (moved in the database: the servers run the real clock).
    engine = make_engine(channels.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            session.execute(
                update(VerificationCode)
                .where(
                    VerificationCode.requester_value == sender,
                    VerificationCode.state == CodeState.PENDING,
                )
                .values(expires_at=clock.utcnow() - timedelta(seconds=1))
            )
    finally:
        engine.dispose()
    said = rest(channels, sender, code)
    assert "That code has expired. Shall I send a new one?" in said
    rest(channels, sender, "/verify_identity")
    rest(channels, sender, ANA_EMAIL)
    fresh = outbox_code(channels, ANA_EMAIL)
    assert fresh is not None
    assert "Thanks Ana, you're verified!" in rest(channels, sender, fresh)
    # Replaying the used code: nothing pending any more.
    rest(channels, sender, "/verify_identity")  # already verified now
    said = rest(channels, sender, "same as last time please")
    assert "Your last order, O-" in said and "Shall I place the same order again?" in said


def test_a_contact_not_on_file_gets_the_same_answer_and_no_code(channels: ChannelStack) -> None:
    on_file, stranger = f"rest-on-file-{secrets.token_hex(4)}", f"rest-x-{secrets.token_hex(4)}"
    nobody = "nobody.here@example.org"
    for sender in (on_file, stranger):
        rest(channels, sender, "/verify_identity")
    # Ana's phone number: on file (no other test sends a code to it).
    known = rest(channels, on_file, "+1 555 123 0001")
    unknown = rest(channels, stranger, nobody)
    assert known.replace("the number ending in 0001", "X") == unknown.replace(
        "n***@example.org", "X"
    )
    assert outbox_code(channels, nobody) is None
    assert outbox_code(channels, "+15551230001") is not None
    assert "You can try 4 more times" in rest(channels, stranger, "123456")


def test_a_used_code_replayed_from_another_conversation_links_nothing(
    channels: ChannelStack,
) -> None:
    owner, thief = psid(), psid()
    messenger(channels, owner, "/verify_identity")
    messenger(channels, owner, "marcus.lee@example.com", replies=2)
    code = outbox_code(channels, "marcus.lee@example.com")
    assert "Thanks Marcus" in messenger(channels, owner, code)
    # The thief saw the code: from another chat it is checked against that chat's own code.
    messenger(channels, thief, "/verify_identity")
    messenger(channels, thief, "marcus.lee@example.com", replies=2)
    said = messenger(channels, thief, code, replies=2)
    assert "That code isn't right. You can try 4 more times." in said
    messenger(channels, thief, "/deny")
    assert_nothing_personal(messenger(channels, thief, "/repeat_order"))
    engine = make_engine(channels.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            linked = session.scalars(
                select(Identity.value).where(Identity.type == IdentityType.MESSENGER_PSID)
            ).all()
    finally:
        engine.dispose()
    assert owner in linked and thief not in linked


# Attackers: every channel, trying to read someone else's address, orders or offers ----------


# Ends with "/deny", which leaves the form: other tests reuse some of these conversation ids.
ASKS = (
    "same as last time please",
    "/repeat_order",
    "what's my address",
    "/verify_identity",
    "/deny",
)


@pytest.mark.parametrize(
    "metadata",
    [
        {"channel_identity": {"type": "twilio_sender", "value": MARCUS_PHONE, "proven": True}},
        {"channel_identity": {"type": "messenger_psid", "value": MARCUS_PSID, "proven": True}},
        {"channel_identity": {"type": "rest_sender", "value": MARCUS_PHONE, "proven": True}},
        {"customer_token": "forged.token.value", "customer_id": "C-1005"},
    ],
)
def test_rest_with_a_forged_sender_or_metadata_gets_nothing(
    channels: ChannelStack, metadata: dict[str, Any]
) -> None:
    for sender in (MARCUS_PHONE, MARCUS_PSID, "C-1005"):
        for text in ASKS:
            said = rest(channels, sender, text, metadata=metadata, input_channel="facebook")
            assert_nothing_personal(said)


def test_messenger_with_an_unlinked_psid_gets_nothing(channels: ChannelStack) -> None:
    attacker = psid()
    # Some asks get no answer at all (no rule for them yet): wait only for the last one's,
    # which comes after every earlier one (turns of a sender run in order).
    for text in ASKS[:-1]:
        messenger(channels, attacker, text, replies=0)
    messenger(channels, attacker, ASKS[-1])
    # Claiming Marcus' phone sends him a code the attacker can't read; guesses fail.
    messenger(channels, attacker, "/verify_identity")
    messenger(channels, attacker, "+1 555 123 0005", replies=2)
    for guess in ("000000", "123456", "999999"):
        assert "That code isn't right" in messenger(channels, attacker, guess, replies=2)
    messenger(channels, attacker, "/deny")
    messenger(channels, attacker, "/repeat_order")
    transcript = channels.graph_sends(attacker)
    assert_nothing_personal(json.dumps(transcript, ensure_ascii=False))


def test_sms_from_an_unverified_number_gets_nothing(channels: ChannelStack) -> None:
    attacker = "+1555" + str(2_000_000 + secrets.randbelow(7_000_000))
    for text in ASKS[:-1]:
        sms(channels, attacker, text, replies=0)
    sms(channels, attacker, ASKS[-1])
    transcript = "\n".join(t["Body"] for t in channels.texts_to(attacker))
    assert "can't tell whose account this number belongs to" in transcript
    assert_nothing_personal(transcript)


def test_web_chat_without_a_token_gets_nothing_even_with_forged_metadata(
    channels: ChannelStack,
) -> None:
    received: queue.Queue[Any] = queue.Queue()
    confirmed: queue.Queue[str] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("bot_uttered", received.put)
    client.on("session_confirm", confirmed.put)
    client.connect(
        channels.settings.rasa_url,
        socketio_path="/socket.io",
        transports=["polling"],
        wait_timeout=10,
    )
    try:
        session = secrets.token_hex(16)
        client.emit("session_request", {"session_id": session})
        assert confirmed.get(timeout=10) == session
        forged = {
            "channel_identity": {"type": "socketio_session", "value": session, "proven": True},
            "customer_id": "C-1005",
        }
        for text in ASKS:
            client.emit(
                "user_uttered", {"message": text, "session_id": session, "metadata": forged}
            )
        said: list[str] = []
        # Some asks get no answer (no rule for them yet); the last one always does.
        while "OK, I've stopped" not in "".join(said):
            said.append(received.get(timeout=90).get("text", ""))
        assert "I can't see who you are yet" in "\n".join(said)
        assert_nothing_personal("\n".join(said))
    finally:
        client.disconnect()
