"""A person is always reachable: say how, and note the request on the customer's CDP record.

The live handoff to an agent console replaces the contact details later; the event recorded
here is already what the service reports count.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, verified_customer_id
from cdp.events.models import EventIn
from cdp.events.service import record_event


def note_contact_request(
    session: Session,
    customer_id: str | None,
    conversation_id: str,
    message_id: str | None,
    channel: str | None,
) -> None:
    profile = identified_profile(session, customer_id)
    if profile is None:
        return
    record_event(
        session,
        EventIn(
            # One event per request message: a retried action does not count twice.
            event_id=f"human-contact:{conversation_id}:{message_id or 'none'}",
            customer_id=profile.customer_id,
            type="human_contact_requested",
            occurred_at=datetime.now(timezone.utc),
            channel=channel,
            properties={"conversation_id": conversation_id},
        ),
    )


class ActionContactHuman(Action):
    """Tells the customer how to reach a person right away."""

    def name(self) -> str:
        return "action_contact_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        message_id = tracker.latest_message.get("message_id")
        channel = tracker.get_latest_input_channel()
        await in_cdp_transaction(
            lambda session: note_contact_request(
                session, customer_id, tracker.sender_id, message_id, channel
            )
        )
        dispatcher.utter_message(response="utter_human_contact")
        return []
