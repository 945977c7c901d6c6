"""The customer-flow actions against the real demo CDP, on SQLite and PostgreSQL: opener,
contact details, marketing consent, offers, troubleshooting, satisfaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, func, select

from actions.greeting import ActionGreet, ActionOpenerAccepted, ActionOpenerDeclined
from actions.offers import ActionAcceptOffer, ActionDeclineOffer, ActionPresentOffer
from actions.profile_capture import ActionManageSubscription, ActionSaveContact
from actions.profile_forms import ValidateContactForm, contact_field_in, parse_email, parse_phone
from actions.satisfaction import (
    ActionFlowAbandoned,
    ActionRecordSatisfaction,
    ValidateSatisfactionForm,
    parse_rating,
)
from actions.session import ActionSessionStart
from actions.troubleshooting import (
    ActionAskStepWorked,
    ActionTroubleshootResult,
    ValidateTroubleshootForm,
)
from cdp.clock import utcnow
from cdp.consents.models import Consent, ConsentChannel, ConsentPurpose
from cdp.consents.service import has_consent
from cdp.db import transaction
from cdp.errors import InvalidIdentifier
from cdp.events.models import Event, EventIn
from cdp.events.service import events_of_types, record_event
from cdp.identities.models import IdentitySource, IdentityType
from cdp.identities.service import link_identity
from cdp.profiles.models import Profile
from tests.actions.trackers import token_for, tracker

pytestmark = pytest.mark.usefixtures("demo_cdp")

ANA, BEN, CHLOE, DEV, MARCUS, SOFIA = "C-1001", "C-1002", "C-1003", "C-1004", "C-1005", "C-1006"


def slot_values(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def said(dispatcher: CollectingDispatcher) -> list[str]:
    return [message["response"] for message in dispatcher.messages]


def turn(
    text: str,
    customer: str | None = None,
    *,
    intent: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    message_id: str = "m-1",
) -> Tracker:
    """A tracker after one message, with its intent and entities as the NLU found them."""
    result = tracker(text, token_for(customer) if customer else None, slots=slots)
    result.latest_message["intent"] = {"name": intent} if intent else {}
    result.latest_message["entities"] = entities or []
    result.latest_message["message_id"] = message_id
    return result


def add_event(engine: Engine, customer_id: str, kind: str, ago: timedelta, **properties) -> None:
    with transaction(engine) as session:
        record_event(
            session,
            EventIn(
                f"test-{kind}-{customer_id}", customer_id, kind, utcnow() - ago, "web", properties
            ),
        )


def count(engine: Engine, model: type, **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    with transaction(engine) as session:
        return session.scalar(query)


# Session start and the opener ---------------------------------------------------------------


async def test_session_start_seeds_name_tier_language_and_last_event() -> None:
    events = await ActionSessionStart().run(
        CollectingDispatcher(),
        tracker(text=None, session_metadata={"customer_token": token_for(BEN)}),
        {},
    )
    slots = slot_values(events)
    assert (slots["customer_id"], slots["first_name"]) == (BEN, "Ben")
    assert (slots["membership_tier"], slots["language"]) == ("plus", "en")
    assert slots["last_event"] == "payment_failed"


@pytest.mark.parametrize(
    ("customer", "kind", "ago", "response", "topic"),
    [
        (BEN, "payment_failed", timedelta(hours=2), "utter_greet_payment_failed", "payment_failed"),
        (DEV, "password_reset", timedelta(hours=5), "utter_greet_password_reset", "password_reset"),
        (SOFIA, "payment_failed", timedelta(days=30), "utter_greet_customer", None),
        (ANA, "order_shipped", timedelta(hours=1), "utter_greet_customer", None),
    ],
)
async def test_the_opener_asks_about_a_recent_event(
    demo_cdp: Engine, customer: str, kind: str, ago: timedelta, response: str, topic: str | None
) -> None:
    # Each customer's newest event is the one added here (Sofia and Ana have none in the seed).
    add_event(demo_cdp, customer, kind, ago)
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, turn("hi", customer), {})
    assert said(dispatcher) == [response]
    assert dispatcher.messages[0]["first_name"]
    assert slot_values(events)["opener_topic"] == topic


async def test_an_anonymous_visitor_gets_a_neutral_greeting_without_opener() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, turn("hi"), {})
    assert said(dispatcher) == ["utter_greet_visitor"]
    slots = slot_values(events)
    assert slots["opener_topic"] is None and slots["customer_id"] is None


async def test_yes_to_the_payment_opener_tells_the_failed_payment() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionOpenerAccepted().run(
        dispatcher, turn("yes", BEN, slots={"opener_topic": "payment_failed"}), {}
    )
    message = dispatcher.messages[0]
    assert message["response"] == "utter_payment_failed_details"
    assert (message["order_id"], message["amount"], message["card_last4"]) == (
        "O-5011",
        "$61.75",
        "4242",
    )
    assert slot_values(events) == {"opener_topic": None}


async def test_the_payment_details_need_a_verified_customer() -> None:
    dispatcher = CollectingDispatcher()
    await ActionOpenerAccepted().run(
        dispatcher, turn("yes", slots={"opener_topic": "payment_failed"}), {}
    )
    assert said(dispatcher) == ["utter_payment_failed_generic"]
    assert "order_id" not in dispatcher.messages[0]


async def test_yes_to_the_password_opener_and_no_to_any_opener() -> None:
    dispatcher = CollectingDispatcher()
    await ActionOpenerAccepted().run(
        dispatcher, turn("yes", DEV, slots={"opener_topic": "password_reset"}), {}
    )
    assert said(dispatcher) == ["utter_account_help"]
    dispatcher = CollectingDispatcher()
    events = await ActionOpenerDeclined().run(
        dispatcher, turn("no", BEN, slots={"opener_topic": "payment_failed"}), {}
    )
    assert said(dispatcher) == ["utter_opener_declined"]
    assert slot_values(events) == {"opener_topic": None}


# Contact form and capture -------------------------------------------------------------------


def test_parsers_normalise_or_say_what_is_wrong() -> None:
    assert parse_email("sure, it's Ana.D@Example.NET.") == "ana.d@example.net"
    assert parse_phone("call me on +44 7700 900123 please") == "+447700900123"
    assert parse_phone("0044 (7700) 900-123") == "+447700900123"
    with pytest.raises(InvalidIdentifier, match="no email address"):
        parse_email("my new one")
    with pytest.raises(InvalidIdentifier, match="not an international number"):
        parse_phone("555 0199 22")
    assert contact_field_in("change my mobile", []) == "phone"
    assert contact_field_in("x", [{"entity": "email", "value": "a@b.co"}]) == "email"
    assert contact_field_in("update my e-mail", []) == "email"
    assert contact_field_in("hmm", []) is None


async def test_the_contact_form_asks_nothing_of_an_anonymous_visitor() -> None:
    form = ValidateContactForm()
    domain_slots = ["contact_field", "new_email", "new_phone"]
    dispatcher = CollectingDispatcher()
    assert await form.required_slots(domain_slots, dispatcher, turn("update"), {}) == []
    ana = turn("update", ANA)
    assert await form.required_slots(domain_slots, dispatcher, ana, {}) == ["contact_field"]
    ana_phone = turn("update", ANA, slots={"contact_field": "phone"})
    assert await form.required_slots(domain_slots, dispatcher, ana_phone, {}) == [
        "contact_field",
        "new_phone",
    ]


async def test_the_contact_form_extracts_and_validates_each_value() -> None:
    form = ValidateContactForm()
    dispatcher = CollectingDispatcher()
    trigger = turn("my new email is a@b.co", ANA, entities=[{"entity": "email", "value": "a@b.co"}])
    assert await form.extract_contact_field(dispatcher, trigger, {}) == {"contact_field": "email"}
    assert await form.extract_new_email(dispatcher, trigger, {}) == {"new_email": "a@b.co"}
    asked = turn("it's +1 555 123 0042", ANA, slots={"requested_slot": "new_phone"})
    assert await form.extract_new_phone(dispatcher, asked, {}) == {
        "new_phone": "it's +1 555 123 0042"
    }
    assert form.validate_new_phone("it's +1 555 123 0042", dispatcher, asked, {}) == {
        "new_phone": "+15551230042"
    }
    assert form.validate_new_email("ana at home", dispatcher, asked, {}) == {"new_email": None}
    assert form.validate_new_phone("555", dispatcher, asked, {}) == {"new_phone": None}
    unclear = turn("hmm", ANA, slots={"requested_slot": "contact_field"})
    assert await form.extract_contact_field(dispatcher, unclear, {}) == {"contact_field": "hmm"}
    assert form.validate_contact_field("hmm", dispatcher, unclear, {}) == {"contact_field": None}
    assert said(dispatcher) == [
        "utter_invalid_email",
        "utter_invalid_phone",
        "utter_contact_field_unclear",
    ]
    assert dispatcher.messages[0]["value"] == "ana at home"
    leaving = turn("bye", ANA, intent="goodbye", slots={"requested_slot": "new_email"})
    assert await form.extract_new_email(dispatcher, leaving, {}) == {}


async def save(customer: str | None, field: str, value: str, **kwargs: Any) -> tuple[list, dict]:
    slot = "new_email" if field == "email" else "new_phone"
    dispatcher = CollectingDispatcher()
    events = await ActionSaveContact().run(
        dispatcher, turn("ok", customer, slots={"contact_field": field, slot: value}), {}
    )
    return dispatcher.messages, slot_values(events)


async def test_a_new_email_is_saved_unverified_then_unchanged(demo_cdp: Engine) -> None:
    messages, slots = await save(ANA, "email", "ana.new@example.net")
    assert messages[0]["response"] == "utter_contact_saved_unverified"
    assert messages[0]["value"] == "ana.new@example.net"
    assert slots["conversation_outcome"] == "resolved_by_bot"
    assert slots["new_email"] is None and slots["contact_field"] is None
    with transaction(demo_cdp) as session:
        assert session.get(Profile, ANA).email == "ana.new@example.net"
    messages, _ = await save(ANA, "email", "ana.new@example.net")
    assert messages[0]["response"] == "utter_contact_unchanged"


async def test_a_verified_phone_is_kept_and_the_customer_is_told(demo_cdp: Engine) -> None:
    messages, _ = await save(MARCUS, "phone", "+15551230077")
    assert messages[0]["response"] == "utter_contact_kept_verified"
    assert messages[0]["current"] == "+15551230005"
    with transaction(demo_cdp) as session:
        assert session.get(Profile, MARCUS).phone == "+15551230005"


async def test_another_customers_email_and_anonymous_visitors_change_nothing(
    demo_cdp: Engine,
) -> None:
    messages, _ = await save(ANA, "email", "ben.okafor@example.com")
    assert messages[0]["response"] == "utter_contact_in_use"
    messages, slots = await save(None, "email", "someone@example.com")
    assert messages[0]["response"] == "utter_profile_needs_sign_in"
    assert "conversation_outcome" not in slots
    with transaction(demo_cdp) as session:
        assert session.get(Profile, ANA).email == "ana.diaz@example.com"


async def test_a_phone_the_sms_channel_proves_is_saved_verified(demo_cdp: Engine) -> None:
    number = "+15551239999"
    with transaction(demo_cdp) as session:
        link_identity(session, ANA, IdentityType.PHONE, number, True, IdentitySource.IMPORT)
    metadata = {"channel_identity": {"type": "twilio_sender", "value": number, "proven": True}}
    sms = Tracker(
        number,
        {"contact_field": "phone", "new_phone": number},
        {"text": "that one", "intent": {}, "entities": [], "metadata": metadata},
        [{"event": "user", "text": "that one", "input_channel": "twilio", "metadata": metadata}],
        False,
        None,
        {},
        "action_listen",
    )
    dispatcher = CollectingDispatcher()
    await ActionSaveContact().run(dispatcher, sms, {})
    assert said(dispatcher) == ["utter_contact_saved_verified"]
    with transaction(demo_cdp) as session:
        assert session.get(Profile, ANA).phone == number


# Marketing consent -------------------------------------------------------------------------


async def subscription(customer: str | None, choice: str | None, message_id: str = "m-1") -> str:
    dispatcher = CollectingDispatcher()
    events = await ActionManageSubscription().run(
        dispatcher,
        turn(
            "/manage_subscription",
            customer,
            slots={"marketing_choice": choice},
            message_id=message_id,
        ),
        {},
    )
    assert slot_values(events)["marketing_choice"] is None
    return said(dispatcher)[0]


async def test_unsubscribe_is_recorded_once(demo_cdp: Engine) -> None:
    assert await subscription(ANA, None) == "utter_subscription_status_subscribed"
    assert await subscription(ANA, "unsubscribe") == "utter_subscription_unsubscribed"
    assert (
        await subscription(ANA, "unsubscribe", "m-2") == "utter_subscription_already_unsubscribed"
    )
    with transaction(demo_cdp) as session:
        assert not has_consent(session, ANA, ConsentPurpose.MARKETING, ConsentChannel.EMAIL)
        records = session.scalars(select(Consent).where(Consent.customer_id == ANA)).all()
        assert [(r.status.value, r.channel.value, r.source) for r in records] == [
            ("granted", "any", "web_signup_form"),
            ("withdrawn", "any", "chat:rest"),
        ]


async def test_subscribe_and_anonymous(demo_cdp: Engine) -> None:
    assert await subscription(BEN, None) == "utter_subscription_status_not_subscribed"
    assert await subscription(BEN, "subscribe") == "utter_subscription_subscribed"
    assert await subscription(BEN, "subscribe", "m-2") == "utter_subscription_already_subscribed"
    assert await subscription(None, "subscribe") == "utter_profile_needs_sign_in"
    assert count(demo_cdp, Consent, customer_id=BEN) == 1


# Offers ------------------------------------------------------------------------------------


async def present(customer: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionPresentOffer().run(dispatcher, turn("any offers?", customer), {})
    return dispatcher.messages, slot_values(events)


async def test_the_card_offer_for_a_consenting_high_score_customer(demo_cdp: Engine) -> None:
    messages, slots = await present(ANA)
    assert messages[0]["response"] == "utter_offer"
    assert "store card" in messages[0]["offer_text"]
    assert slots == {"pending_offer_id": "store_card_limit_increase"}
    pending = {"pending_offer_id": "store_card_limit_increase"}
    for _ in range(2):  # the same "yes" delivered twice
        dispatcher = CollectingDispatcher()
        events = await ActionAcceptOffer().run(dispatcher, turn("yes", ANA, slots=pending), {})
        assert said(dispatcher) == ["utter_offer_accepted"]
        assert "credit limit" in dispatcher.messages[0]["accepted_text"]
        assert slot_values(events)["pending_offer_id"] is None
    with transaction(demo_cdp) as session:
        accepted = events_of_types(session, ANA, ["offer_accepted"])
        assert [e.properties for e in accepted] == [{"offer_id": "store_card_limit_increase"}]
    messages, _ = await present(ANA)  # answered: not offered again during the cooldown
    assert messages[0]["response"] == "utter_no_offer"


@pytest.mark.parametrize(
    ("customer", "response"),
    [
        (BEN, "utter_no_offer"),  # no consent, no card
        (CHLOE, "utter_no_offer"),  # consent by email only, this is the web chat
        (None, "utter_offers_need_sign_in"),
    ],
)
async def test_no_offer_without_consent_on_the_channel_or_identity(
    customer: str | None, response: str
) -> None:
    messages, slots = await present(customer)
    assert [m["response"] for m in messages] == [response]
    assert slots == {"pending_offer_id": None}


async def test_declining_is_recorded_and_an_anonymous_answer_is_not(demo_cdp: Engine) -> None:
    pending = {"pending_offer_id": "store_card_limit_increase"}
    dispatcher = CollectingDispatcher()
    await ActionDeclineOffer().run(dispatcher, turn("no", ANA, slots=pending), {})
    assert said(dispatcher) == ["utter_offer_declined"]
    dispatcher = CollectingDispatcher()
    await ActionAcceptOffer().run(dispatcher, turn("yes", slots=pending), {})
    assert said(dispatcher) == ["utter_offers_need_sign_in"]
    assert count(demo_cdp, Event, type="offer_declined") == 1
    assert count(demo_cdp, Event, type="offer_accepted") == 0


# Troubleshooting ---------------------------------------------------------------------------


async def test_the_model_is_recognised_or_the_customer_is_told_the_choices() -> None:
    form = ValidateTroubleshootForm()
    dispatcher = CollectingDispatcher()
    trigger = turn("my gooseneck kettle won't turn on", intent="troubleshoot")
    assert await form.extract_device_model(dispatcher, trigger, {}) == {
        "device_model": "NWC-HOM-KTL-1L"
    }
    vague = turn("the kettle is dead", intent="troubleshoot")
    assert await form.extract_device_model(dispatcher, vague, {}) == {}
    assert form.validate_device_model("NWC-HOM-KTL-1L", dispatcher, trigger, {}) == {
        "device_model": "NWC-HOM-KTL-1L",
        "troubleshoot_step": 0,
    }
    assert form.validate_device_model("a kettle", dispatcher, vague, {}) == {"device_model": None}
    assert form.validate_device_model("my toaster", dispatcher, vague, {}) == {"device_model": None}
    assert said(dispatcher) == [
        "utter_troubleshoot_which_model",
        "utter_troubleshoot_unknown_model",
    ]
    assert "Classic kettle" in dispatcher.messages[0]["models"]


async def test_steps_advance_on_no_and_end_on_yes_or_after_the_last() -> None:
    form = ValidateTroubleshootForm()
    dispatcher = CollectingDispatcher()
    kettle = {"device_model": "NWC-HOM-KTL-1L", "troubleshoot_step": 0}
    at_first = turn("no", intent="deny", slots=kettle)
    assert form.validate_step_worked(False, dispatcher, at_first, {}) == {
        "step_worked": None,
        "troubleshoot_step": 1,
    }
    at_last = turn("no", intent="deny", slots={**kettle, "troubleshoot_step": 2})
    assert form.validate_step_worked(False, dispatcher, at_last, {}) == {
        "step_worked": False,
        "troubleshoot_outcome": "escalate",
    }
    assert form.validate_step_worked(True, dispatcher, at_first, {}) == {
        "step_worked": True,
        "troubleshoot_outcome": "resolved",
    }
    await ActionAskStepWorked().run(
        dispatcher, turn("no", slots={**kettle, "troubleshoot_step": 1}), {}
    )
    step = dispatcher.messages[0]
    assert (step["response"], step["number"], step["total"]) == ("utter_troubleshoot_step", 2, 3)
    assert "wall socket" in step["step"]


@pytest.mark.parametrize(
    ("outcome", "response", "conversation_outcome"),
    [
        ("resolved", "utter_troubleshoot_resolved", "resolved_by_bot"),
        ("escalate", "utter_troubleshoot_escalate", "handed_off"),
    ],
)
async def test_the_result_is_said_and_noted_on_the_profile(
    demo_cdp: Engine, outcome: str, response: str, conversation_outcome: str
) -> None:
    slots = {
        "device_model": "NWC-HOM-GRD-B20",
        "troubleshoot_step": 1,
        "troubleshoot_outcome": outcome,
    }
    dispatcher = CollectingDispatcher()
    events = await ActionTroubleshootResult().run(dispatcher, turn("no", ANA, slots=slots), {})
    assert said(dispatcher) == [response]
    values = slot_values(events)
    assert values["conversation_outcome"] == conversation_outcome
    assert values["device_model"] is None
    with transaction(demo_cdp) as session:
        noted = events_of_types(session, ANA, ["troubleshooting_finished"])
        assert [e.properties for e in noted] == [
            {"model": "NWC-HOM-GRD-B20", "outcome": outcome, "steps_tried": 2}
        ]


# Satisfaction ------------------------------------------------------------------------------


def test_ratings_are_read_from_what_customers_type() -> None:
    assert [parse_rating(t) for t in ("4", "5 stars", "Five!", "4/5", "10", "0", "meh")] == [
        4,
        5,
        5,
        4,
        None,
        None,
        None,
    ]


async def test_the_rating_form_extracts_validates_and_lets_the_customer_skip() -> None:
    form = ValidateSatisfactionForm()
    dispatcher = CollectingDispatcher()
    asked = {"requested_slot": "satisfaction_rating"}
    button = turn(
        "/rate", ANA, intent="rate", entities=[{"entity": "rating", "value": "4"}], slots=asked
    )
    assert await form.extract_satisfaction_rating(dispatcher, button, {}) == {
        "satisfaction_rating": "4"
    }
    skip = turn("no thanks", ANA, intent="deny", slots=asked)
    assert await form.extract_satisfaction_rating(dispatcher, skip, {}) == {
        "satisfaction_rating": "skipped"
    }
    assert form.validate_satisfaction_rating("4 stars", dispatcher, button, {}) == {
        "satisfaction_rating": "4"
    }
    assert form.validate_satisfaction_rating("11", dispatcher, button, {}) == {
        "satisfaction_rating": None
    }
    assert said(dispatcher) == ["utter_invalid_rating"]
    assert await form.required_slots(["satisfaction_rating"], dispatcher, turn("bye"), {}) == []


async def test_the_rating_is_stored_once_with_the_outcome(demo_cdp: Engine) -> None:
    slots = {"satisfaction_rating": "4", "conversation_outcome": "resolved_by_bot"}
    for _ in range(2):  # redelivered
        dispatcher = CollectingDispatcher()
        events = await ActionRecordSatisfaction().run(dispatcher, turn("4", ANA, slots=slots), {})
        assert said(dispatcher) == ["utter_thanks_for_rating"]
        assert slot_values(events) == {"satisfaction_rating": None, "conversation_outcome": None}
    skipped = {"satisfaction_rating": "skipped", "conversation_outcome": "handed_off"}
    dispatcher = CollectingDispatcher()
    await ActionRecordSatisfaction().run(
        dispatcher, turn("no", BEN, slots=skipped, message_id="m-2"), {}
    )
    assert said(dispatcher) == ["utter_goodbye"]
    await ActionRecordSatisfaction().run(CollectingDispatcher(), turn("5", slots=slots), {})
    with transaction(demo_cdp) as session:
        rows = session.scalars(select(Event).where(Event.type == "satisfaction_rating")).all()
        assert sorted(
            (e.customer_id, e.properties["rating"], e.properties["outcome"]) for e in rows
        ) == [
            (ANA, 4, "resolved_by_bot"),
            (BEN, None, "handed_off"),
        ]


async def test_leaving_a_flow_records_it_as_abandoned(demo_cdp: Engine) -> None:
    slots = {"device_model": "NWC-HOM-KTL-1L", "troubleshoot_step": 1}
    events = await ActionFlowAbandoned().run(
        CollectingDispatcher(), turn("bye", DEV, intent="goodbye", slots=slots), {}
    )
    values = slot_values(events)
    assert values["device_model"] is None and values["troubleshoot_step"] is None
    with transaction(demo_cdp) as session:
        rows = events_of_types(session, DEV, ["satisfaction_rating"])
        assert [(e.properties["rating"], e.properties["outcome"]) for e in rows] == [
            (None, "abandoned")
        ]
