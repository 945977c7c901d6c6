"""How one bot response looks on each channel: pure functions, no I/O, no Rasa imports.

Designers write one response with buttons; these functions turn it into what the channel can
show: a Messenger button template, quick replies or numbered text; numbered SMS choices a
customer answers with "1" or "2", split into parts Twilio accepts without cutting a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Messenger Send API limits (button template, quick replies, text message).
MESSENGER_MAX_BUTTONS = 3
MESSENGER_MAX_QUICK_REPLIES = 13
MESSENGER_TITLE_MAX_CHARS = 20
MESSENGER_BUTTON_TEXT_MAX_CHARS = 640
MESSENGER_TEXT_MAX_CHARS = 2000
# Twilio refuses a message body longer than this; longer replies go out in several messages.
SMS_MAX_CHARS = 1600
SMS_CHOICE_HINT = "Reply with the number of your choice."

_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Choice:
    """One option offered to the customer: what they see and what Rasa receives."""

    title: str
    payload: str


def choices_from_buttons(buttons: Iterable[Mapping[str, Any]] | None) -> list[Choice]:
    """The buttons (or quick replies) of a response that have both a title and a payload."""
    choices = []
    for button in buttons or ():
        title, payload = button.get("title"), button.get("payload")
        if isinstance(title, str) and isinstance(payload, str) and title.strip() and payload:
            choices.append(Choice(title.strip(), payload))
    return choices


def split_text(text: str, limit: int) -> list[str]:
    """`text` in parts of at most `limit` characters, cut at whitespace.

    A word longer than `limit` (a URL, say) is the only thing ever cut inside.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = max((m.start() for m in _SPACE.finditer(window)), default=-1)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def numbered_choices(text: str, choices: Sequence[Choice]) -> str:
    """The text followed by "1. Title" lines and how to answer, for channels without buttons."""
    if not choices:
        return text
    lines = [f"{number}. {choice.title}" for number, choice in enumerate(choices, start=1)]
    return "\n".join([text.rstrip(), "", *lines, SMS_CHOICE_HINT])


def sms_bodies(text: str, choices: Sequence[Choice]) -> list[str]:
    """The SMS or WhatsApp message bodies for one response, each within Twilio's limit."""
    return split_text(numbered_choices(text, choices), SMS_MAX_CHARS)


def choice_for_reply(reply: str, choices: Sequence[Choice]) -> str | None:
    """The payload a reply selects: "1" for the first choice, or its exact title; else None."""
    answer = reply.strip().rstrip(".)").strip()
    if answer.isdecimal() and answer.isascii():
        index = int(answer) - 1
        return choices[index].payload if 0 <= index < len(choices) else None
    folded = answer.casefold()
    return next((c.payload for c in choices if c.title.casefold() == folded), None)


def _fits_messenger_titles(choices: Sequence[Choice]) -> bool:
    return all(len(c.title) <= MESSENGER_TITLE_MAX_CHARS for c in choices)


def messenger_messages(text: str, choices: Sequence[Choice]) -> list[dict[str, Any]]:
    """Send API `message` objects for one response.

    Up to 3 short choices become a button template; up to 13 become quick replies on the
    last part; more, or titles over 20 characters, become numbered text, so no option is
    ever dropped or cut.
    """
    text = text.strip()
    if not choices:
        return [{"text": part} for part in split_text(text, MESSENGER_TEXT_MAX_CHARS)]
    if (
        len(choices) <= MESSENGER_MAX_BUTTONS
        and _fits_messenger_titles(choices)
        and 0 < len(text) <= MESSENGER_BUTTON_TEXT_MAX_CHARS
    ):
        buttons = [{"type": "postback", "title": c.title, "payload": c.payload} for c in choices]
        template = {"template_type": "button", "text": text, "buttons": buttons}
        return [{"attachment": {"type": "template", "payload": template}}]
    if len(choices) <= MESSENGER_MAX_QUICK_REPLIES and _fits_messenger_titles(choices):
        parts = split_text(text, MESSENGER_TEXT_MAX_CHARS) or ["Please choose:"]
        quick_replies = [
            {"content_type": "text", "title": c.title, "payload": c.payload} for c in choices
        ]
        *first, last = parts
        return [*({"text": p} for p in first), {"text": last, "quick_replies": quick_replies}]
    return [
        {"text": part}
        for part in split_text(numbered_choices(text, choices), MESSENGER_TEXT_MAX_CHARS)
    ]
