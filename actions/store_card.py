"""A replacement store card: why it is needed, where it goes, and the request for the card team.

`card_replacement_form` asks the reason (lost, stolen or damaged; a stolen card also gets the
note that the old one will be blocked), then `address_form` (`address_purpose: card`) offers
the default address from the profile, or takes another. `action_request_card_replacement`
then records the request and writes the confirmed address back to the profile with its
source (`conversation`), in one transaction and once per confirming message. Only a verified
customer who holds a store card is asked anything: for anyone else both forms end at once and
the request action explains why.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions import formatting
from actions.address import ADDRESS_SLOTS, address_from_slots, save_profile_address
from actions.anonymous import tell_anonymous
from actions.cdp_access import in_cdp_transaction
from actions.forms import CdpFormValidationAction, FormContext
from actions.identity import identified_profile, verified_customer_id
from actions.order_lookup import Answer, request_key
from cdp.errors import CdpError
from cdp.identities.models import IdentitySource
from cdp.profiles.models import Profile
from cdp.store_card import CardReason, holds_store_card, request_card_replacement

logger = logging.getLogger(__name__)

REASON_SLOT = "card_reason"
# Words customers use for each reason, checked in this order: "my lost card was stolen" is a
# stolen card, and a stolen card is the one that must be blocked.
REASON_WORDS: tuple[tuple[CardReason, tuple[str, ...]], ...] = (
    (
        CardReason.STOLEN,
        ("stolen", "stole", "steal", "nicked", "robbed", "theft", "thief", "pickpocket",
         "pickpocketed", "mugged", "taken"),
    ),
    (
        CardReason.DAMAGED,
        ("damaged", "damage", "broken", "broke", "cracked", "snapped", "bent", "scratched",
         "worn", "melted", "torn", "chewed", "faded", "demagnetised", "demagnetized",
         "doesnt work", "wont work", "not working", "stopped working", "chip"),
    ),
    (
        CardReason.LOST,
        ("lost", "lose", "losing", "misplaced", "missing", "cant find", "cannot find",
         "dropped", "gone", "left it"),
    ),
)  # fmt: skip


def card_reason(value: Any) -> CardReason | None:
    """The reason a typed answer or an entity names, or None when it names none.

    The NLU may mark two spans ("been", "stolen"): Rasa then fills the slot with a list."""
    if isinstance(value, list):
        value = " ".join(part for part in value if isinstance(part, str))
    if not isinstance(value, str):
        return None
    # Apostrophes dropped ("can't" is "cant"), then words only.
    text = " ".join(re.findall(r"[a-z]+", re.sub(r"['\u2019]", "", value.lower())))
    for reason, words in REASON_WORDS:
        if any(re.search(rf"\b{word}\b", text) for word in words):
            return reason
    return None


@dataclass(frozen=True)
class CardFormContext(FormContext):
    """Whether the verified customer holds a store card to replace."""

    holder: bool = False


def card_holder(session: Session, profile: Profile | None) -> bool:
    return profile is not None and holds_store_card(session, profile.customer_id)


class ValidateCardReplacementForm(CdpFormValidationAction[CardFormContext]):
    """Asks why the card needs replacing; nothing for a visitor or someone without a card."""

    def name(self) -> str:
        return "validate_card_replacement_form"

    def load(
        self,
        session: Session,
        profile: Profile | None,
        candidates: dict[str, Any],
        tracker: Tracker,
    ) -> CardFormContext:
        if profile is None:
            return CardFormContext(None)
        return CardFormContext(profile.customer_id, card_holder(session, profile))

    def slots_to_ask(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        return domain_slots if self.context.holder else []

    def validate_card_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        reason = card_reason(value)
        if reason is None:
            if tracker.get_slot("requested_slot") is None:  # the request itself: just ask
                return {REASON_SLOT: None}
            return self.reject(dispatcher, REASON_SLOT, response="utter_card_reason_unclear")
        if reason is CardReason.STOLEN:
            dispatcher.utter_message(response="utter_card_stolen_note")
        return {REASON_SLOT: reason.value}


def replacement_answer(
    session: Session,
    customer_id: str | None,
    slots: dict[str, Any],
    key: str,
    channel: str | None,
) -> Answer | None:
    """Record the request and the address it goes to; what to answer. None: anonymous."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    if not holds_store_card(session, profile.customer_id):
        return Answer(response="utter_card_not_holder")
    reason = card_reason(slots.get(REASON_SLOT))
    new_address = address_from_slots(slots)
    address = new_address or profile.address
    if reason is None or address is None:  # the form was left before it was complete
        return Answer(response="utter_card_replacement_dropped")
    recorded = request_card_replacement(
        session,
        profile.customer_id,
        key,
        reason,
        address,
        address_source=IdentitySource.CONVERSATION.value,
        channel=channel,
    )
    if recorded:
        # The confirmed address goes back to the profile as given by the verified customer:
        # a new one replaces the default, a kept one gains that provenance if it lacked it.
        save_profile_address(session, profile.customer_id, address)
    if reason is CardReason.STOLEN:
        answer = Answer(response="utter_card_replacement_requested_stolen")
    else:
        answer = Answer(response="utter_card_replacement_requested")
    return answer.with_variables(delivery_address=formatting.address(address))


def clear_card_slots() -> list[EventType]:
    return [SlotSet(slot, None) for slot in (REASON_SLOT, *ADDRESS_SLOTS)]


class ActionRequestCardReplacement(Action):
    """Records the replacement request (once per confirming message) and the confirmed address."""

    def name(self) -> str:
        return "action_request_card_replacement"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        slots = dict(tracker.slots)
        key, channel = request_key(tracker), tracker.get_latest_input_channel()
        try:
            answer = await in_cdp_transaction(
                lambda session: replacement_answer(session, customer_id, slots, key, channel)
            )
        except (CdpError, SQLAlchemyError):
            logger.exception("recording a card replacement for %s failed", customer_id)
            answer = Answer(response="utter_card_replacement_unavailable")
        if answer is None:
            tell_anonymous(dispatcher)
        else:
            dispatcher.utter_message(response=answer.response, **answer.variables)
        return clear_card_slots()


class ActionDropCardReplacement(Action):
    """A "no" while asked for the reason: nothing is requested or written."""

    def name(self) -> str:
        return "action_drop_card_replacement"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_card_replacement_dropped")
        return clear_card_slots()
