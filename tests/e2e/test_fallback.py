"""The fallback ladder and the handoff triggers against the real servers, over HTTP.

`rasa test` runs neither Rasa's loop actions nor ours, so what happens after a clarified "did
you mean" (Rasa replaces the unclear message by the clear one) is checked here, on the running
bot. `/nlu_fallback` makes a message the NLU is unsure about without depending on the model.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Assistant, texts
from tools.paths import REPO

pytestmark = pytest.mark.e2e

RESPONSES: dict[str, Any] = yaml.safe_load((REPO / "domain.yml").read_text())["responses"]
for _path in (REPO / "data").rglob("*.yml"):
    RESPONSES.update(yaml.safe_load(_path.read_text()).get("responses") or {})


def said(name: str) -> str:
    return RESPONSES[name][0]["text"]


def payloads(messages: list[dict]) -> list[str]:
    return [button["payload"] for message in messages for button in message.get("buttons", [])]


def conversation_id() -> str:
    return f"e2e-fallback-{secrets.token_hex(6)}"


def test_no_twice_ends_the_ladder_with_the_offer_of_a_person(assistant: Assistant) -> None:
    sender = conversation_id()
    first = assistant.say(sender, "/nlu_fallback")
    assert texts(first) == said("utter_ask_rephrase")  # no likely intent: nothing to propose
    assert texts(assistant.say(sender, "/out_of_scope")) == said("utter_ask_rephrase")
    assistant.say(sender, "/nlu_fallback")
    offer = assistant.say(sender, "/out_of_scope")
    assert texts(offer) == said("utter_default")
    assert payloads(offer) == ["/human_handoff"]
    # The loop is over: a clear question is answered at once.
    answer = assistant.say(sender, "what payment methods do you accept")
    assert texts(answer) == said("utter_faq/payment_methods")
    assert "support team" in texts(assistant.say(sender, "/human_handoff"))


def test_two_misunderstandings_in_a_row_end_with_the_offer(assistant: Assistant) -> None:
    sender = conversation_id()
    assistant.say(sender, "/nlu_fallback")
    assert texts(assistant.say(sender, "/nlu_fallback")) == said("utter_default")


def test_a_clear_message_inside_the_ladder_is_answered(assistant: Assistant) -> None:
    sender = conversation_id()
    assistant.say(sender, "/nlu_fallback")
    answer = assistant.say(sender, "how long does delivery take")
    assert texts(answer) == said("utter_faq/delivery_times")


def test_asking_for_a_person_inside_the_ladder_hands_over(assistant: Assistant) -> None:
    sender = conversation_id()
    assistant.say(sender, "/nlu_fallback")
    assert "support team" in texts(assistant.say(sender, "can i talk to a real person"))


def test_a_frustrated_question_gets_the_offer_then_the_answer(assistant: Assistant) -> None:
    sender = conversation_id()
    replies = assistant.say(sender, "how long does delivery take?!?! this is ridiculous")
    assert [m.get("text") for m in replies] == [
        said("utter_offer_person"),
        said("utter_faq/delivery_times"),
    ]
    assert payloads(replies) == ["/human_handoff"]
