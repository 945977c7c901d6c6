"""One turn of the trained model, in the Rasa venv: parse a message, let the policies predict.

Shared by the check scripts that pytest runs in the Rasa venv (tests/rasa_ext/check_frustration.py,
tests/nlu/check_out_of_scope.py). Custom actions do not run here: the offer of a person
contributes the events actions/fallback.py returns (tested there), every other action none, so
what is checked is what the NLU and the policies decide.
"""

from __future__ import annotations

from typing import Any

from rasa.core.agent import Agent
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

OFFER = "action_offer_person"
NOT_ANSWERED_AFTER_OFFER = {"nlu_fallback", "out_of_scope"}
MAX_ACTIONS = 6


def predicted_turn(agent: Agent, parse_data: dict[str, Any]) -> list[str]:
    """The actions predicted after this first message of a session, up to the next listen."""
    tracker = DialogueStateTracker.from_events(
        "check",
        [
            ActionExecuted("action_session_start"),
            SessionStarted(),
            ActionExecuted("action_listen"),
            UserUttered(
                parse_data["text"], parse_data["intent"], parse_data["entities"], parse_data
            ),
        ],
        agent.domain.slots,
    )
    predicted: list[str] = []
    while len(predicted) < MAX_ACTIONS:
        action, _ = agent.processor.predict_next_with_tracker_if_should(tracker)
        predicted.append(action.name())
        if action.name() == "action_listen":
            break
        tracker.update(ActionExecuted(action.name()))
        if action.name() == OFFER and parse_data["intent"]["name"] not in NOT_ANSWERED_AFTER_OFFER:
            tracker.update(ActionExecuted("action_listen"))
    return predicted
