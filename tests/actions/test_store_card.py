"""A replacement store card against the real demo CDP: who is asked, what is recorded, once."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, select

from actions.address import ActionAskAddressConfirmed, ValidateAddressForm
from actions.store_card import (
    ActionDropCardReplacement,
    ActionRequestCardReplacement,
    ValidateCardReplacementForm,
    card_reason,
)
from cdp.attributes.models import AttributeValue
from cdp.db import transaction
from cdp.events.models import Event
from cdp.identities.models import IdentitySource
from cdp.profiles.models import Profile
from cdp.store_card import REPLACEMENT_EVENT, CardReason
from tests.actions.order_messages import ANONYMOUS, run, said
from tests.actions.test_orders_forms import DOMAIN, NEW_ADDRESS, answer, validate

ANA_HOLDER, BEN_NO_CARD = "C-1001", "C-1002"
CARD = {"address_purpose": "card"}


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("lost", CardReason.LOST),
        ("I can\u2019t find it anywhere", CardReason.LOST),
        ("someone nicked my wallet", CardReason.STOLEN),
        ("my lost card was stolen", CardReason.STOLEN),
        ("the chip stopped working", CardReason.DAMAGED),
        ("it SNAPPED in half", CardReason.DAMAGED),
        ('/replace_card{"card_reason": "damaged"}', CardReason.DAMAGED),
        (["been", "stolen"], CardReason.STOLEN),
        ("no idea really", None),
        (None, None),
    ],
)
def test_the_reason_in_the_customers_words(typed: Any, reason: CardReason | None) -> None:
    assert card_reason(typed) is reason


def card_events(engine: Engine, customer_id: str) -> list[Event]:
    with transaction(engine) as session:
        events = session.scalars(
            select(Event).where(Event.customer_id == customer_id, Event.type == REPLACEMENT_EVENT)
        )
        return list(events)


def requested(customer: str | None, slots: dict[str, Any], message_id: str = "m-1") -> Tracker:
    return said("affirm", customer, slots={**CARD, **slots}, message_id=message_id)


@pytest.mark.usefixtures("demo_cdp")
@pytest.mark.parametrize("customer", [None, BEN_NO_CARD])
async def test_visitors_and_customers_without_a_card_are_asked_nothing(
    customer: str | None,
) -> None:
    said_, slots = await validate(
        ValidateCardReplacementForm(),
        answer("card_replacement_form", customer, {"card_reason": "lost"}),
    )
    assert (said_, slots["requested_slot"]) == ([], None)
    address = answer("address_form", customer, {"address_confirmed": "yes"}, CARD, "affirm")
    said_, slots = await validate(ValidateAddressForm(), address)
    assert (said_, slots["requested_slot"]) == ([], None)


@pytest.mark.usefixtures("demo_cdp")
async def test_a_card_holder_gives_the_reason_and_a_stolen_card_gets_the_note() -> None:
    stolen = answer("card_replacement_form", ANA_HOLDER, {"card_reason": "they stole my bag"})
    said_, slots = await validate(ValidateCardReplacementForm(), stolen)
    assert [m["response"] for m in said_] == ["utter_card_stolen_note"]
    assert slots["card_reason"] == "stolen"

    unclear = answer("card_replacement_form", ANA_HOLDER, {"card_reason": "hmm, dunno"})
    said_, slots = await validate(ValidateCardReplacementForm(), unclear)
    assert [m["response"] for m in said_] == ["utter_card_reason_unclear"]
    assert slots == {"card_reason": None}


@pytest.mark.usefixtures("demo_cdp")
async def test_the_default_address_is_offered_for_the_new_card() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskAddressConfirmed().run(
        dispatcher, said("replace_card", ANA_HOLDER, slots=CARD), {}
    )
    [message] = dispatcher.messages
    assert message["response"] == "utter_confirm_card_address"
    assert message["delivery_address"] == "12 Elm St, Springfield 62701, US"
    confirm = answer("address_form", ANA_HOLDER, {"address_confirmed": "yes"}, CARD, "affirm")
    said_, slots = await validate(ValidateAddressForm(), confirm)
    assert (said_, slots) == ([], {"address_confirmed": True, "requested_slot": None})


async def test_the_request_to_the_default_address_is_recorded_once_per_message(
    demo_cdp: Engine,
) -> None:
    confirmed = {"card_reason": "lost", "address_confirmed": True}
    message, slots = await run(ActionRequestCardReplacement(), requested(ANA_HOLDER, confirmed))
    assert message["response"] == "utter_card_replacement_requested"
    assert message["delivery_address"] == "12 Elm St, Springfield 62701, US"
    assert set(slots.values()) == {None}  # the reason and the address slots are cleared
    again, _ = await run(ActionRequestCardReplacement(), requested(ANA_HOLDER, confirmed))
    assert again == message
    [event] = card_events(demo_cdp, ANA_HOLDER)
    assert event.properties["reason"] == "lost"
    assert event.properties["block_old_card"] is False
    assert event.properties["address"]["line1"] == "12 Elm St"
    assert event.properties["address_source"] == "conversation"
    await run(ActionRequestCardReplacement(), requested(ANA_HOLDER, confirmed, "m-2"))
    assert len(card_events(demo_cdp, ANA_HOLDER)) == 2


async def test_a_stolen_card_to_a_new_address_writes_the_address_back(demo_cdp: Engine) -> None:
    slots = {"card_reason": "stolen", **NEW_ADDRESS}
    message, _ = await run(ActionRequestCardReplacement(), requested(ANA_HOLDER, slots))
    assert message["response"] == "utter_card_replacement_requested_stolen"
    assert message["delivery_address"] == "5 Oak Road, Lyon 69003, FR"
    [event] = card_events(demo_cdp, ANA_HOLDER)
    assert event.properties["block_old_card"] is True
    assert event.properties["address"]["city"] == "Lyon"
    with transaction(demo_cdp) as session:
        assert session.get(Profile, ANA_HOLDER).address_city == "Lyon"
        provenance = session.get(AttributeValue, (ANA_HOLDER, "address"))
        assert provenance.source is IdentitySource.CONVERSATION
        assert provenance.verified is True


@pytest.mark.parametrize(
    ("customer", "response"),
    [(None, ANONYMOUS), (BEN_NO_CARD, "utter_card_not_holder")],
)
async def test_nothing_is_recorded_for_a_visitor_or_without_a_card(
    demo_cdp: Engine, customer: str | None, response: str
) -> None:
    slots = {"card_reason": "lost", **NEW_ADDRESS}
    message, _ = await run(ActionRequestCardReplacement(), requested(customer, slots))
    assert message["response"] == response
    with transaction(demo_cdp) as session:
        assert session.scalars(select(Event).where(Event.type == REPLACEMENT_EVENT)).all() == []
        assert session.get(Profile, BEN_NO_CARD).address_city == "Austin"


async def test_a_no_drops_the_request_without_writing(demo_cdp: Engine) -> None:
    message, slots = await run(
        ActionDropCardReplacement(), said("deny", ANA_HOLDER, slots={"card_reason": "lost"})
    )
    assert message["response"] == "utter_card_replacement_dropped"
    assert slots["card_reason"] is None
    assert card_events(demo_cdp, ANA_HOLDER) == []


def test_the_domain_asks_for_the_reason_with_buttons_for_each_reason() -> None:
    [question] = DOMAIN["responses"]["utter_ask_card_reason"]
    reasons = {card_reason(button["payload"]) for button in question["buttons"]}
    assert reasons == set(CardReason)


async def test_a_kept_default_address_gains_the_conversation_as_its_source(
    demo_cdp: Engine,
) -> None:
    """Marcus's address came unverified from the import; he confirmed it in the chat."""
    confirmed = {"card_reason": "damaged", "address_confirmed": True}
    message, _ = await run(ActionRequestCardReplacement(), requested("C-1005", confirmed))
    assert message["response"] == "utter_card_replacement_requested"
    with transaction(demo_cdp) as session:
        provenance = session.get(AttributeValue, ("C-1005", "address"))
        assert (provenance.source, provenance.verified) == (IdentitySource.CONVERSATION, True)
