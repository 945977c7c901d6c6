"""Satisfaction: a 1-5 rating at the end of a resolved conversation, stored as a CDP event
with how the conversation ended (resolved by the bot, handed off, abandoned).

The rating is asked only of a verified customer (the CDP keeps events per profile), once per
conversation turn that ends a flow; `conversation_outcome` says which flow resolved how.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, verified_customer_id
from actions.profile_forms import CustomerFormValidation, latest_intent
from cdp.clock import utcnow
from cdp.events.models import EventIn
from cdp.events.service import record_event

EVENT_TYPE = "satisfaction_rating"
OUTCOMES = ("resolved_by_bot", "handed_off", "abandoned")
SKIPPED = "skipped"
# What a flow left open; cleared when the customer walks away from it.
FLOW_SLOTS = (
    "contact_field",
    "new_email",
    "new_phone",
    "device_model",
    "troubleshoot_step",
    "step_worked",
    "conversation_outcome",
)
# Answers that decline to rate instead of giving a number.
SKIPPING_INTENTS = frozenset({"deny", "goodbye"})
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_RATING = re.compile(r"\b([1-5])\b|\b(one|two|three|four|five)\b", re.IGNORECASE)


def parse_rating(text: str) -> int | None:
    """The 1-5 rating in "4", "4 stars", "five!", "4/5"; None when there is none or it is out
    of range ("10", "0")."""
    found = _RATING.search(text or "")
    if found is None:
        return None
    digit, word = found.groups()
    return int(digit) if digit else _NUMBER_WORDS[word.lower()]


class ValidateSatisfactionForm(CustomerFormValidation):
    """One slot: the rating, or `skipped` when the customer would rather not."""

    needs_verified_customer = True

    def name(self) -> str:
        return "validate_satisfaction_form"

    async def extract_satisfaction_rating(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "satisfaction_rating":
            return {}
        if latest_intent(tracker) in SKIPPING_INTENTS:
            return {"satisfaction_rating": SKIPPED}
        entity = next(tracker.get_latest_entity_values("rating"), None)
        return {"satisfaction_rating": entity or (tracker.latest_message or {}).get("text")}

    def validate_satisfaction_rating(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == SKIPPED:
            return {"satisfaction_rating": SKIPPED}
        rating = parse_rating(str(value or ""))
        if rating is None:
            return self.reject(
                dispatcher, "satisfaction_rating", response="utter_invalid_rating", value=value
            )
        return {"satisfaction_rating": str(rating)}


def store_outcome(
    session: Session,
    customer_id: str | None,
    event_id: str,
    outcome: str,
    rating: int | None,
    channel: str | None,
    conversation_id: str,
) -> bool:
    """The `satisfaction_rating` event of a verified customer; False for anyone else, or for
    a redelivery of the same message."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return False
    return record_event(
        session,
        EventIn(
            event_id=event_id,
            customer_id=profile.customer_id,
            type=EVENT_TYPE,
            occurred_at=utcnow(),
            channel=channel,
            properties={"rating": rating, "outcome": outcome, "conversation_id": conversation_id},
        ),
    )


def _event_id(tracker: Tracker, kind: str) -> str:
    message_id = (tracker.latest_message or {}).get("message_id") or "none"
    return f"{kind}:{tracker.sender_id}:{message_id}"


class ActionRecordSatisfaction(Action):
    """Submit of the satisfaction form: stores the rating with the outcome, says thanks."""

    def name(self) -> str:
        return "action_record_satisfaction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        answer = tracker.get_slot("satisfaction_rating")
        outcome = tracker.get_slot("conversation_outcome")
        cleared = [SlotSet("satisfaction_rating", None), SlotSet("conversation_outcome", None)]
        rating = parse_rating(answer) if answer and answer != SKIPPED else None
        customer_id = verified_customer_id(tracker)
        if outcome in OUTCOMES and customer_id is not None:
            # A skipped rating still records how the conversation ended (rating null).
            channel = tracker.get_latest_input_channel()
            await in_cdp_transaction(
                lambda session: store_outcome(
                    session,
                    customer_id,
                    _event_id(tracker, "csat"),
                    outcome,
                    rating,
                    channel,
                    tracker.sender_id,
                )
            )
        if rating is None:
            dispatcher.utter_message(response="utter_goodbye")
        else:
            dispatcher.utter_message(response="utter_thanks_for_rating", rating=rating)
        return cleared


class ActionFlowAbandoned(Action):
    """The customer left in the middle of a flow: the outcome `abandoned`, without a rating."""

    def name(self) -> str:
        return "action_flow_abandoned"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        channel = tracker.get_latest_input_channel()
        await in_cdp_transaction(
            lambda session: store_outcome(
                session,
                customer_id,
                _event_id(tracker, "abandoned"),
                "abandoned",
                None,
                channel,
                tracker.sender_id,
            )
        )
        return [SlotSet(slot, None) for slot in FLOW_SLOTS]
