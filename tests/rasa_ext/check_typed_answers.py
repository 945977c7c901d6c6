"""Run in the Rasa venv with a trained model: a typed yes or no to "did you mean ...?".

The conversation is left where the two-stage fallback asked its question (the events Rasa
logs, the question as actions/fallback.py sends it), then the typed answer goes through the
patched parsing with the model's real NLU, Rasa's own fallback loop runs on it, and the
model's policies predict what comes next. Prints one JSON line.
"""

import asyncio
import json
import sys
from typing import Any

from rasa.core.actions.two_stage_fallback import TwoStageFallbackAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_TWO_STAGE_FALLBACK_NAME
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_ext.typed_answers import parse_message

QUESTIONS = ("utter_ask_order_status", "utter_ask_faq/delivery_times", "utter_ask_rephrase")
ANSWERS = ("yes", "yeah", "no", "nope")


def asked(agent: Agent, question: str) -> DialogueStateTracker:
    """The conversation right after the fallback asked `question` about an unclear message."""
    [response] = agent.domain.responses[question][:1]
    unclear = {"name": "nlu_fallback", "confidence": 0.45}
    return DialogueStateTracker.from_events(
        "typed-answers",
        [
            ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered("wher iz my parsel", unclear, [], {"intent": unclear, "entities": []}),
            ActionExecuted(ACTION_TWO_STAGE_FALLBACK_NAME),
            ActiveLoop(ACTION_TWO_STAGE_FALLBACK_NAME),
            BotUttered(response["text"], {"buttons": response.get("buttons")}),
            ActionExecuted(ACTION_LISTEN_NAME),
        ],
        agent.domain.slots,
    )


async def answer(agent: Agent, question: str, text: str) -> dict[str, Any]:
    """How the typed answer is read, what the loop does with it and what is predicted next."""
    processor = agent.processor
    tracker = asked(agent, question)
    parsed = await parse_message(processor, UserMessage(text, sender_id="typed-answers"), tracker)
    tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
    loop = TwoStageFallbackAction(processor.action_endpoint)
    events = await loop.run(CollectingOutputChannel(), processor.nlg, tracker, agent.domain)
    tracker.update(ActionExecuted(ACTION_TWO_STAGE_FALLBACK_NAME))
    tracker.update_with_events(events, agent.domain)
    next_action, _ = processor.predict_next_with_tracker_if_should(tracker)
    selected = (parsed.get("response_selector") or {}).get("faq", {}).get("response", {})
    return {
        "intent": parsed["intent"]["name"],
        "text": parsed["text"],
        "topic": selected.get("intent_response_key") if parsed["intent"]["name"] == "faq" else None,
        "said": [e.text for e in events if isinstance(e, BotUttered)],
        "loop": tracker.active_loop_name,
        "next": next_action.name(),
    }


async def main(model_path: str) -> None:
    agent = Agent.load(model_path)
    report: dict[str, Any] = {}
    for question in QUESTIONS:
        report[question] = {text: await answer(agent, question, text) for text in ANSWERS}
    report["rephrase_text"] = agent.domain.responses["utter_ask_rephrase"][0]["text"]
    without_loop = await parse_message(agent.processor, UserMessage("yes"), None)
    report["without_tracker"] = without_loop["intent"]["name"]
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
