"""A person is always reachable: hand the conversation to an agent, note it on the CDP record.

The handoff itself (package, routing, ownership) is `actions.handoff.start_handoff`; the
`human_contact_requested` event recorded here is what the service reports count.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.handoff import SLOT, slot_for, start_handoff
from actions.identity import identified_profile, verified_customer_id
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.handoff.models import OPEN_STATES, ReasonCode


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
    """Hands the conversation to a person, or offers a callback or ticket if nobody can take it."""

    def name(self) -> str:
        return "action_contact_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        message_id = tracker.latest_message.get("message_id")
        channel = tracker.get_latest_input_channel()
        state = await start_handoff(
            tracker,
            customer_id,
            ReasonCode.USER_REQUESTED,
            extra_work=lambda session: note_contact_request(
                session, customer_id, tracker.sender_id, message_id, channel
            ),
        )
        if state in OPEN_STATES:
            dispatcher.utter_message(response="utter_human_contact")
        else:
            dispatcher.utter_message(response="utter_handoff_unavailable")
        events: list[EventType] = [SlotSet(SLOT, slot_for(state))]
        if tracker.active_loop_name:
            # Asked for a person in the middle of a form: the form ends here rather than ask
            # its next question over the person (docs/conversation-design.md).
            events.append(ActiveLoop(None))
        return events
