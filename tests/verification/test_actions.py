"""The verification form as the action server runs it, turn by turn, against the demo CDP
(SQLite and PostgreSQL): what the customer is told, and what they can see afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, func, select, update

from actions import cdp_access
from actions.human import ActionContactHuman
from actions.repeat_order import ActionPlaceRepeatOrder, ActionProposeRepeatOrder
from actions.verification import (
    ActionFinishVerification,
    ValidateVerificationForm,
    find_code,
    find_contact,
    masked_contact,
)
from cdp.clock import utcnow
from cdp.db import transaction
from cdp.handoff.service import open_handoff
from cdp.identities.models import Identity, IdentityType
from cdp.orders.models import Order
from cdp.verification.models import TargetType
from cdp.verification.senders import outbox_messages
from tools.paths import REPO

DOMAIN = yaml.safe_load((REPO / "domain.yml").read_text())
FORM_SLOTS = DOMAIN["forms"]["verification_form"]["required_slots"]
PROVEN = {"twilio_sender", "messenger_psid"}
ANA_EMAIL, ANA_PHONE, MARCUS_PSID = "ana.diaz@example.com", "+15551230001", "24117654321098765"
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def demo_cdp(demo: Engine, cdp_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The demo customers, which the actions' engine points at; codes go to the outbox."""
    monkeypatch.setenv("CDP_DATABASE_URL", cdp_url)
    monkeypatch.setenv("CDP_IDENTITY_SECRET", "verification-action-tests-secret-0123")
    monkeypatch.delenv("VERIFICATION_SMS_SENDER", raising=False)
    cdp_access.cdp_engine.cache_clear()
    yield demo
    cdp_access.cdp_engine().dispose()
    cdp_access.cdp_engine.cache_clear()


class Conversation:
    """One conversation on one channel, with the form run the way Rasa runs it."""

    def __init__(self, sender: str, kind: str, channel: str, metadata: Any = None) -> None:
        self.sender, self.kind, self.channel = sender, kind, channel
        self.metadata = metadata
        self.slots: dict[str, Any] = {}
        self.active = False

    def tracker(self, text: str, intent: str) -> Tracker:
        metadata = self.metadata
        if metadata is None:
            proven = self.kind in PROVEN
            metadata = {
                "channel_identity": {"type": self.kind, "value": self.sender, "proven": proven}
            }
        latest = {
            "text": text,
            "intent": {"name": intent, "confidence": 1.0},
            "entities": [],
            "metadata": metadata,
        }
        events = [
            {"event": "user", "text": text, "input_channel": self.channel, "metadata": metadata}
        ]
        loop = {"name": "verification_form"} if self.active else {}
        return Tracker(
            self.sender, dict(self.slots), latest, events, False, None, loop, "action_listen"
        )

    async def say(self, text: str, intent: str = "inform_code") -> list[dict[str, Any]]:
        """The messages sent back: the validation's, then the form's question or the end."""
        dispatcher = CollectingDispatcher()
        events = await ValidateVerificationForm().run(
            dispatcher, self.tracker(text, intent), DOMAIN
        )
        said = list(dispatcher.messages)
        slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
        self.slots.update(slots)
        if "requested_slot" in slots:
            next_slot = slots["requested_slot"]
        else:  # Rasa's own choice: the first empty required slot
            next_slot = next((s for s in FORM_SLOTS if self.slots.get(s) is None), None)
        self.active = next_slot is not None
        self.slots["requested_slot"] = next_slot
        if next_slot:
            said.append({"response": f"ask:{next_slot}"})
            return said
        dispatcher = CollectingDispatcher()
        finished = await ActionFinishVerification().run(
            dispatcher, self.tracker(text, intent), DOMAIN
        )
        self.slots.update({e["name"]: e["value"] for e in finished if e["event"] == "slot"})
        return said + dispatcher.messages

    async def propose_repeat(self) -> dict[str, Any]:
        dispatcher = CollectingDispatcher()
        tracker = self.tracker("same as last time", "repeat_order")
        await ActionProposeRepeatOrder().run(dispatcher, tracker, DOMAIN)
        return dispatcher.messages[0]


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["response"] for m in messages]


