"""Session start: recognise the customer once and seed the slots that responses use
(name, membership tier, language, the last CDP event)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.handoff import SLOT as HANDOFF_SLOT
from actions.identity import identified_profile, verified_customer_id
from cdp.profiles.context import profile_context

# While a person owns the conversation a new session must not hand it back to the bot: the
# console ends the handoff, not the session timeout (docs/handoff.md).
HUMAN_OWNED_STATES = ("requested", "accepted")


# Slots the session seeds from the profile; every one is cleared for an anonymous visitor.
PROFILE_SLOTS = ("customer_id", "first_name", "membership_tier", "language", "last_event")


@dataclass(frozen=True)
class CustomerContext:
    """What the opener and the responses need about the customer, read in one transaction."""

    customer_id: str
    first_name: str | None
    membership_tier: str | None
    language: str | None
    last_event: str | None
    last_event_at: datetime | None


def customer_context(session: Session, customer_id: str | None) -> CustomerContext | None:
    """The context of a verified customer; None for anyone else."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    context = profile_context(session, profile.customer_id)
    if context is None:  # the profile was merged away between the two reads
        return None
    tier = context.custom.get("membership_tier")
    return CustomerContext(
        customer_id=profile.customer_id,
        first_name=profile.first_name,
        membership_tier=tier.value if tier else None,
        language=profile.language,
        last_event=context.computed.get("last_event"),
        last_event_at=context.computed_times.get("last_event"),
    )


def context_slots(context: CustomerContext | None) -> list[EventType]:
    """The profile slots of a known customer; all cleared for anyone else."""
    if context is None:
        return [SlotSet(name, None) for name in PROFILE_SLOTS]
    return [SlotSet(name, getattr(context, name)) for name in PROFILE_SLOTS]


class ActionSessionStart(Action):
    """Starts every session with slots from the profile of the verified customer, if any."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker, at_session_start=True)
        context = await in_cdp_transaction(lambda session: customer_context(session, customer_id))
        metadata = tracker.get_slot("session_started_metadata")
        handoff_state = tracker.get_slot(HANDOFF_SLOT)
        carried = (
            [SlotSet(HANDOFF_SLOT, handoff_state)] if handoff_state in HUMAN_OWNED_STATES else []
        )
        return [
            SessionStarted(),
            # Rasa resets every slot at session start, including the metadata it just set.
            SlotSet("session_started_metadata", metadata),
            *context_slots(context),
            *carried,
            ActionExecuted("action_listen"),
        ]
