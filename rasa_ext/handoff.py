"""While a person owns a conversation, Rasa only logs the customer's messages and forwards them.

The `handoff_state` slot (set by the handoff actions, docs/handoff.md) is read from the tracker
Rasa loads for every message anyway, so a normal turn costs nothing extra. When it says
`requested` or `accepted`, the message is classified and stored (the agent sees the intent),
no action is predicted, no bot reply is sent, and the message is POSTed to the agent console
in the background (idempotent there on the message id; retried a few times).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import aiohttp
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.data import TrainingType

logger = logging.getLogger(__name__)
SLOT = "handoff_state"
HUMAN_STATES = ("requested", "accepted")
RETRY_DELAYS_SECONDS = (0.2, 1.0, 3.0)
_pending: set[asyncio.Task[None]] = set()


def human_owns(tracker: DialogueStateTracker) -> bool:
    slot = tracker.slots.get(SLOT)
    return slot is not None and slot.value in HUMAN_STATES


def forwarded_message(tracker: DialogueStateTracker) -> dict[str, Any]:
    latest = tracker.latest_message
    intent = latest.intent if latest else {}
    return {
        "conversation_id": tracker.sender_id,
        "message_id": latest.message_id if latest else None,
        "text": latest.text if latest else "",
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "timestamp": latest.timestamp if latest else None,
        "input_channel": latest.input_channel if latest else None,
    }


async def forward_to_console(payload: dict[str, Any]) -> None:
    """POST the message to the console; a few retries, then the console's reconciliation
    (it reads the tracker when an agent opens the conversation) picks it up."""
    url = (os.environ.get("HANDOFF_CONSOLE_URL") or "").rstrip("/")
    if not url:
        logger.warning("HANDOFF_CONSOLE_URL is not set: message %s not forwarded", payload)
        return
    headers = {"X-Handoff-Token": os.environ.get("HANDOFF_CONSOLE_TOKEN", "")}
    timeout = aiohttp.ClientTimeout(total=5)
    for delay in (0.0, *RETRY_DELAYS_SECONDS):
        await asyncio.sleep(delay)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as client,
                client.post(f"{url}/api/internal/messages", json=payload, headers=headers) as reply,
            ):
                if reply.status < 500:
                    if reply.status >= 400:
                        logger.error("console refused message: %s", await reply.text())
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("forwarding to the console failed (%s), retrying", error)
    logger.error("message %s not forwarded to the console", payload.get("message_id"))


def _forward_in_background(payload: dict[str, Any]) -> None:
    task = asyncio.get_running_loop().create_task(forward_to_console(payload))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def handle_message(
    self: MessageProcessor, message: UserMessage
) -> list[dict[str, Any]] | None:
    """Rasa's `MessageProcessor.handle_message`, silent while a person owns the conversation."""
    tracker = await self.log_message(message, should_save_tracker=False)

    if human_owns(tracker):
        # Keep the history well formed (listen, user, listen, ...) for the bot's next turn.
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        await self.save_tracker(tracker)
        _forward_in_background(forwarded_message(tracker))
        return [] if isinstance(message.output_channel, CollectingOutputChannel) else None

    if self.model_metadata.training_type == TrainingType.NLU:
        await self.save_tracker(tracker)
        logger.warning("No core model. Skipping action prediction and execution.")
        return None

    tracker = await self.run_action_extract_slots(message.output_channel, tracker)
    await self._run_prediction_loop(message.output_channel, tracker)
    await self.run_anonymization_pipeline(tracker)
    await self.save_tracker(tracker)

    if isinstance(message.output_channel, CollectingOutputChannel):
        return message.output_channel.messages
    return None
