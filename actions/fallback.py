"""The bot's side of "I'm not sure what you mean" and "you sound upset" (conversation-design.md).

`action_default_ask_affirmation` replaces Rasa's own first step of the two-stage fallback,
which would ask "Did you mean 'order_status'?": it asks the intent's own question
(`utter_ask_<intent>`, or `utter_ask_faq/<topic>` for a knowledge-base topic) in words a
customer understands. `action_offer_person` offers a person after a frustrated message
(rasa_ext/frustration.py) and then lets the message be answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType
from rasa_sdk.executor import CollectingDispatcher

NLU_FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
# Intents a "did you mean" never proposes: the fallback itself and "none of these".
NEVER_PROPOSED = frozenset({NLU_FALLBACK, OUT_OF_SCOPE})
# How far down the NLU's ranking a "did you mean" may look for a question it can ask, and how
# likely an intent must be to be proposed at all (gibberish gets "say it in other words").
CANDIDATES = 3
MIN_CONFIDENCE = 0.15
RETRIEVAL_INTENT = "faq"
# Messages the bot does not answer after the offer of a person: there is nothing to answer.
NOT_ANSWERED_AFTER_OFFER = frozenset({NLU_FALLBACK, OUT_OF_SCOPE})


def affirmation_question(message: Mapping[str, Any], responses: Mapping[str, Any]) -> str | None:
    """The response asking "did you mean ...?" for the likeliest intent that has one.

    Looks at the top `CANDIDATES` intents of the ranking at `MIN_CONFIDENCE` or more, skipping
    the fallback and out_of_scope; for `faq`, the question of the topic the response selector
    picked. None when no candidate has a question: the caller then asks to rephrase instead.
    """
    ranking = message.get("intent_ranking") or []
    candidates = [
        entry.get("name")
        for entry in ranking
        if entry.get("name") not in NEVER_PROPOSED
        and (entry.get("confidence") or 0.0) >= MIN_CONFIDENCE
    ][:CANDIDATES]
    for intent in candidates:
        if intent == RETRIEVAL_INTENT:
            selected = (message.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
            topic = (selected.get("response") or {}).get("intent_response_key")
            name = f"utter_ask_{topic}" if topic else None
        else:
            name = f"utter_ask_{intent}"
        if name and name in responses:
            return name
    return None


class ActionAskAffirmation(Action):
    """Two-stage fallback, first step: "did you mean ...?" with Yes and No buttons.

    It needs the domain's responses (`send_domain: true` in domain.yml): with Rasa's selective
    domain on, an action gets no domain otherwise, finds no question and always asks to
    rephrase instead."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        question = affirmation_question(tracker.latest_message, domain.get("responses") or {})
        # With no question to ask, a rephrase request keeps the ladder going: Rasa counts this
        # step as asked, so a second misunderstanding still ends with the offer of a person.
        dispatcher.utter_message(response=question or "utter_ask_rephrase")
        return []


class ActionOfferPerson(Action):
    """Offers a person to a frustrated customer, then lets their message be answered.

    Ending with `action_listen` puts the conversation back where it was right after the
    customer's message, so the rules answer it as usual; a message the bot did not
    understand, or that is off-topic, gets only the offer.
    """

    def name(self) -> str:
        return "action_offer_person"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_offer_person")
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent in NOT_ANSWERED_AFTER_OFFER:
            return []
        return [ActionExecuted("action_listen")]
