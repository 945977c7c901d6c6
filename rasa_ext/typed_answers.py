"""A typed "yes" or "no" to "did you mean ...?" counts as its Yes or No button.

Rasa's two-stage fallback takes any clear intent as the clarification, so a typed "yes" would
end the ladder as an `affirm` with nothing pending, and a typed "no" as a `deny`. While the
fallback loop waits on a question with exactly two buttons (ours: Yes first, No last, see
actions/fallback.py), a message the NLU reads as `affirm` or `deny` is parsed again as the
payload of that button: the suggested intent (or FAQ question), or `/out_of_scope`, which
Rasa's loop answers with its rephrase step. The text the customer typed is kept.
"""

from __future__ import annotations

from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import ACTION_TWO_STAGE_FALLBACK_NAME
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

# The typed answer and the button it stands for: Yes is the first button, No the last.
BUTTON_OF_ANSWER = {"affirm": 0, "deny": -1}
YES_NO_BUTTONS = 2
_rasa_parse_message = MessageProcessor.parse_message


def button_payload(tracker: DialogueStateTracker | None, parse_data: dict[str, Any]) -> str | None:
    """The payload the typed answer chooses, or None when it answers no "did you mean"."""
    intent = (parse_data.get("intent") or {}).get("name")
    if tracker is None or intent not in BUTTON_OF_ANSWER:
        return None
    if tracker.active_loop_name != ACTION_TWO_STAGE_FALLBACK_NAME:
        return None
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return None  # the customer already answered whatever was asked
        if isinstance(event, BotUttered):
            buttons = event.data.get("buttons") or []
            if len(buttons) != YES_NO_BUTTONS:
                return None
            payload = buttons[BUTTON_OF_ANSWER[intent]].get("payload")
            return payload if isinstance(payload, str) and payload else None
    return None


async def parse_message(
    self: MessageProcessor,
    message: UserMessage,
    tracker: DialogueStateTracker | None = None,
    only_output_properties: bool = True,
) -> dict[str, Any]:
    """Rasa's `MessageProcessor.parse_message`, reading a typed yes or no as the button."""
    parse_data = await _rasa_parse_message(self, message, tracker, only_output_properties)
    payload = button_payload(tracker, parse_data)
    if payload is None:
        return parse_data
    pressed = UserMessage(
        payload,
        sender_id=message.sender_id,
        input_channel=message.input_channel,
        metadata=message.metadata,
    )
    chosen = await _rasa_parse_message(self, pressed, tracker, only_output_properties)
    return {**chosen, "text": parse_data.get("text", message.text)}
