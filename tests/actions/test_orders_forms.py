"""The order and address forms, and placing a confirmed order, against the real demo CDP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine, func, select

from actions.address import (
    ActionAskAddressConfirmed,
    ActionSaveAddress,
    ValidateAddressForm,
)
from actions.orders import (
    ActionAskProduct,
    ActionDeclineOrder,
    ActionPlaceOrder,
    ActionProposeOrder,
    ValidatePlaceOrderForm,
)
from cdp.attributes.models import AttributeValue
from cdp.db import transaction
from cdp.identities.models import IdentitySource
from cdp.orders.models import Order
from cdp.profiles.models import Profile
from tests.actions.order_messages import ANONYMOUS, run, said

pytestmark = pytest.mark.usefixtures("demo_cdp")

DOMAIN = yaml.safe_load((Path(__file__).resolve().parents[2] / "domain.yml").read_text())
ANA, BEN, DEV_NO_ADDRESS, MARCUS = "C-1001", "C-1002", "C-1004", "C-1005"
HOUSE_BLEND = "Northwind House Blend coffee, 1 kg"
NEW_ADDRESS = {
    "address_confirmed": False,
    "address_line1": "5 Oak Road",
    "address_city": "Lyon",
    "address_country": "FR",
    "address_postal_code": "69003",
}


def answer(
    form: str,
    customer: str | None,
    candidates: dict[str, Any],
    slots: dict[str, Any] | None = None,
    intent: str = "nlu_fallback",
) -> Tracker:
    """The tracker as the form's validation sees it: the answer's slot candidates last."""
    requested = next(iter(candidates))
    message = said(intent, customer, slots={**(slots or {}), **candidates})
    message.slots["requested_slot"] = requested
    message.events.extend({"event": "slot", "name": k, "value": v} for k, v in candidates.items())
    message.active_loop = {"name": form}
    return message


async def validate(action: Any, message: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What the validation said, and the slots it set."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, message, DOMAIN)
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def orders_of(engine: Engine, customer_id: str) -> int:
    with transaction(engine) as session:
        return session.scalar(
            select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
        )


@pytest.mark.parametrize(
    ("typed", "product"),
    [
        ("house blend", HOUSE_BLEND),
        ("my usual", HOUSE_BLEND),
        ("NWC-SNK-ALM-200", "Smoked almonds, 200 g"),
    ],
)
async def test_a_product_by_name_sku_or_favourite(typed: str, product: str) -> None:
    said_, slots = await validate(
        ValidatePlaceOrderForm(), answer("place_order_form", ANA, {"product": typed})
    )
    assert said_ == []
    assert slots["product"] == product


@pytest.mark.parametrize(
    ("typed", "response", "detail"),
    [
        ("coffee", "utter_product_ambiguous", "candidates"),
        ("smoked salmon", "utter_product_not_found_suggestions", "suggestions"),
        ("xylophone", "utter_product_not_found", "typed"),
        ("throw blanket", "utter_product_unavailable", "product"),
    ],
)
async def test_an_unusable_product_is_asked_again_with_the_reason(
    typed: str, response: str, detail: str
) -> None:
    said_, slots = await validate(
        ValidatePlaceOrderForm(), answer("place_order_form", ANA, {"product": typed})
    )
    assert [m["response"] for m in said_] == [response]
    assert said_[0][detail]
    assert slots["product"] is None


@pytest.mark.parametrize(("typed", "stored"), [("2", "2"), ("two", "2"), ("3 bags", "3")])
async def test_quantities_in_digits_or_words(typed: str, stored: str) -> None:
    _, slots = await validate(
        ValidatePlaceOrderForm(),
        answer("place_order_form", ANA, {"quantity": typed}, slots={"product": HOUSE_BLEND}),
    )
    assert slots["quantity"] == stored


@pytest.mark.parametrize("typed", ["0", "50", "lots"])
async def test_quantities_out_of_range_are_refused(typed: str) -> None:
    said_, slots = await validate(
        ValidatePlaceOrderForm(), answer("place_order_form", ANA, {"quantity": typed})
    )
    assert said_[0]["response"] == "utter_quantity_invalid"
    assert typed in said_[0]["problem"] or "20" in said_[0]["problem"]
    assert slots["quantity"] is None


@pytest.mark.parametrize("form", [ValidatePlaceOrderForm(), ValidateAddressForm()])
async def test_anonymous_visitors_are_asked_nothing(form: Any) -> None:
    said_, slots = await validate(form, answer(form.form_name(), None, {"product": "house blend"}))
    assert said_ == []
    assert slots["requested_slot"] is None


async def test_the_favourite_is_offered_only_to_someone_with_orders() -> None:
    message, _ = await run(ActionAskProduct(), said("place_order", ANA))
    assert message["response"] == "utter_what_product_with_favourite"
    assert message["favourite"] == HOUSE_BLEND
    message, _ = await run(ActionAskProduct(), said("place_order", DEV_NO_ADDRESS))
    assert message["response"] == "utter_what_product"
    message, _ = await run(ActionAskProduct(), said("place_order", None))
    assert message["response"] == "utter_what_product"


async def test_the_default_address_is_offered_then_kept_or_replaced() -> None:
    message, _ = await run(ActionAskAddressConfirmed(), said("place_order", ANA))
    assert message["response"] == "utter_confirm_default_address"
    assert message["delivery_address"] == "12 Elm St, Springfield 62701, US"

    form = ValidateAddressForm()
    kept = answer("address_form", ANA, {"address_confirmed": "yes"}, intent="affirm")
    said_, slots = await validate(form, kept)
    assert (said_, slots) == ([], {"address_confirmed": True, "requested_slot": None})

    other = answer("address_form", ANA, {"address_confirmed": "no"}, intent="deny")
    _, slots = await validate(form, other)
    assert slots == {"address_confirmed": False, "requested_slot": "address_line1"}

    unclear = answer("address_form", ANA, {"address_confirmed": "maybe tomorrow"})
    said_, slots = await validate(form, unclear)
    assert said_[0]["response"] == "utter_address_yes_or_no"
    assert slots == {"address_confirmed": None}  # Rasa asks the same slot again


async def test_without_a_default_address_the_parts_are_asked_first() -> None:
    message = answer("address_form", DEV_NO_ADDRESS, {"address_line1": "9 Birch Lane"})
    _, slots = await validate(ValidateAddressForm(), message)
    assert slots == {"address_line1": "9 Birch Lane", "requested_slot": "address_city"}


@pytest.mark.parametrize(
    ("slot", "typed", "stored", "problem"),
    [
        ("address_country", "France", "FR", None),
        ("address_country", "Narnia", None, "not a country we deliver to"),
        ("address_postal_code", "69003", "69003", None),
        ("address_postal_code", "6900", None, "for example 69002"),
        ("address_line1", "12345", None, "has no letters"),
        ("address_city", "   ", None, "must not be empty"),
    ],
)
async def test_each_address_part_is_checked(
    slot: str, typed: str, stored: str | None, problem: str | None
) -> None:
    slots = {"address_confirmed": False, "address_country": "FR"}
    said_, result = await validate(
        ValidateAddressForm(), answer("address_form", ANA, {slot: typed}, slots)
    )
    assert result[slot] == stored
    if problem is None:
        assert said_ == []
    else:
        assert said_[0]["response"] == "utter_address_part_invalid"
        assert problem in said_[0]["problem"]


async def test_an_order_is_proposed_then_placed_once_on_yes(demo_cdp: Engine) -> None:
    before = orders_of(demo_cdp, ANA)
    form_slots = {"product": HOUSE_BLEND, "quantity": "2", "address_confirmed": True}
    message, slots = await run(ActionProposeOrder(), said("affirm", ANA, slots=form_slots))
    assert message["response"] == "utter_confirm_order"
    assert (message["quantity"], message["total"]) == (2, "$64.00")
    assert message["delivery_address"].startswith("12 Elm St")
    assert slots == {"order_pending": "NWC-COF-HSE-1KG"}
    assert orders_of(demo_cdp, ANA) == before  # nothing written before the yes

    confirmed = {**form_slots, **slots}
    placed_ids = set()
    for _ in range(2):  # the same "yes" delivered twice
        message, cleared = await run(ActionPlaceOrder(), said("affirm", ANA, slots=confirmed))
        assert message["response"] == "utter_order_placed"
        placed_ids.add(message["new_order_id"])
        assert cleared["order_pending"] is None and cleared["product"] is None
    assert orders_of(demo_cdp, ANA) == before + 1
    with transaction(demo_cdp) as session:
        order = session.get(Order, placed_ids.pop())
        assert [(line.sku, line.quantity) for line in order.lines] == [("NWC-COF-HSE-1KG", 2)]
        assert order.delivery_address.line1 == "12 Elm St"


async def test_a_new_address_is_written_back_with_its_source(demo_cdp: Engine) -> None:
    slots = {"product": HOUSE_BLEND, "quantity": "1", **NEW_ADDRESS}
    message, pending = await run(ActionProposeOrder(), said("affirm", BEN, slots=slots))
    assert message["delivery_address"] == "5 Oak Road, Lyon 69003, FR"
    message, _ = await run(ActionPlaceOrder(), said("affirm", BEN, slots={**slots, **pending}))
    with transaction(demo_cdp) as session:
        assert session.get(Order, message["new_order_id"]).delivery_city == "Lyon"
        assert session.get(Profile, BEN).address_line1 == "5 Oak Road"
        provenance = session.get(AttributeValue, (BEN, "address"))
        assert (provenance.source, provenance.verified) == (IdentitySource.CONVERSATION, True)


async def test_declining_or_an_anonymous_yes_writes_nothing(demo_cdp: Engine) -> None:
    before = orders_of(demo_cdp, ANA)
    slots = {"product": HOUSE_BLEND, "quantity": "1", "order_pending": "NWC-COF-HSE-1KG"}
    message, cleared = await run(ActionDeclineOrder(), said("deny", ANA, slots=slots))
    assert message["response"] == "utter_order_declined"
    assert cleared["order_pending"] is None
    message, _ = await run(ActionPlaceOrder(), said("affirm", None, slots=slots))
    assert message["response"] == ANONYMOUS
    message, _ = await run(ActionProposeOrder(), said("affirm", None, slots=slots))
    assert message["response"] == ANONYMOUS
    assert orders_of(demo_cdp, ANA) == before


async def test_i_moved_saves_the_new_default_address(demo_cdp: Engine) -> None:
    message, cleared = await run(
        ActionSaveAddress(), said("change_address", ANA, slots=NEW_ADDRESS)
    )
    assert message["response"] == "utter_address_saved"
    assert all(value is None for value in cleared.values())
    with transaction(demo_cdp) as session:
        assert session.get(Profile, ANA).address_city == "Lyon"


@pytest.mark.parametrize(
    ("customer", "order_id", "response"),
    [
        (BEN, "o5011", "utter_order_address_changed"),
        (MARCUS, "O-5009", "utter_order_too_late_to_change"),
        (ANA, "O-5011", "utter_order_not_found"),
    ],
)
async def test_the_address_of_one_order(
    demo_cdp: Engine, customer: str, order_id: str, response: str
) -> None:
    request = said("change_address", customer, {"order_id": order_id}, slots=NEW_ADDRESS)
    message, _ = await run(ActionSaveAddress(), request)
    assert message["response"] == response
    with transaction(demo_cdp) as session:
        changed = session.get(Order, "O-5011").delivery_city == "Lyon"
        assert changed is (response == "utter_order_address_changed")
        assert session.get(Profile, customer).address_city != "Lyon"  # the account's stays


async def test_an_anonymous_address_change_writes_nothing(demo_cdp: Engine) -> None:
    message, _ = await run(ActionSaveAddress(), said("change_address", None, slots=NEW_ADDRESS))
    assert message["response"] == ANONYMOUS
    with transaction(demo_cdp) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Profile).where(Profile.address_city == "Lyon")
            )
            == 1
        )  # Chloé


async def test_an_incomplete_new_address_is_not_saved(demo_cdp: Engine) -> None:
    halfway = {"address_confirmed": False, "address_line1": "5 Oak Road"}
    message, cleared = await run(ActionSaveAddress(), said("deny", ANA, slots=halfway))
    assert message["response"] == "utter_address_unchanged"
    assert cleared["address_line1"] is None
    with transaction(demo_cdp) as session:
        assert session.get(Profile, ANA).address_line1 == "12 Elm St"
