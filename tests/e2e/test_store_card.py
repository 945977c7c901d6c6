"""The replacement store card and the address in the "I moved" message, over HTTP against the
real servers, checked in the CDP. Requests go through the NLU as customers type them."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from cdp.db import make_engine, transaction
from cdp.events.models import Event
from cdp.profiles.models import Profile
from cdp.store_card import REPLACEMENT_EVENT
from tests.e2e.harness import Assistant, texts

pytestmark = pytest.mark.e2e

ANA, MARCUS = "C-1001", "C-1005"


def conversation_id() -> str:
    return f"e2e-card-{secrets.token_hex(6)}"


def replacement_events(assistant: Assistant, customer_id: str) -> list[Event]:
    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            query = select(Event).where(
                Event.customer_id == customer_id, Event.type == REPLACEMENT_EVENT
            )
            return list(session.scalars(query))
    finally:
        engine.dispose()


def test_a_stolen_card_replaced_at_a_new_address(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(MARCUS)
    asked = texts(assistant.say(sender, "can you replace my store card please", token))
    assert "What happened to the old one?" in asked
    noted = texts(assistant.say(sender, "someone stole it from my bag", token))
    assert "block the old card" in noted
    assert "Shall we send the new card to" in noted
    assert "street address" in texts(assistant.say(sender, "/deny", token))
    assistant.say(sender, "5 Oak Road", token)
    assistant.say(sender, "Lyon", token)
    assistant.say(sender, "France", token)
    done = texts(assistant.say(sender, "69003", token))
    assert "block the stolen card and post a new one to 5 Oak Road, Lyon 69003, FR" in done

    [event] = replacement_events(assistant, MARCUS)
    assert event.properties["reason"] == "stolen" and event.properties["block_old_card"]
    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            assert session.get(Profile, MARCUS).address_city == "Lyon"
    finally:
        engine.dispose()


def test_a_lost_card_to_the_default_address_and_an_anonymous_request(
    assistant: Assistant,
) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    offered = texts(assistant.say(sender, "i lost my northwind store card", token))
    assert "Shall we send the new card to 12 Elm St" in offered
    done = texts(assistant.say(sender, "yes", token))
    assert "post" in done and "12 Elm St" in done
    assert len(replacement_events(assistant, ANA)) == 1

    visitor = texts(assistant.say(conversation_id(), "my store card got stolen"))
    assert "I can't see who you are yet" in visitor


def test_the_new_address_in_the_i_moved_message_is_not_asked_again(
    assistant: Assistant,
) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    asked = texts(
        assistant.say(sender, "i moved, new adress is 40 Walnut St, Springfield 62704", token)
    )
    assert "Which country is it in?" in asked
    saved = texts(assistant.say(sender, "usa", token))
    assert "Your address is now 40 Walnut St, Springfield 62704, US" in saved
