"""Session start: recognise the customer once and seed the slots that responses use."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.handoff import SLOT as HANDOFF_SLOT
from actions.identity import identified_profile, verified_customer_id

# While a person owns the conversation a new session must not hand it back to the bot: the
# console ends the handoff, not the session timeout (docs/handoff.md).
HUMAN_OWNED_STATES = ("requested", "accepted")


def customer_slots(session: Session, customer_id: str | None) -> list[EventType]:
    """`customer_id` and `first_name` of a known customer; both cleared for anyone else."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return [SlotSet("customer_id", None), SlotSet("first_name", None)]
    return [SlotSet("customer_id", profile.customer_id), SlotSet("first_name", profile.first_name)]


class ActionSessionStart(Action):
    """Starts every session with slots from the profile of the verified customer, if any."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker, at_session_start=True)
        slots = await in_cdp_transaction(lambda session: customer_slots(session, customer_id))
        metadata = tracker.get_slot("session_started_metadata")
        handoff_state = tracker.get_slot(HANDOFF_SLOT)
        carried = (
            [SlotSet(HANDOFF_SLOT, handoff_state)] if handoff_state in HUMAN_OWNED_STATES else []
        )
        return [
            SessionStarted(),
            # Rasa resets every slot at session start, including the metadata it just set.
            SlotSet("session_started_metadata", metadata),
            *slots,
            *carried,
            ActionExecuted("action_listen"),
        ]