def outbox_code(engine: Engine, recipient: str) -> str:
    with transaction(engine) as session:
        return CODE.search(outbox_messages(session, recipient)[-1].body).group(1)


async def test_an_unlinked_psid_verifies_by_email_and_then_sees_its_orders(
    demo_cdp: Engine,
) -> None:
    chat = Conversation("31000000000000077", "messenger_psid", "facebook")
    assert (await chat.propose_repeat())["response"] == "utter_repeat_order_anonymous"
    assert responses(await chat.say("/verify_identity", "verify_identity")) == [
        "ask:verification_contact"
    ]
    said = await chat.say("it's Ana.Diaz@example.com", "inform_contact")
    assert responses(said) == ["utter_verification_code_sent", "ask:verification_code"]
    assert said[0]["masked_contact"] == "a***@example.com" and said[0]["minutes"] == 10
    assert ANA_EMAIL not in str(chat.slots)
    code = outbox_code(demo_cdp, ANA_EMAIL)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    said = await chat.say(wrong)
    assert responses(said) == ["utter_verification_code_wrong", "ask:verification_code"]
    assert said[0]["attempts_left"] == 4
    said = await chat.say("twelve")
    assert responses(said) == ["utter_verification_code_malformed", "ask:verification_code"]
    said = await chat.say(f"the code is {code[:3]} {code[3:]}")
    assert responses(said) == ["utter_verification_done"]
    assert said[0]["first_name"] == "Ana" and chat.slots["customer_id"] == "C-1001"
    assert chat.slots["verification_status"] is None  # cleared for the next time
    proposal = await chat.propose_repeat()
    assert proposal["response"] == "utter_confirm_repeat_order"
    assert proposal["order_id"].startswith("O-")


async def test_an_unverified_channel_identity_cannot_place_a_pending_repeat(
    demo_cdp: Engine,
) -> None:
    chat = Conversation("rest-dev-46", "rest_sender", "rest")
    chat.slots["reorder_source_order_id"] = "O-5007"  # Ana's, as if proposed earlier
    dispatcher = CollectingDispatcher()
    await ActionPlaceRepeatOrder().run(dispatcher, chat.tracker("yes", "affirm"), DOMAIN)
    assert responses(dispatcher.messages) == ["utter_repeat_order_anonymous"]
    with transaction(demo_cdp) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 11


