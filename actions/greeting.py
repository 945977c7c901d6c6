"""Greeting: an opener that uses what the CDP knows, by first name, for a verified customer;
neutral for anyone else.

A recent event the customer may be writing about (a failed payment, a password reset) turns
the greeting into a question about it; the customer's yes or no is answered by
`ActionOpenerAccepted` / `ActionOpenerDeclined`, only right after the opener (rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions import formatting
from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, verified_customer_id
from actions.session import CustomerContext, context_slots, customer_context
from cdp.clock import utcnow
from cdp.events.service import latest_event

OPENER_SLOT = "opener_topic"
# Events worth asking about, and for how long after they happened.
OPENER_TOPICS = {"payment_failed": timedelta(days=14), "password_reset": timedelta(days=7)}


def opener_topic(context: CustomerContext | None, now: datetime) -> str | None:
    """The recent last event the opener asks about, if any."""
    if context is None or context.last_event_at is None:
        return None
    window = OPENER_TOPICS.get(context.last_event or "")
    if window is None or now - context.last_event_at > window:
        return None
    return context.last_event


class ActionGreet(Action):
    """Greets; identity is checked on this message, so a token sent mid-session counts."""

    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        context = await in_cdp_transaction(lambda session: customer_context(session, customer_id))
        topic = opener_topic(context, utcnow())
        if context is None:
            dispatcher.utter_message(response="utter_greet_visitor")
        elif topic == "payment_failed":
            dispatcher.utter_message(
                response="utter_greet_payment_failed", first_name=context.first_name
            )
        elif topic == "password_reset":
            dispatcher.utter_message(
                response="utter_greet_password_reset", first_name=context.first_name
            )
        else:
            dispatcher.utter_message(response="utter_greet_customer", first_name=context.first_name)
        return [*context_slots(context), SlotSet(OPENER_SLOT, topic)]


@dataclass(frozen=True)
class FailedPayment:
    """The details of the last failed payment, as said to its (verified) owner."""

    order_id: str
    amount: str
    card_last4: str
    day: str


def failed_payment(session: Session, customer_id: str | None) -> FailedPayment | None:
    """The customer's last failed payment if it has the details to tell; None otherwise."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    event = latest_event(session, profile.customer_id, ("payment_failed",))
    properties = event.properties if event is not None else {}
    order_id, amount = properties.get("order_id"), properties.get("amount")
    currency, last4 = properties.get("currency"), properties.get("card_last4")
    if event is None or not all(isinstance(v, str) for v in (order_id, amount, currency, last4)):
        return None
    try:
        shown_amount = formatting.money(amount, currency)
    except ArithmeticError:  # an amount that is not a number: say it without the details
        return None
    return FailedPayment(order_id, shown_amount, last4, formatting.day(event.occurred_at))


class ActionOpenerAccepted(Action):
    """Yes to the opener: the failed payment's details and how to pay, or account help."""

    def name(self) -> str:
        return "action_opener_accepted"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        topic = tracker.get_slot(OPENER_SLOT)
        if topic == "password_reset":
            dispatcher.utter_message(response="utter_account_help")
            return [SlotSet(OPENER_SLOT, None)]
        customer_id = verified_customer_id(tracker)
        payment = await in_cdp_transaction(lambda session: failed_payment(session, customer_id))
        if payment is None:
            dispatcher.utter_message(response="utter_payment_failed_generic")
        else:
            dispatcher.utter_message(
                response="utter_payment_failed_details",
                order_id=payment.order_id,
                amount=payment.amount,
                card_last4=payment.card_last4,
                day=payment.day,
            )
        return [SlotSet(OPENER_SLOT, None)]


class ActionOpenerDeclined(Action):
    """No to the opener: drop the topic and ask what the customer came for."""

    def name(self) -> str:
        return "action_opener_declined"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_opener_declined")
        return [SlotSet(OPENER_SLOT, None)]
