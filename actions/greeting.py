"""Greeting: by first name for a verified customer, neutral for anyone else."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.cdp_access import in_cdp_transaction
from actions.identity import verified_customer_id
from actions.session import customer_slots


class ActionGreet(Action):
    """Greets; identity is checked on this message, so a token sent mid-session counts."""

    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        slots = await in_cdp_transaction(lambda session: customer_slots(session, customer_id))
        first_name = next(e["value"] for e in slots if e["name"] == "first_name")
        if first_name:
            dispatcher.utter_message(response="utter_greet_customer", first_name=first_name)
        else:
            dispatcher.utter_message(response="utter_greet_visitor")
        return slots
