"""The order flows over HTTP against the real servers (forms included), checked in the CDP.

Answers that are free text (a street, a city) go through the NLU as customers type them;
choices go as the payloads of the buttons the assistant offers.
"""

from __future__ import annotations

import secrets

import pytest

from cdp.db import make_engine, transaction
from cdp.orders.models import Order
from cdp.profiles.models import Profile
from tests.e2e.harness import Assistant, texts

pytestmark = pytest.mark.e2e

BEN, MARCUS = "C-1002", "C-1005"


def conversation_id() -> str:
    return f"e2e-orders-{secrets.token_hex(6)}"


def test_a_new_order_by_name_to_a_new_address(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(BEN)
    asked = texts(assistant.say(sender, '/place_order{"product": "earl grey"}', token))
    assert "How many of Earl Grey loose leaf tea, 100 g" in asked
    assert "Shall we deliver to 480 Congress Ave" in texts(assistant.say(sender, "2", token))
    assert "street address" in texts(assistant.say(sender, "/deny", token))
    assistant.say(sender, "5 Oak Road", token)
    assistant.say(sender, "Lyon", token)
    assistant.say(sender, "France", token)
    refused = texts(assistant.say(sender, "6900", token))
    assert "for example 69002" in refused
    proposal = texts(assistant.say(sender, "69003", token))
    assert "2 x Earl Grey loose leaf tea, 100 g" in proposal
    assert "5 Oak Road, Lyon 69003, FR" in proposal
    placed = texts(assistant.say(sender, "/affirm", token))
    assert "I've placed order" in placed
    new_id = placed.split("I've placed order ")[1].split(":")[0]

    engine = make_engine(assistant.settings.cdp_database_url)
    try:
        with transaction(engine) as session:
            order = session.get(Order, new_id)
            assert order is not None and order.customer_id == BEN
            assert [(line.sku, line.quantity) for line in order.lines] == [("NWC-TEA-EGR-100", 2)]
            assert order.delivery_city == "Lyon"
            assert session.get(Profile, BEN).address_postal_code == "69003"
    finally:
        engine.dispose()
    assert "nothing is waiting" in texts(assistant.say(sender, "/affirm", token))


def test_status_and_too_late_to_cancel_a_shipped_order(assistant: Assistant) -> None:
    sender, token = conversation_id(), assistant.token(MARCUS)
    status = texts(assistant.say(sender, '/order_status{"order_id": "#5009"}', token))
    assert "1Z999AA10123456784" in status
    late = texts(assistant.say(sender, '/cancel_order{"order_id": "O-5009"}', token))
    assert "too late to cancel" in late


def test_an_anonymous_visitor_is_asked_nothing(assistant: Assistant) -> None:
    sender = conversation_id()
    reply = texts(assistant.say(sender, '/place_order{"product": "earl grey"}'))
    assert "can't see who you are" in reply
    assert "How many" not in reply
    other = texts(assistant.say(sender, '/order_status{"order_id": "O-5011"}'))
    assert "can't see who you are" in other and "Gooseneck" not in other
