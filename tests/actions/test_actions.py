"""Each custom action against the real demo CDP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, func, select

from actions.greeting import ActionGreet
from actions.human import ActionContactHuman
from actions.repeat_order import (
    ActionDeclineRepeatOrder,
    ActionPlaceRepeatOrder,
    ActionProposeRepeatOrder,
)
from actions.session import ActionSessionStart
from cdp.db import transaction
from cdp.events.models import Event
from cdp.orders.models import Order
from cdp.orders.service import get_order, last_order
from tests.actions.trackers import token_for, tracker

pytestmark = pytest.mark.usefixtures("demo_cdp")

ANA, DEV_NO_ORDERS = "C-1001", "C-1004"


def slot_values(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def order_count(engine: Engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Order))


async def test_session_start_seeds_the_verified_customer() -> None:
    events = await ActionSessionStart().run(
        CollectingDispatcher(),
        tracker(text=None, session_metadata={"customer_token": token_for(ANA)}),
        {},
    )
    assert events[0]["event"] == "session_started"
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")
    slots = slot_values(events)
    assert slots["customer_id"] == ANA
    assert slots["first_name"] == "Ana"
    assert set(slots["session_started_metadata"]) == {"customer_token"}


async def test_session_start_without_token_clears_identity() -> None:
    events = await ActionSessionStart().run(CollectingDispatcher(), tracker(text=None), {})
    assert slot_values(events) == {
        "session_started_metadata": None,
        "customer_id": None,
        "first_name": None,
        # Customer flows: the other profile slots are cleared too.
        "membership_tier": None,
        "language": None,
        "last_event": None,
    }


@pytest.mark.parametrize(
    ("state", "carried"),
    [("requested", True), ("accepted", True), ("resolved", False), (None, False)],
)
async def test_a_new_session_keeps_a_conversation_a_person_owns(
    state: str | None, carried: bool
) -> None:
    events = await ActionSessionStart().run(
        CollectingDispatcher(), tracker(text=None, slots={"handoff_state": state}), {}
    )
    slots = slot_values(events)
    assert ("handoff_state" in slots) is carried
    if carried:
        assert slots["handoff_state"] == state


async def test_greet_by_first_name_or_neutrally() -> None:
    dispatcher = CollectingDispatcher()
    await ActionGreet().run(dispatcher, tracker("hi", token_for(ANA)), {})
    assert dispatcher.messages[0]["response"] == "utter_greet_customer"
    assert dispatcher.messages[0]["first_name"] == "Ana"

    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker("hi", token_for("C-9999")), {})
    assert dispatcher.messages[0]["response"] == "utter_greet_visitor"
    assert slot_values(events)["customer_id"] is None


async def test_propose_lists_the_last_order_and_asks(demo_cdp: Engine) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionProposeRepeatOrder().run(
        dispatcher, tracker("same as last time", token_for(ANA)), {}
    )
    with transaction(demo_cdp) as session:
        last = last_order(session, ANA)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_confirm_repeat_order"
    assert message["order_id"] == last.order_id
    for line in last.lines:
        assert f"{line.quantity} x {line.name}" in message["lines"]
    assert message["total"].startswith("$")
    assert message["delivery_address"].startswith("12 Elm St")
    assert slot_values(events) == {"reorder_source_order_id": last.order_id}


@pytest.mark.parametrize(
    ("token", "response"),
    [
        (None, "utter_repeat_order_anonymous"),
        ("C-9999", "utter_repeat_order_anonymous"),  # a valid token for nobody in the CDP
        ("C-1004", "utter_repeat_order_no_orders"),
    ],
)
async def test_propose_when_there_is_nothing_to_repeat(token: str | None, response: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionProposeRepeatOrder().run(
        dispatcher, tracker("reorder", token_for(token) if token else None), {}
    )
    assert dispatcher.messages[0]["response"] == response
    assert slot_values(events) == {"reorder_source_order_id": None}


async def test_place_writes_a_copy_and_confirms_its_id(demo_cdp: Engine) -> None:
    with transaction(demo_cdp) as session:
        source = last_order(session, ANA)
    dispatcher = CollectingDispatcher()
    events = await ActionPlaceRepeatOrder().run(
        dispatcher,
        tracker("yes", token_for(ANA), slots={"reorder_source_order_id": source.order_id}),
        {},
    )
    message = dispatcher.messages[0]
    assert message["response"] == "utter_repeat_order_placed"
    with transaction(demo_cdp) as session:
        placed = get_order(session, ANA, message["new_order_id"])
        assert placed is not None and placed.reorder_of == source.order_id
        assert [(x.sku, x.quantity, x.unit_price) for x in placed.lines] == [
            (x.sku, x.quantity, x.unit_price) for x in source.lines
        ]
        assert placed.channel == "rest"
    assert slot_values(events) == {"reorder_source_order_id": None}


async def test_place_refuses_another_customers_order(demo_cdp: Engine) -> None:
    before = order_count(demo_cdp)
    dispatcher = CollectingDispatcher()
    await ActionPlaceRepeatOrder().run(
        dispatcher, tracker("yes", token_for(ANA), slots={"reorder_source_order_id": "O-5002"}), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_repeat_order_unavailable"
    assert order_count(demo_cdp) == before


async def test_place_without_a_valid_token_writes_nothing(demo_cdp: Engine) -> None:
    before = order_count(demo_cdp)
    dispatcher = CollectingDispatcher()
    await ActionPlaceRepeatOrder().run(
        dispatcher, tracker("yes", None, slots={"reorder_source_order_id": "O-5007"}), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_repeat_order_anonymous"
    assert order_count(demo_cdp) == before


async def test_decline_writes_nothing(demo_cdp: Engine) -> None:
    before = order_count(demo_cdp)
    dispatcher = CollectingDispatcher()
    events = await ActionDeclineRepeatOrder().run(dispatcher, tracker("no", token_for(ANA)), {})
    assert dispatcher.messages[0]["response"] == "utter_repeat_order_declined"
    assert slot_values(events) == {"reorder_source_order_id": None}
    assert order_count(demo_cdp) == before


async def test_contact_request_is_recorded_once_per_message(demo_cdp: Engine) -> None:
    for _ in range(2):  # the same message twice: one event
        dispatcher = CollectingDispatcher()
        await ActionContactHuman().run(dispatcher, tracker("human pls", token_for(ANA)), {})
        assert dispatcher.messages[0]["response"] == "utter_human_contact"
    await ActionContactHuman().run(CollectingDispatcher(), tracker("human pls", None), {})
    with transaction(demo_cdp) as session:
        requests = session.scalars(
            select(Event).where(Event.type == "human_contact_requested")
        ).all()
    assert [(e.customer_id, e.properties) for e in requests] == [
        (ANA, {"conversation_id": "conversation-1"})
    ]
