"""The repeat-order conversation over HTTP against the real servers, then checked in the CDP."""

from __future__ import annotations

import secrets
import time

import jwt
import pytest
import requests

from cdp.db import make_engine, transaction
from cdp.orders.service import get_order, last_order
from tests.e2e.harness import Assistant, texts

pytestmark = pytest.mark.e2e

ANA = "C-1001"
NO_ORDERS = "C-1004"


def conversation_id() -> str:
    return f"e2e-{secrets.token_hex(6)}"


def ana_last_order(assistant: Assistant) -> tuple[str, list[tuple[str, int]]]:
    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            order = last_order(session, ANA)
            assert order is not None
            return order.order_id, [(line.name, line.quantity) for line in order.lines]
    finally:
        engine.dispose()


def test_identified_customer_repeats_the_last_order(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    source_id, source_lines = ana_last_order(assistant)

    assert "Hi Ana" in texts(assistant.say(sender, "hey there", token))

    proposal = texts(assistant.say(sender, "same as last time please", token))
    assert source_id in proposal
    for name, quantity in source_lines:
        assert f"{quantity} x {name}" in proposal

    placed = texts(assistant.say(sender, "yes", token))
    assert "I've placed order" in placed
    new_id = placed.split("I've placed order ")[1].split(":")[0]

    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            new_order = get_order(session, ANA, new_id)
            assert new_order is not None
            assert new_order.reorder_of == source_id
            assert new_order.status.value == "placed"
            assert [(line.name, line.quantity) for line in new_order.lines] == source_lines
            assert new_order.channel == "rest"
            # The new order is now the last one: asking again proposes it.
            assert last_order(session, ANA).order_id == new_id
    finally:
        engine.dispose()


def test_no_writes_on_no_and_a_person_is_offered(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    before = ana_last_order(assistant)
    assistant.say(sender, "reorder my last order", token)
    declined = assistant.say(sender, "no", token)
    assert "haven't ordered anything" in texts(declined)
    assert any(b["payload"] == "/human_handoff" for m in declined for b in m.get("buttons", []))
    assert ana_last_order(assistant) == before
    assert "support team" in texts(assistant.say(sender, "/human_handoff", token))


def test_customer_without_orders_is_told_so(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(NO_ORDERS)
    reply = texts(assistant.say(sender, "can you repeat my previous order", token))
    assert "can't find any past orders" in reply


def forged_tokens(assistant: Assistant) -> dict[str, str | None]:
    secret = assistant.settings.identity_secret
    now = int(time.time())
    return {
        "missing": None,
        "expired": jwt.encode({"sub": ANA, "exp": now - 60}, secret, algorithm="HS256"),
        "wrong secret": jwt.encode(
            {"sub": ANA, "exp": now + 600}, "not-the-secret-" * 3, algorithm="HS256"
        ),
        "no exp": jwt.encode({"sub": ANA}, secret, algorithm="HS256"),
        "unknown customer": assistant.token("C-9999"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "kind", ["missing", "expired", "wrong secret", "no exp", "unknown customer", "garbage"]
)
def test_without_a_valid_token_the_visitor_is_anonymous(assistant: Assistant, kind: str) -> None:
    sender, token = conversation_id(), forged_tokens(assistant)[kind]
    greeting = texts(assistant.say(sender, "hello", token))
    assert "Ana" not in greeting and "Sign in" in greeting
    reply = texts(assistant.say(sender, "order the same thing as last time", token))
    assert "can't see who you are" in reply
    assert "O-" not in reply


def test_a_token_from_one_message_does_not_unlock_the_next(assistant: Assistant) -> None:
    """Whoever continues a conversation id without the customer's token sees no data."""
    sender = conversation_id()
    assistant.say(sender, "hi", assistant.token(ANA))
    reply = texts(assistant.say(sender, "repeat my last order", None))
    assert "can't see who you are" in reply
    proposal = texts(assistant.say(sender, "repeat my last order", assistant.token(ANA)))
    assert "Shall I place" in proposal
    assert "can't see who you are" in texts(assistant.say(sender, "yes", None))


def test_http_api_needs_the_token(assistant: Assistant) -> None:
    url = f"{assistant.settings.rasa_url}/status"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "wrong"}, timeout=10).status_code == 401
    assert requests.get(url, params={"token": assistant.settings.api_token}, timeout=10).ok


def test_conversations_survive_a_restart(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(ANA)
    assistant.say(sender, "same as last time please", token)
    assistant.restart_rasa()
    tracker = requests.get(
        f"{assistant.settings.rasa_url}/conversations/{sender}/tracker",
        params={"token": assistant.settings.api_token},
        timeout=10,
    ).json()
    assert tracker["slots"]["reorder_source_order_id"] == ana_last_order(assistant)[0]
    # The pending proposal is still there after the restart: "yes" places it.
    assert "I've placed order" in texts(assistant.say(sender, "yes", token))
