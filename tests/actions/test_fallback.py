"""The fallback's "did you mean" question and the offer of a person (actions/fallback.py), and
a request for a person inside a form (actions/human.py, on the demo CDP).

The domain is the real one (domain.yml plus the knowledge base's responses), as Rasa sends it to
the action server, so a missing or misspelt question fails here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.fallback import ActionAskAffirmation, ActionOfferPerson, affirmation_question
from actions.human import ActionContactHuman
from tools.paths import REPO


def real_domain() -> dict[str, Any]:
    domain = yaml.safe_load((REPO / "domain.yml").read_text())
    for path in (REPO / "data").rglob("*.yml"):
        domain["responses"].update(yaml.safe_load(path.read_text()).get("responses") or {})
    return domain


DOMAIN = real_domain()
RESPONSES = DOMAIN["responses"]


def fallback_message(
    ranking: list[tuple[str, float]], faq_topic: str | None = None
) -> dict[str, Any]:
    """The parse data of a message the FallbackClassifier was unsure about."""
    message: dict[str, Any] = {
        "text": "some unclear words",
        "intent": {"name": "nlu_fallback", "confidence": 0.6},
        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.6}]
        + [{"name": name, "confidence": confidence} for name, confidence in ranking],
        "entities": [],
    }
    if faq_topic:
        message["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"intent_response_key": f"faq/{faq_topic}"}},
        }
    return message


def tracker_after(message: dict[str, Any]) -> Tracker:
    events = [{"event": "user", "text": message["text"], "parse_data": message}]
    return Tracker("c-1", {}, message, events, False, None, {}, "action_listen")


def run(action: Any, tracker: Tracker) -> tuple[list[dict], list]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, events


def test_every_proposable_intent_has_a_question_with_yes_and_no() -> None:
    proposable = set(DOMAIN["intents"]) - {
        "greet",
        "goodbye",
        "affirm",
        "deny",
        "thank",
        "out_of_scope",
        "handoff_followup",
        "faq",  # one question per topic instead, checked below
        # Answers to a question the bot asked (a contact, a code, a rating), never a request
        # of their own: "did you mean..." never proposes them.
        "inform_contact",
        "inform_code",
        "rate",
    }
    for intent in proposable:
        buttons = RESPONSES[f"utter_ask_{intent}"][0]["buttons"]
        assert [b["payload"] for b in buttons] == [f"/{intent}", "/out_of_scope"], intent


def test_every_faq_topic_has_an_answer_with_a_help_link_and_a_question() -> None:
    topics = [name.split("/", 1)[1] for name in RESPONSES if name.startswith("utter_faq/")]
    assert len(topics) >= 20
    for topic in topics:
        answer = RESPONSES[f"utter_faq/{topic}"][0]["text"]
        assert "https://help.northwind-corner.example/" in answer, topic
        buttons = RESPONSES[f"utter_ask_faq/{topic}"][0]["buttons"]
        assert buttons[1]["payload"] == "/out_of_scope", topic
        # "Yes" repeats a question the model was trained on for this very topic.
        assert buttons[0]["payload"] in (REPO / "data" / "nlu" / "faq.yml").read_text(), topic


def test_the_likeliest_intent_with_a_question_is_proposed() -> None:
    message = fallback_message([("order_status", 0.45), ("refund", 0.3)])
    assert affirmation_question(message, RESPONSES) == "utter_ask_order_status"


def test_intents_without_a_question_are_skipped() -> None:
    message = fallback_message([("affirm", 0.5), ("out_of_scope", 0.4), ("cancel_order", 0.3)])
    assert affirmation_question(message, RESPONSES) == "utter_ask_cancel_order"


def test_a_faq_topic_is_proposed_by_its_own_question() -> None:
    message = fallback_message([("faq", 0.55), ("refund", 0.2)], faq_topic="refund_policy")
    assert affirmation_question(message, RESPONSES) == "utter_ask_faq/refund_policy"


@pytest.mark.parametrize(
    "ranking",
    [
        [("out_of_scope", 0.6), ("affirm", 0.3)],  # nothing with a question
        [("order_status", 0.1), ("refund", 0.05)],  # only unlikely guesses
        [],
    ],
)
def test_no_question_when_no_likely_intent_has_one(ranking: list) -> None:
    assert affirmation_question(fallback_message(ranking), RESPONSES) is None


def test_the_action_asks_the_question_or_else_to_rephrase() -> None:
    asked, events = run(
        ActionAskAffirmation(), tracker_after(fallback_message([("payment_issue", 0.5)]))
    )
    assert [m["response"] for m in asked] == ["utter_ask_payment_issue"]
    assert events == []
    asked, _ = run(ActionAskAffirmation(), tracker_after(fallback_message([("thank", 0.5)])))
    assert [m["response"] for m in asked] == ["utter_ask_rephrase"]


def frustrated(intent: str) -> Tracker:
    message = {
        "text": "WHERE IS MY ORDER?!?!",
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [{"entity": "frustration", "value": "shouting", "start": 0, "end": 21}],
    }
    return tracker_after(message)


def test_the_offer_of_a_person_lets_the_message_be_answered_next() -> None:
    said, events = run(ActionOfferPerson(), frustrated("order_status"))
    assert [m["response"] for m in said] == ["utter_offer_person"]
    assert events == [ActionExecuted("action_listen")]
    button = RESPONSES["utter_offer_person"][0]["buttons"][0]
    assert button["payload"] == "/human_handoff"


@pytest.mark.parametrize("intent", ["nlu_fallback", "out_of_scope"])
def test_the_offer_alone_when_there_is_nothing_to_answer(intent: str) -> None:
    said, events = run(ActionOfferPerson(), frustrated(intent))
    assert [m["response"] for m in said] == ["utter_offer_person"]
    assert events == []


def test_the_fallback_ends_with_the_offer_of_a_person() -> None:
    # Rasa's action_default_fallback sends utter_default when the two-stage fallback gives up.
    buttons = RESPONSES["utter_default"][0]["buttons"]
    assert [b["payload"] for b in buttons] == ["/human_handoff"]


def test_asking_for_a_person_inside_a_form_ends_the_form(
    demo_cdp: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HANDOFF_CONSOLE_URL", raising=False)
    latest = {"text": "a person please", "intent": {"name": "human_handoff"}, "entities": []}
    latest |= {"message_id": "m-9", "metadata": {}}
    events = [{"event": "user", "text": latest["text"], "input_channel": "rest"}]
    in_form = Tracker(
        "conversation-form", {}, latest, events, False, None, {"name": "address_form"}, None
    )
    dispatcher = CollectingDispatcher()
    result = asyncio.run(ActionContactHuman().run(dispatcher, in_form, DOMAIN))
    assert [m["response"] for m in dispatcher.messages] == ["utter_human_contact"]
    assert result == [SlotSet("handoff_state", "requested"), ActiveLoop(None)]
    # Outside a form there is no loop to end.
    outside = Tracker("conversation-plain", {}, latest, events, False, None, {}, "action_listen")
    result = asyncio.run(ActionContactHuman().run(CollectingDispatcher(), outside, DOMAIN))
    assert result == [SlotSet("handoff_state", "requested")]
