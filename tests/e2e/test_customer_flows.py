"""The customer flows over HTTP against the real servers (Rasa + action server), then checked
in the CDP: opener, contact form and rating, offers, troubleshooting to a person."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import select

from cdp.clock import utcnow
from cdp.db import make_engine, transaction
from cdp.events.models import Event, EventIn
from cdp.events.service import record_event
from cdp.profiles.models import Profile
from tests.e2e.harness import Assistant, texts

pytestmark = pytest.mark.e2e

ANA, BEN = "C-1001", "C-1002"


def conversation_id() -> str:
    return f"e2e-{secrets.token_hex(6)}"


def events_of(assistant: Assistant, customer_id: str, kind: str) -> list[dict[str, Any]]:
    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            rows = session.scalars(
                select(Event).where(Event.customer_id == customer_id, Event.type == kind)
            )
            return [dict(row.properties) for row in rows]
    finally:
        engine.dispose()


def test_the_opener_asks_about_a_failed_payment_and_gives_its_details(
    assistant: Assistant,
) -> None:
    sender, token = conversation_id(), assistant.token(BEN)
    # A retry of the seeded payment, failed just now (the opener looks 14 days back).
    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            record_event(
                session,
                EventIn(
                    event_id=f"E-{sender}",
                    customer_id=BEN,
                    type="payment_failed",
                    occurred_at=utcnow(),
                    channel="web",
                    properties={
                        "order_id": "O-5011",
                        "amount": "61.75",
                        "currency": "USD",
                        "card_last4": "4242",
                    },
                ),
            )
    finally:
        engine.dispose()
    opener = texts(assistant.say(sender, "hi", token))
    assert "Hi Ben" in opener and "last payment didn't go through" in opener
    details = texts(assistant.say(sender, "yes", token))
    assert "O-5011" in details and "4242" in details and "$61.75" in details


def test_an_email_update_is_saved_unverified_then_rated(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    assert "new email address" in texts(assistant.say(sender, "update my email", token))
    refused = texts(assistant.say(sender, "ana at home", token))
    assert '"ana at home" doesn\'t look like an email address' in refused
    saved = texts(assistant.say(sender, "it's Ana.E2E@Example.net", token))
    assert "ana.e2e@example.net is now the email address" in saved and "not verified" in saved
    assert "rate this conversation" in texts(assistant.say(sender, "thanks", token))
    assert "4 out of 5" in texts(assistant.say(sender, "4", token))
    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            assert session.get_one(Profile, ANA).email == "ana.e2e@example.net"
    finally:
        engine.dispose()
    ratings = events_of(assistant, ANA, "satisfaction_rating")
    assert {"rating": 4, "outcome": "resolved_by_bot", "conversation_id": sender} in ratings


def test_an_offer_is_made_and_accepted(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    offer = texts(assistant.say(sender, "do you have any offers for me?", token))
    assert "pre-approved for a credit-limit increase" in offer
    assert "higher credit limit" in texts(assistant.say(sender, "yes please", token))
    answers = events_of(assistant, ANA, "offer_accepted")
    assert answers == [{"offer_id": "store_card_limit_increase"}]


def test_failed_troubleshooting_goes_to_a_person(assistant: Assistant) -> None:
    sender = conversation_id()
    first = texts(assistant.say(sender, "my gooseneck kettle wont turn on"))
    assert "Step 1 of 3 for your Gooseneck kettle, 1 l" in first
    assert "Step 2 of 3" in texts(assistant.say(sender, "no"))
    assert "Step 3 of 3" in texts(assistant.say(sender, "no"))
    last = texts(assistant.say(sender, "no"))
    assert "none of the steps helped" in last
    assert "support team" in last  # the handoff (or its fallback) answered


def test_an_anonymous_visitor_is_asked_to_sign_in_before_any_change(
    assistant: Assistant,
) -> None:
    reply = texts(assistant.say(conversation_id(), "update my email"))
    assert "only change account details for a signed-in customer" in reply
    assert "new email address" not in reply


def test_subscribing_through_the_status_buttons(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(BEN)
    status = assistant.say(sender, "unsubscribe me", token)
    assert "not subscribed" in texts(status)
    subscribe = next(b["payload"] for b in status[0]["buttons"] if b["title"] == "Subscribe me")
    assert "you're subscribed" in texts(assistant.say(sender, subscribe, token))
    again = texts(assistant.say(sender, subscribe, token))
    assert "already subscribed" in again
