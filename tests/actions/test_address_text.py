"""An address written into the "I moved" message fills the address form instead of questions."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.address import ValidateAddressForm
from actions.address_text import address_in_text
from tests.actions.order_messages import said
from tests.actions.test_orders_forms import answer, validate

ANA = "C-1001"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            "i moved, new adress is 12 Elm St, Springfield 62704",
            {"line1": "12 Elm St", "city": "Springfield", "postal_code": "62704"},
        ),
        (
            "new address: 5 Oak Road, Lyon 69003, France",
            {"line1": "5 Oak Road", "city": "Lyon", "postal_code": "69003", "country": "FR"},
        ),
        (
            "please change my address to 221B Baker Street, London NW1 6XE, UK",
            {"line1": "221B Baker Street", "city": "London", "postal_code": "NW1 6XE",
             "country": "GB"},
        ),
        (
            "we moved to 480 Congress Ave Apt 5B, Austin, TX 78701, USA",
            {"line1": "480 Congress Ave Apt 5B", "city": "Austin", "postal_code": "78701",
             "country": "US"},
        ),
        (
            "new place: 14 Rue Victor Hugo, 75001 Paris",
            {"line1": "14 Rue Victor Hugo", "city": "Paris", "postal_code": "75001"},
        ),
        ("12 Elm St, Springfield", {"line1": "12 Elm St", "city": "Springfield"}),
        ("i moved", {}),
        ("i moved 2 weeks ago", {}),
        ("moved to 3 Main St", {}),
    ],
)  # fmt: skip
def test_the_parts_a_message_spells_out(text: str, parts: dict[str, str]) -> None:
    assert address_in_text(text) == {f"address_{name}": value for name, value in parts.items()}


def moved(text: str, customer: str | None = ANA) -> Tracker:
    """The change_address request as the address form sees it when it starts."""
    message = said("change_address", customer, slots={"address_confirmed": False})
    message.latest_message["text"] = text
    message.slots["requested_slot"] = None
    message.events.append({"event": "slot", "name": "address_confirmed", "value": False})
    message.active_loop = {"name": "address_form"}
    return message


@pytest.mark.usefixtures("demo_cdp")
async def test_a_full_address_in_the_request_fills_the_form() -> None:
    said_, slots = await validate(
        ValidateAddressForm(), moved("i moved, it's 5 Oak Road, Lyon 69003, France")
    )
    assert said_ == []
    assert slots == {
        "address_line1": "5 Oak Road",
        "address_city": "Lyon",
        "address_country": "FR",
        "address_postal_code": "69003",
        "requested_slot": None,
    }


@pytest.mark.usefixtures("demo_cdp")
async def test_without_the_country_only_the_country_is_asked_then_the_code_checked() -> None:
    said_, slots = await validate(
        ValidateAddressForm(), moved("i moved, new adress is 12 Elm St, Springfield 62704")
    )
    assert said_ == []
    assert slots["address_postal_code"] == "62704"
    assert slots["requested_slot"] == "address_country"

    so_far = {"address_confirmed": False, **slots}
    del so_far["requested_slot"]
    fits = answer("address_form", ANA, {"address_country": "usa"}, so_far)
    said_, slots = await validate(ValidateAddressForm(), fits)
    assert said_ == []
    assert slots["address_country"] == "US"
    assert slots["requested_slot"] is None

    other: dict[str, Any] = answer("address_form", ANA, {"address_country": "Canada"}, so_far)
    said_, slots = await validate(ValidateAddressForm(), other)
    assert said_[0]["response"] == "utter_address_part_invalid"
    assert "not a postal code of CA" in said_[0]["problem"]
    assert (slots["address_postal_code"], slots["requested_slot"]) == (None, "address_postal_code")


@pytest.mark.usefixtures("demo_cdp")
async def test_a_request_without_an_address_asks_every_part() -> None:
    said_, slots = await validate(ValidateAddressForm(), moved("i moved house last month"))
    assert said_ == []
    assert slots == {"requested_slot": "address_line1"}


@pytest.mark.usefixtures("demo_cdp")
async def test_an_address_in_a_later_answer_is_not_parsed_again() -> None:
    line = "9 Birch Lane, Leeds LS6 2QB"
    halfway = answer("address_form", ANA, {"address_line1": line}, {"address_confirmed": False})
    _, slots = await validate(ValidateAddressForm(), halfway)
    assert slots["address_line1"] == line
    assert slots["requested_slot"] == "address_city"
