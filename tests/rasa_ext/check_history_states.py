"""Runs in the Rasa venv (called by test_patches.py): incremental states equal Rasa's, turn by
turn, for every flag combination, through reverts and a new session."""

import json

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_ext import history_states

domain = Domain.load("domain.yml")
original = history_states.original_states_for_tracker_history
full_computations = 0


def counted_original(*args):
    """Rasa's computation, counted: the patch should need it only where it can't continue."""
    global full_computations
    full_computations += 1
    return original(*args)


history_states.original_states_for_tracker_history = counted_original


def said(text, intent):
    return UserUttered(text, {"name": intent, "confidence": 0.97})


def session(customer_id):
    return [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        SlotSet("customer_id", customer_id),
        ActionExecuted("action_listen"),
    ]


EVENTS = [
    *session("C-1001"),
    said("hi", "greet"),
    ActionExecuted("action_greet", hide_rule_turn=True),
    SlotSet("first_name", "Ana"),
    ActionExecuted("action_listen", hide_rule_turn=True),
    said("same as last time", "repeat_order"),
    ActionExecuted("action_propose_repeat_order"),
    SlotSet("reorder_source_order_id", "O-5007"),
    ActionExecuted("action_listen"),
    said("yes", "affirm"),
    ActionExecuted("action_place_repeat_order"),
    SlotSet("reorder_source_order_id", None),
    ActionExecuted("action_listen"),
    said("are you a bot", "bot_challenge"),
    ActionExecuted("utter_iamabot", hide_rule_turn=True),
    ActionExecuted("action_listen", hide_rule_turn=True),
    said("asdf qwerty", "nlu_fallback"),
    UserUtteranceReverted(),
    said("thanks", "thank"),
    ActionExecuted("utter_you_are_welcome"),
    ActionExecuted("action_listen"),
    *session("C-1004"),
    said("reorder", "repeat_order"),
    ActionExecuted("action_propose_repeat_order"),
    ActionExecuted("action_listen"),
    said("no", "deny"),
    ActionExecuted("utter_nothing_pending", hide_rule_turn=True),
    ActionExecuted("action_listen", hide_rule_turn=True),
]
RULE_ONLY = {"slots": ["reorder_source_order_id"], "loops": []}

mismatches = []
comparisons = 0
for omit in (False, True):
    for ignore in (False, True):
        rule_only = RULE_ONLY if ignore else None
        for end in range(1, len(EVENTS) + 1):
            tracker = DialogueStateTracker.from_events("c", EVENTS[:end], domain.slots)
            expected = original(domain, tracker, omit, ignore, rule_only)
            for _ in range(2):  # several policies ask about the same tracker
                got = history_states.states_for_tracker_history(
                    domain, tracker, omit, ignore, rule_only
                )
                comparisons += 1
                if got != expected:
                    mismatches.append([omit, ignore, end])
print(
    json.dumps(
        {
            "comparisons": comparisons,
            "mismatches": mismatches,
            "full_computations": full_computations,
            "kept": len(history_states._progress),
        }
    )
)
