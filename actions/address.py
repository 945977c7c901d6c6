"""The delivery address form: confirm the default address from the profile, or give another.

`address_form` serves a new order (`address_purpose: order`, the order flow writes the
address when the customer confirms the order), a replacement store card (`card`,
actions/store_card.py) and "I moved" (`change_address`, `address_purpose: account`): then
`action_save_address` writes the address to the profile, or to the unshipped order named in
the request. An address spelled out in the "I moved" message itself fills the form at once
(actions/address_text.py). Each part is validated as it comes: street and city as text, the
country among those we deliver to, the postal code in that country's format
(cdp/definitions/postal_codes.yml; a code given before the country is checked once the
country is known). The profile's address is written with its source (`conversation`) and as
verified: only a verified customer gets this far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions import formatting
from actions.address_text import address_in_text
from actions.anonymous import tell_anonymous
from actions.cdp_access import in_cdp_transaction
from actions.forms import CdpFormValidationAction, FormContext
from actions.identity import identified_profile, verified_customer_id
from actions.order_lookup import ORDER_ID_ENTITY, Answer
from cdp.addresses import CITY_MAX_LENGTH, LINE_MAX_LENGTH, Address, make_address
from cdp.errors import InvalidValue, OrderNotFound
from cdp.identities.models import IdentitySource
from cdp.orders.errors import OrderTooLate
from cdp.orders.service import change_delivery_address, normalise_order_ref
from cdp.postal_codes import clean_postal_code, delivery_country, postal_rules
from cdp.profiles.models import Profile, ProfileAttributes
from cdp.profiles.service import upsert_profile
from cdp.store_card import holds_store_card
from cdp.validation import clean_text

CONFIRMED = "address_confirmed"
LINE1, CITY, COUNTRY, POSTAL_CODE = (
    "address_line1",
    "address_city",
    "address_country",
    "address_postal_code",
)
PARTS = [LINE1, CITY, COUNTRY, POSTAL_CODE]
# Set by the triggering intent (place_order: order, replace_card: card, change_address:
# account) and never cleared: it only decides which action follows the completed form.
PURPOSE = "address_purpose"
CARD_PURPOSE = "card"
ADDRESS_SLOTS = (CONFIRMED, *PARTS)
CHANGE_ADDRESS_INTENT = "change_address"


def address_from_slots(slots: dict[str, Any]) -> Address | None:
    """The new address the form collected; None when the default was kept (or none given)."""
    if slots.get(CONFIRMED) is True or not all(slots.get(part) for part in PARTS):
        return None
    return make_address(
        line1=slots[LINE1],
        city=slots[CITY],
        postal_code=slots[POSTAL_CODE],
        country=slots[COUNTRY],
    )


def save_profile_address(session: Session, customer_id: str, address: Address) -> None:
    """Write the default address the verified customer gave in the chat, with its source."""
    upsert_profile(
        session,
        customer_id,
        ProfileAttributes(address=address, verified=True),
        source=IdentitySource.CONVERSATION,
    )


@dataclass(frozen=True)
class AddressFormContext(FormContext):
    """Whether the profile has a default address to offer, and whether to ask at all (a
    replacement card needs a card to replace)."""

    has_default: bool = False
    asks: bool = True


def _answer_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


class ValidateAddressForm(CdpFormValidationAction[AddressFormContext]):
    """Yes or no to the default address; otherwise street, city, country and postal code."""

    def name(self) -> str:
        return "validate_address_form"

    def load(
        self,
        session: Session,
        profile: Profile | None,
        candidates: dict[str, Any],
        tracker: Tracker,
    ) -> AddressFormContext:
        if profile is None:
            return AddressFormContext(None)
        asks = tracker.get_slot(PURPOSE) != CARD_PURPOSE or holds_store_card(
            session, profile.customer_id
        )
        return AddressFormContext(profile.customer_id, profile.address is not None, asks)

    def slots_to_ask(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        if not self.context.asks:
            return []
        confirmed = tracker.get_slot(CONFIRMED)
        if confirmed is True:
            return [CONFIRMED]
        if confirmed is False or not self.context.has_default:
            return PARTS
        return [CONFIRMED, *PARTS]

    def extract_address_line1(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The parts of an address written into the request itself, when the form starts."""
        message = tracker.latest_message or {}
        starting = tracker.get_slot("requested_slot") is None and not tracker.get_slot(LINE1)
        if not starting or _answer_intent(tracker) != CHANGE_ADDRESS_INTENT:
            return {}
        return address_in_text(message.get("text") or "")

    def validate_address_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, bool):
            return {CONFIRMED: value}
        intent = _answer_intent(tracker)
        if intent in ("affirm", "deny"):
            return {CONFIRMED: intent == "affirm"}
        return self.reject(dispatcher, CONFIRMED, response="utter_address_yes_or_no")

    def _text_part(
        self, slot: str, value: Any, max_length: int, dispatcher: CollectingDispatcher
    ) -> dict[str, Any]:
        try:
            text = clean_text(value, max_length=max_length)
        except InvalidValue as error:
            return self.reject(
                dispatcher, slot, response="utter_address_part_invalid", problem=str(error)
            )
        if not any(character.isalpha() for character in text):
            problem = f"{text!r} has no letters in it"
            return self.reject(
                dispatcher, slot, response="utter_address_part_invalid", problem=problem
            )
        return {slot: text}

    def validate_address_line1(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text_part(LINE1, value, LINE_MAX_LENGTH, dispatcher)

    def validate_address_city(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text_part(CITY, value, CITY_MAX_LENGTH, dispatcher)

    def validate_address_country(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            country = delivery_country(value)
        except InvalidValue as error:
            return self.reject(
                dispatcher, COUNTRY, response="utter_address_part_invalid", problem=error.reason
            )
        postal_code = tracker.get_slot(POSTAL_CODE)
        if not postal_code:
            return {COUNTRY: country}
        # A postal code the customer gave before the country is checked now.
        try:
            return {COUNTRY: country, POSTAL_CODE: clean_postal_code(country, postal_code)}
        except InvalidValue as error:
            dispatcher.utter_message(response="utter_address_part_invalid", problem=error.reason)
            return {COUNTRY: country, POSTAL_CODE: None}

    def validate_address_postal_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            country = delivery_country(tracker.get_slot(COUNTRY))
        except InvalidValue:
            country = None
        # Without a country yet (a code written into the request), any delivery country's
        # format will do for now; validate_address_country checks it against the country.
        countries = [country] if country else list(postal_rules())
        problem = None
        for code in countries:
            try:
                return {POSTAL_CODE: clean_postal_code(code, value)}
            except InvalidValue as error:
                problem = problem or error.reason
        return self.reject(
            dispatcher, POSTAL_CODE, response="utter_address_part_invalid", problem=problem
        )


class ActionAskAddressConfirmed(Action):
    """Offers the profile's default address: deliver there, or give another one."""

    def name(self) -> str:
        return "action_ask_address_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)

        def read(session: Session) -> str | None:
            profile = identified_profile(session, customer_id)
            if profile is None:
                return None
            return formatting.address(profile.address) or "the address on your account"

        default = await in_cdp_transaction(read)
        if default is None:
            tell_anonymous(dispatcher)
        elif tracker.get_slot(PURPOSE) == CARD_PURPOSE:
            dispatcher.utter_message(
                response="utter_confirm_card_address", delivery_address=default
            )
        else:
            dispatcher.utter_message(
                response="utter_confirm_default_address", delivery_address=default
            )
        return []


def trigger_order_ref(tracker: Tracker) -> str | None:
    """The order id given with the latest change_address request, if any."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        if (parse.get("intent") or {}).get("name") != CHANGE_ADDRESS_INTENT:
            continue
        return next(
            (
                e.get("value")
                for e in parse.get("entities") or []
                if e.get("entity") == ORDER_ID_ENTITY
            ),
            None,
        )
    return None


def save_address(
    session: Session, customer_id: str | None, slots: dict[str, Any], order_ref: str | None
) -> Answer | None:
    """Write the new address to the order named, or to the profile; what to answer."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    address = address_from_slots(slots)
    if address is None:
        return Answer(response="utter_address_unchanged", variables={})
    shown = formatting.address(address)
    if order_ref is None:
        save_profile_address(session, profile.customer_id, address)
        return Answer(response="utter_address_saved", variables={"delivery_address": shown})
    order_id = normalise_order_ref(order_ref) or order_ref
    try:
        change_delivery_address(session, profile.customer_id, order_id, address)
    except OrderNotFound:
        return Answer(response="utter_order_not_found", variables={"order_ref": order_ref})
    except OrderTooLate as error:
        return Answer(
            response="utter_order_too_late_to_change",
            variables={"order_id": order_id, "status": error.status},
        )
    return Answer(
        response="utter_order_address_changed",
        variables={"order_id": order_id, "delivery_address": shown},
    )


class ActionSaveAddress(Action):
    """Writes the address from the form to the profile or to the order the customer named."""

    def name(self) -> str:
        return "action_save_address"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        slots = dict(tracker.slots)
        order_ref = trigger_order_ref(tracker)
        answer = await in_cdp_transaction(
            lambda session: save_address(session, customer_id, slots, order_ref)
        )
        if answer is None:
            tell_anonymous(dispatcher)
        else:
            dispatcher.utter_message(response=answer.response, **answer.variables)
        return [SlotSet(slot, None) for slot in ADDRESS_SLOTS]
