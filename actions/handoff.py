"""Handing a conversation to a person and back: the bot side of issue 5.

`start_handoff` is the one entry point for every trigger (the customer asking, fallbacks,
frustration, policy); it stores the handoff with its package and routing and returns the
state the `handoff_state` slot must mirror. While that slot says a person owns the
conversation, Rasa (rasa_ext/handoff.py) only logs and forwards customer messages. The console
runs `action_handoff_relay` and `action_handoff_ended` through Rasa's HTTP API
(`POST /conversations/{id}/execute?output_channel=latest`), so agent replies go out on the
customer's own channel; both actions read what to say from the CDP and say it at most once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import requests
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile
from cdp.handoff import config
from cdp.handoff.models import OPEN_STATES, HandoffState, ReasonCode
from cdp.handoff.package import HandoffRequest
from cdp.handoff.service import (
    claim_relay,
    last_closed_handoff,
    mark_bot_told,
    messages_of,
    open_handoff,
    record_followup,
    request_handoff,
)

logger = logging.getLogger(__name__)
SLOT = "handoff_state"
NOTIFY_TIMEOUT_SECONDS = 1.0


def handoff_request(tracker: Tracker, reason: ReasonCode, detail: str | None) -> HandoffRequest:
    """What the bot knows at the moment of the request, as plain values."""
    latest = tracker.latest_message or {}
    intent = latest.get("intent") or {}
    metadata = latest.get("metadata") or {}
    return HandoffRequest(
        conversation_id=tracker.sender_id,
        message_id=latest.get("message_id"),
        reason=reason.value,
        requested_at=datetime.now(timezone.utc),
        channel=tracker.get_latest_input_channel(),
        language=metadata.get("language") if isinstance(metadata, dict) else None,
        intent=intent.get("name"),
        confidence=intent.get("confidence"),
        entities=list(latest.get("entities") or []),
        metadata=metadata if isinstance(metadata, dict) else {},
        events=list(tracker.events),
        detail=detail,
    )


def _notify_console(handoff_id: str) -> None:
    """Tell the console at once (it also polls, so a lost notice only delays the queue)."""
    url = config.console_url()
    if url is None:
        return
    try:
        requests.post(
            f"{url}/api/internal/handoffs/{handoff_id}/notify",
            headers={"X-Handoff-Token": config.console_token()},
            timeout=NOTIFY_TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        logger.warning("console not told about handoff %s: %s", handoff_id, error)


async def start_handoff(
    tracker: Tracker,
    customer_id: str | None,
    reason: ReasonCode,
    detail: str | None = None,
    extra_work: Callable[[Session], None] | None = None,
) -> HandoffState:
    """Create (or find) the conversation's handoff and return its state.

    `extra_work(session)` runs in the same transaction, so a trigger's own bookkeeping and
    the handoff are stored together or not at all.
    """
    request = handoff_request(tracker, reason, detail)
    table = config.routing_table()
    accept_within = config.accept_timeout()

    def work(session: Session) -> tuple[str, HandoffState, bool]:
        if extra_work is not None:
            extra_work(session)
        # A token's customer id or a verified channel identity (SMS, Messenger, a session
        # linked by a one-time code) both become the profile; anything else is anonymous.
        profile = identified_profile(session, customer_id)
        known = profile.customer_id if profile else None
        handoff, created = request_handoff(session, request, known, table, accept_within)
        return handoff.id, handoff.state, created

    handoff_id, state, created = await in_cdp_transaction(work)
    if created:
        await asyncio.to_thread(_notify_console, handoff_id)
    return state


def slot_for(state: HandoffState) -> str | None:
    return state.value if state in OPEN_STATES else None


def relay_pending(session: Session, conversation_id: str, now: datetime) -> list[str]:
    """Texts of the agent replies not yet uttered, oldest first, each claimed exactly once."""
    handoff = open_handoff(session, conversation_id)
    if handoff is None:
        return []
    texts = []
    for message in messages_of(session, handoff.id):
        if message.relayed_at is None and message.author.value == "agent":
            claimed = claim_relay(session, message.id, now)
            if claimed is not None:
                texts.append(claimed.text)
    return texts


def ending_to_announce(
    session: Session, conversation_id: str, now: datetime
) -> HandoffState | None:
    """How the last handoff ended, if that was not announced yet; None otherwise."""
    if open_handoff(session, conversation_id) is not None:
        return None
    handoff = last_closed_handoff(session, conversation_id)
    if handoff is None or handoff.bot_notified_at is not None:
        return None
    mark_bot_told(session, handoff.id, now)
    return handoff.state


class ActionHandoffRelay(Action):
    """Sends the agent's replies to the customer on the channel they wrote from."""

    def name(self) -> str:
        return "action_handoff_relay"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        now = datetime.now(timezone.utc)
        texts = await in_cdp_transaction(
            lambda session: relay_pending(session, tracker.sender_id, now)
        )
        for text in texts:
            dispatcher.utter_message(text=text)
        # Run outside a prediction: end as if listening, so the next turn's rules apply.
        return [ActionExecuted("action_listen")]


class ActionHandoffEnded(Action):
    """The bot takes the conversation back: clears the slot and says so once."""

    def name(self) -> str:
        return "action_handoff_ended"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        now = datetime.now(timezone.utc)

        def work(session: Session) -> tuple[HandoffState | None, str | None]:
            current = open_handoff(session, tracker.sender_id)
            if current is not None:
                return None, current.state.value
            return ending_to_announce(session, tracker.sender_id, now), None

        ended, still_open = await in_cdp_transaction(work)
        if ended is HandoffState.ABANDONED:
            dispatcher.utter_message(response="utter_handoff_unavailable")
        elif ended is not None:
            dispatcher.utter_message(response="utter_handoff_back_with_bot")
        return [SlotSet(SLOT, still_open), ActionExecuted("action_listen")]


class ActionHandoffFollowup(Action):
    """After nobody could take the conversation: the customer picks a callback or a ticket."""

    def name(self) -> str:
        return "action_handoff_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        choice = next(tracker.get_latest_entity_values("followup"), None)
        if choice not in ("callback", "ticket"):
            choice = "ticket"
        now = datetime.now(timezone.utc)

        def work(session: Session) -> None:
            handoff = last_closed_handoff(session, tracker.sender_id)
            if handoff is not None and handoff.state is HandoffState.ABANDONED:
                record_followup(session, handoff.id, choice, now)

        await in_cdp_transaction(work)
        if choice == "callback":
            dispatcher.utter_message(response="utter_handoff_followup_callback")
        else:
            dispatcher.utter_message(response="utter_handoff_followup_ticket")
        return []
