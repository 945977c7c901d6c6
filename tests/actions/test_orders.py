"""Order status, cancel and change actions against the real demo CDP (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from actions.order_status import ActionOrderStatus
from actions.orders import (
    ActionCancelOrder,
    ActionCheckCancelOrder,
    ActionCheckChangeOrder,
    ActionKeepOrder,
)
from actions.repeat_order import ActionPlaceRepeatOrder
from cdp.db import transaction
from cdp.orders.models import Order, OrderStatus
from tests.actions.order_messages import ANONYMOUS, run, said

pytestmark = pytest.mark.usefixtures("demo_cdp")

ANA, BEN, MARCUS, SOFIA = "C-1001", "C-1002", "C-1005", "C-1006"


def status_of(engine: Engine, order_id: str) -> OrderStatus:
    with transaction(engine) as session:
        return session.get(Order, order_id).status


@pytest.mark.parametrize("typed", ["O-5009", "o5009", "#5009", "5009"])
async def test_status_by_order_id_as_typed(typed: str) -> None:
    message, _ = await run(ActionOrderStatus(), said("order_status", MARCUS, {"order_id": typed}))
    assert message["response"] == "utter_order_status_shipped_tracked"
    assert (message["order_id"], message["carrier"]) == ("O-5009", "UPS")
    assert message["tracking_number"] == "1Z999AA10123456784"
    assert "4 x Stoneware mug, 12 oz" in message["lines"]


async def test_status_of_the_latest_open_order_without_an_id() -> None:
    message, _ = await run(ActionOrderStatus(), said("order_status", BEN))
    assert (message["response"], message["order_id"]) == ("utter_order_status_placed", "O-5011")
    assert message["delivery_address"] == "the address on your account"  # none on the order
    message, _ = await run(ActionOrderStatus(), said("order_status", ANA))
    assert message["response"] == "utter_no_open_order"


async def test_a_returned_order_says_when_it_was_refunded() -> None:
    message, _ = await run(ActionOrderStatus(), said("order_status", SOFIA, {"order_id": "5008"}))
    assert message["response"] == "utter_order_status_returned_refunded"
    assert (message["refund"], message["refunded_on"]) == ("€59.00", "16 Nov 2026")


async def test_someone_elses_and_an_unknown_order_get_the_same_answer() -> None:
    foreign, _ = await run(ActionOrderStatus(), said("order_status", ANA, {"order_id": "O-5011"}))
    unknown, _ = await run(ActionOrderStatus(), said("order_status", ANA, {"order_id": "O-9999"}))
    assert foreign["response"] == unknown["response"] == "utter_order_not_found"
    assert set(foreign) == set(unknown)
    assert "lines" not in foreign and "total" not in foreign


@pytest.mark.parametrize(
    "action", [ActionOrderStatus(), ActionCheckCancelOrder(), ActionCheckChangeOrder()]
)
async def test_anonymous_visitors_get_the_shared_answer(action: Any) -> None:
    message, slots = await run(action, said("order_status", None, {"order_id": "O-5011"}))
    assert message == {**message, "response": ANONYMOUS}
    assert "order_id" not in message
    assert all(value is None for value in slots.values())


async def test_cancel_asks_first_then_cancels_on_yes(demo_cdp: Engine) -> None:
    message, slots = await run(ActionCheckCancelOrder(), said("cancel_order", BEN))
    assert message["response"] == "utter_confirm_cancel_order"
    assert slots == {"cancel_order_id": "O-5011"}
    assert status_of(demo_cdp, "O-5011") is OrderStatus.PLACED  # nothing written yet

    for message_id in ("m-2", "m-2", "m-3"):  # a redelivered yes, then another yes
        confirm = said("affirm", BEN, slots=slots, message_id=message_id)
        message, cleared = await run(ActionCancelOrder(), confirm)
        assert message["response"] == "utter_order_cancelled"
        assert cleared == {"cancel_order_id": None}
    assert status_of(demo_cdp, "O-5011") is OrderStatus.CANCELLED


async def test_keeping_the_order_writes_nothing(demo_cdp: Engine) -> None:
    message, slots = await run(
        ActionKeepOrder(), said("deny", BEN, slots={"cancel_order_id": "O-5011"})
    )
    assert (message["response"], message["order_id"]) == ("utter_order_kept", "O-5011")
    assert slots == {"cancel_order_id": None}
    assert status_of(demo_cdp, "O-5011") is OrderStatus.PLACED


async def test_too_late_to_cancel_or_change_a_shipped_order(demo_cdp: Engine) -> None:
    for action, response in (
        (ActionCheckCancelOrder(), "utter_order_too_late_to_cancel"),
        (ActionCheckChangeOrder(), "utter_order_too_late_to_change"),
    ):
        message, slots = await run(action, said("cancel_order", MARCUS, {"order_id": "O-5009"}))
        assert (message["response"], message["status"]) == (response, "shipped")
        assert slots.get("cancel_order_id") is None
    assert status_of(demo_cdp, "O-5009") is OrderStatus.SHIPPED


async def test_an_already_cancelled_order_and_a_foreign_one() -> None:
    chloe = "C-1003"
    message, slots = await run(
        ActionCheckCancelOrder(), said("cancel_order", chloe, {"order_id": "O-5010"})
    )
    assert message["response"] == "utter_order_already_cancelled"
    assert slots == {"cancel_order_id": None}
    message, slots = await run(
        ActionCheckCancelOrder(), said("cancel_order", chloe, {"order_id": "O-5011"})
    )
    assert (message["response"], slots) == ("utter_order_not_found", {"cancel_order_id": None})


async def test_a_cancel_confirmed_for_someone_elses_order_changes_nothing(
    demo_cdp: Engine,
) -> None:
    message, _ = await run(
        ActionCancelOrder(), said("affirm", ANA, slots={"cancel_order_id": "O-5011"})
    )
    assert message["response"] == "utter_order_not_found"
    assert status_of(demo_cdp, "O-5011") is OrderStatus.PLACED


async def test_change_offers_the_address_the_items_or_cancelling() -> None:
    message, _ = await run(ActionCheckChangeOrder(), said("change_order", BEN))
    assert (message["response"], message["order_id"]) == ("utter_confirm_change_order", "O-5011")
    assert "Gooseneck kettle" in message["lines"]


async def test_a_redelivered_repeat_confirmation_places_one_order(demo_cdp: Engine) -> None:
    placed = set()
    for _ in range(2):
        confirm = said("affirm", ANA, slots={"reorder_source_order_id": "O-5007"})
        message, _ = await run(ActionPlaceRepeatOrder(), confirm)
        placed.add(message["new_order_id"])
    assert len(placed) == 1