async def test_a_handoff_from_a_psid_verified_by_code_carries_the_customer(
    demo_cdp: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HANDOFF_CONSOLE_URL", raising=False)
    chat = Conversation("31000000000000080", "messenger_psid", "facebook")
    await chat.say("verify me", "verify_identity")
    await chat.say(ANA_EMAIL, "inform_contact")
    await chat.say(outbox_code(demo_cdp, ANA_EMAIL))
    dispatcher = CollectingDispatcher()
    await ActionContactHuman().run(dispatcher, chat.tracker("a person please", "human_handoff"), {})
    with transaction(demo_cdp) as session:
        handoff = open_handoff(session, chat.sender)
        assert handoff.customer_id == "C-1001"
        assert handoff.package["customer"]["name"] == "Ana Diaz"


async def test_a_contact_not_on_file_gets_the_same_words_and_nothing_is_sent(
    demo_cdp: Engine,
) -> None:
    on_file = Conversation("31000000000000078", "messenger_psid", "facebook")
    stranger = Conversation("31000000000000079", "messenger_psid", "facebook")
    await on_file.say("verify me", "verify_identity")
    await stranger.say("verify me", "verify_identity")
    known = await on_file.say(ANA_PHONE, "inform_contact")
    unknown = await stranger.say("+1 555 999 0001", "inform_contact")
    assert responses(known) == responses(unknown)
    assert known[0]["masked_contact"] == "the number ending in 0001"
    assert unknown[0]["masked_contact"] == "the number ending in 0001"
    with transaction(demo_cdp) as session:
        assert [m.recipient for m in outbox_messages(session)] == [ANA_PHONE]
    # Guessing at the decoy counts down exactly like a real code.
    said = await stranger.say("123456")
    assert responses(said) == ["utter_verification_code_wrong", "ask:verification_code"]


async def test_the_contact_can_come_with_the_request(demo_cdp: Engine) -> None:
    chat = Conversation("+15551230001", "twilio_sender", "twilio")
    said = await chat.say("its me ana, my number is +1 555 123 0001", "verify_identity")
    assert responses(said) == ["utter_verification_code_sent", "ask:verification_code"]
    said = await chat.say(outbox_code(demo_cdp, ANA_PHONE))
    assert responses(said) == ["utter_verification_done"]
    assert (await chat.propose_repeat())["response"] == "utter_confirm_repeat_order"


async def test_a_verified_customer_is_told_so_and_nothing_is_sent(demo_cdp: Engine) -> None:
    chat = Conversation(MARCUS_PSID, "messenger_psid", "facebook")
    said = await chat.say("verify me, marcus.lee@example.com", "verify_identity")
    assert responses(said) == ["utter_verification_already"]
    assert said[0]["first_name"] == "Marcus"
    with transaction(demo_cdp) as session:
        assert outbox_messages(session) == []


async def test_a_bad_contact_is_asked_again(demo_cdp: Engine) -> None:
    chat = Conversation("rest-dev-42", "rest_sender", "rest")
    await chat.say("/verify_identity", "verify_identity")
    for typo in ("my name is ana", "555 123 0001", "ana@example"):
        said = await chat.say(typo, "inform_contact")
        assert responses(said) == ["utter_verification_contact_invalid", "ask:verification_contact"]


async def test_out_of_tries_ends_the_form_and_offers_a_new_code(demo_cdp: Engine) -> None:
    chat = Conversation("3a5f0c1e9b7d4e2fa6c8b0d1e3f5a7c9", "socketio_session", "socketio")
    await chat.say("verify me", "verify_identity")
    await chat.say(ANA_EMAIL, "inform_contact")
    code = outbox_code(demo_cdp, ANA_EMAIL)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        await chat.say(wrong)
    assert responses(await chat.say(wrong)) == ["utter_verification_exhausted"]
    assert (await chat.propose_repeat())["response"] == "utter_repeat_order_anonymous"


@pytest.mark.parametrize(
    "metadata",
    [
        # Another conversation's identity, proven or not: not this conversation's.
        {"channel_identity": {"type": "messenger_psid", "value": MARCUS_PSID, "proven": True}},
        {"channel_identity": {"type": "twilio_sender", "value": "+15551230005", "proven": True}},
        {"channel_identity": {"type": "customer_id", "value": "C-1005", "proven": True}},
        {},
    ],
)
async def test_a_forged_or_missing_channel_identity_cannot_verify(
    demo_cdp: Engine, metadata: dict[str, Any]
) -> None:
    chat = Conversation("rest-attacker", "rest_sender", "rest", metadata=metadata)
    said = await chat.say(f"verify me {ANA_EMAIL}", "verify_identity")
    assert responses(said) == ["utter_verification_unavailable"]
    with transaction(demo_cdp) as session:
        assert outbox_messages(session) == []


async def test_asking_for_a_person_is_not_read_as_an_answer(demo_cdp: Engine) -> None:
    chat = Conversation("rest-dev-43", "rest_sender", "rest")
    await chat.say("verify me", "verify_identity")
    tracker = chat.tracker("actually, a person please", "human_handoff")
    events = await ValidateVerificationForm().run(CollectingDispatcher(), tracker, DOMAIN)
    assert [e for e in events if e["name"] != "requested_slot"] == []


async def test_asking_for_a_new_code_at_the_code_step_starts_again(demo_cdp: Engine) -> None:
    chat = Conversation("rest-dev-45", "rest_sender", "rest")
    await chat.say("verify me", "verify_identity")
    await chat.say(ANA_EMAIL, "inform_contact")
    assert responses(await chat.say("send me a new code", "verify_identity")) == [
        "ask:verification_contact"
    ]
    said = await chat.say(ANA_EMAIL, "inform_contact")
    assert responses(said) == ["utter_verification_code_sent", "ask:verification_code"]
    said = await chat.say(outbox_code(demo_cdp, ANA_EMAIL), "verify_identity")
    assert responses(said) == ["utter_verification_done"]


@pytest.mark.parametrize("step", ["contact", "code"])
async def test_no_ends_the_form_at_either_step(demo_cdp: Engine, step: str) -> None:
    chat = Conversation(f"rest-dev-44-{step}", "rest_sender", "rest")
    await chat.say("verify me", "verify_identity")
    if step == "code":
        await chat.say(ANA_EMAIL, "inform_contact")
    assert responses(await chat.say("no, stop", "deny")) == ["utter_verification_cancelled"]
    assert chat.slots["verification_status"] is None and not chat.active


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("it's Ana.Diaz@Example.com thanks", (TargetType.EMAIL, "Ana.Diaz@Example.com")),
        ("call +1 (555) 123-0001 please", (TargetType.PHONE, "+1 (555) 123-0001")),
        ("0044 20 7946 0958", (TargetType.PHONE, "0044 20 7946 0958")),
        ("verify me", None),
        ("code 123", None),
    ],
)
def test_find_contact(text: str, found: tuple[TargetType, str] | None) -> None:
    assert find_contact(text) == found


