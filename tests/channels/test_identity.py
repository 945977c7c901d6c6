"""Channel identities in the actions: a proven sender counts only through a verified CDP link.

Demo data: C-1005 (Marcus) has the verified phone +15551230005 and the verified Messenger PSID
24117654321098765; C-1001 (Ana) has the phone +15551230001, not verified.
"""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.greeting import ActionGreet
from actions.identity import identified_profile, verified_customer_id
from actions.repeat_order import ActionProposeRepeatOrder
from actions.session import ActionSessionStart
from cdp.db import transaction
from cdp.identity_token import mint_token
from tests.channels.conftest import SECRET

pytestmark = pytest.mark.usefixtures("demo_cdp")

MARCUS_PHONE, MARCUS_PSID, ANA_PHONE = "+15551230005", "24117654321098765", "+15551230001"


def identity(kind: str, value: str, proven: bool = True) -> dict[str, Any]:
    return {"channel_identity": {"type": kind, "value": value, "proven": proven}}


def tracker_for(sender_id: str, metadata: dict[str, Any], channel: str) -> Tracker:
    latest = {"text": "hi", "intent": {}, "entities": [], "message_id": "m-1", "metadata": metadata}
    events = [{"event": "user", "text": "hi", "input_channel": channel, "metadata": metadata}]
    slots = {"session_started_metadata": metadata}
    return Tracker(sender_id, slots, latest, events, False, None, {}, "action_listen")


def customer_of(demo_cdp: Any, tracker: Tracker) -> str | None:
    ref = verified_customer_id(tracker)
    with transaction(demo_cdp) as session:
        profile = identified_profile(session, ref)
        return profile.customer_id if profile else None


@pytest.mark.parametrize(
    ("sender", "metadata", "channel", "customer"),
    [
        (MARCUS_PHONE, identity("twilio_sender", MARCUS_PHONE), "twilio", "C-1005"),
        (f"whatsapp:{MARCUS_PHONE}", identity("twilio_sender", MARCUS_PHONE), "whatsapp", "C-1005"),
        (MARCUS_PSID, identity("messenger_psid", MARCUS_PSID), "facebook", "C-1005"),
        # Ana's phone is on her profile but not verified: an SMS from it proves nothing.
        (ANA_PHONE, identity("twilio_sender", ANA_PHONE), "twilio", None),
        ("+15559990000", identity("twilio_sender", "+15559990000"), "twilio", None),
        ("999000111222", identity("messenger_psid", "999000111222"), "facebook", None),
        # Not proven by the channel, or proven for another conversation, or a type no channel
        # can prove: all anonymous.
        (MARCUS_PHONE, identity("twilio_sender", MARCUS_PHONE, proven=False), "twilio", None),
        ("someone-else", identity("twilio_sender", MARCUS_PHONE), "rest", None),
        (MARCUS_PHONE, identity("phone", MARCUS_PHONE), "rest", None),
        (MARCUS_PHONE, identity("rest_sender", MARCUS_PHONE), "rest", None),
        (MARCUS_PHONE, identity("socketio_session", MARCUS_PHONE), "socketio", None),
        (MARCUS_PHONE, {"channel_identity": "twilio_sender:+15551230005"}, "rest", None),
        ("C-1005", {}, "rest", None),
    ],
)
def test_who_a_channel_identity_resolves_to(
    demo_cdp: Any, sender: str, metadata: dict[str, Any], channel: str, customer: str | None
) -> None:
    assert customer_of(demo_cdp, tracker_for(sender, metadata, channel)) == customer


def test_a_token_still_wins_over_a_channel_identity(demo_cdp: Any) -> None:
    metadata = {
        **identity("messenger_psid", MARCUS_PSID),
        "customer_token": mint_token("C-1002", SECRET, 600),
    }
    assert customer_of(demo_cdp, tracker_for(MARCUS_PSID, metadata, "facebook")) == "C-1002"


async def test_an_sms_from_a_verified_phone_is_greeted_and_served_by_name() -> None:
    tracker = tracker_for(MARCUS_PHONE, identity("twilio_sender", MARCUS_PHONE), "twilio")
    session_events = await ActionSessionStart().run(CollectingDispatcher(), tracker, {})
    slots = {e["name"]: e["value"] for e in session_events if e["event"] == "slot"}
    assert slots["customer_id"] == "C-1005" and slots["first_name"] == "Marcus"
    dispatcher = CollectingDispatcher()
    await ActionProposeRepeatOrder().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_confirm_repeat_order"


async def test_an_unverified_psid_gets_nothing_personal() -> None:
    tracker = tracker_for("999000111222", identity("messenger_psid", "999000111222"), "facebook")
    dispatcher = CollectingDispatcher()
    assert await ActionGreet().run(dispatcher, tracker, {}) is not None
    assert dispatcher.messages[0]["response"] == "utter_greet_visitor"
    dispatcher = CollectingDispatcher()
    await ActionProposeRepeatOrder().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_repeat_order_anonymous"
    assert "order_id" not in dispatcher.messages[0]
