"""Messages with an intent and entities, as the order flows receive them, and a runner."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from tests.actions.trackers import token_for, tracker

ANONYMOUS = "utter_repeat_order_anonymous"


def said(
    intent: str,
    customer: str | None,
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    message_id: str = "m-1",
) -> Tracker:
    """The tracker after one message with this intent and these entities."""
    result = tracker(f"/{intent}", token_for(customer) if customer else None, slots)
    found = [{"entity": name, "value": value} for name, value in (entities or {}).items()]
    result.latest_message.update(
        {"intent": {"name": intent}, "entities": found, "message_id": message_id}
    )
    result.events[-1]["parse_data"] = {"intent": {"name": intent}, "entities": found}
    return result


async def run(action: Any, message: Tracker) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one message the action sends, and the slots it sets."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, message, {})
    assert len(dispatcher.messages) == 1
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    return dispatcher.messages[0], slots