def test_masks_and_codes() -> None:
    assert masked_contact(TargetType.EMAIL, "ana.diaz@example.com") == "a***@example.com"
    assert masked_contact(TargetType.PHONE, "+15551230001") == "the number ending in 0001"
    assert find_code("my code is 123 456.") == "123 456"
    assert find_code("1234567") == "1234567"


def _proven_days_ago(engine: Engine, kind: IdentityType, value: str, days: int) -> None:
    with transaction(engine) as session:
        session.execute(
            update(Identity)
            .where(Identity.type == kind, Identity.value == value)
            .values(verified_at=utcnow() - timedelta(days=days))
        )


async def test_a_code_linked_web_session_lasts_verified_session_days(
    demo_cdp: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser left signed in on a shared computer stops serving its owner's data; a new
    code links it again. Channels that prove the sender (Messenger, SMS) never expire."""
    session_id = "5e1b7c9d0a2f4e6b8c1d3f5a7b9c0e2d"
    chat = Conversation(session_id, "socketio_session", "socketio")
    await chat.say("verify me", "verify_identity")
    await chat.say(ANA_EMAIL, "inform_contact")
    assert responses(await chat.say(outbox_code(demo_cdp, ANA_EMAIL))) == [
        "utter_verification_done"
    ]
    assert (await chat.propose_repeat())["response"] == "utter_confirm_repeat_order"

    _proven_days_ago(demo_cdp, IdentityType.SOCKETIO_SENDER, session_id, 29)
    assert (await chat.propose_repeat())["response"] == "utter_confirm_repeat_order"
    _proven_days_ago(demo_cdp, IdentityType.SOCKETIO_SENDER, session_id, 31)
    assert (await chat.propose_repeat())["response"] == "utter_repeat_order_anonymous"
    monkeypatch.setenv("VERIFIED_SESSION_DAYS", "45")
    assert (await chat.propose_repeat())["response"] == "utter_confirm_repeat_order"
    monkeypatch.delenv("VERIFIED_SESSION_DAYS")

    # Expired, the session is asked to verify again; the new code counts from now.
    chat.slots, chat.active = {}, False
    said = await chat.say("verify me", "verify_identity")
    assert responses(said) == ["ask:verification_contact"]
    await chat.say(ANA_EMAIL, "inform_contact")
    await chat.say(outbox_code(demo_cdp, ANA_EMAIL))
    assert (await chat.propose_repeat())["response"] == "utter_confirm_repeat_order"

    marcus = Conversation(MARCUS_PSID, "messenger_psid", "facebook")
    _proven_days_ago(demo_cdp, IdentityType.MESSENGER_PSID, MARCUS_PSID, 400)
    assert (await marcus.propose_repeat())["response"] == "utter_confirm_repeat_order"
