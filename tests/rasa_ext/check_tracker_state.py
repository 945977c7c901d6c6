"""Runs in the Rasa venv (called by test_patches.py): incremental applied events and copies
without replay equal Rasa's, after every event of random conversations with loops, reverts,
restarts and session starts."""

import json
import random

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_ext import tracker_state

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
slots:
  city: {type: text, mappings: []}
  items: {type: list, mappings: []}
  confirmed: {type: bool, mappings: []}
"""
)


def random_event(rng):
    loop = rng.choice(["address_form", "card_form"])
    return rng.choice(
        [
            lambda: ActionExecuted("action_listen"),
            lambda: UserUttered("hi", {"name": rng.choice(["greet", "affirm"]), "confidence": 1}),
            lambda: ActionExecuted(rng.choice(["utter_greet", "action_check", loop])),
            lambda: BotUttered("hello"),
            lambda: SlotSet("city", rng.choice(["Lyon", None, "Paris"])),
            lambda: SlotSet("items", rng.choice([["a"], ["a", "b"], None])),
            lambda: SlotSet("confirmed", rng.choice([True, False])),
            lambda: ActiveLoop(rng.choice([loop, None])),
            lambda: ActionReverted(),
            lambda: UserUtteranceReverted(),
            lambda: Restarted(),
            lambda: SessionStarted(),
        ]
    )()


def state(tracker):
    values = {k: v for k, v in vars(tracker).items() if k not in ("events", "slots")}
    values.pop(tracker_state._APPLIED, None)
    slots = {n: (type(s).__name__, s.value, s._has_been_set) for n, s in tracker.slots.items()}
    return values, slots, list(tracker.events)


RASA_APPLIED = tracker_state.original_applied_events
FULL = {"computations": 0}


def counted_full_computation(tracker):
    FULL["computations"] += 1
    return RASA_APPLIED(tracker)


def main():
    tracker_state.original_applied_events = counted_full_computation
    rng = random.Random(7)
    applied_checks = copy_checks = mismatches = 0
    for _ in range(60):
        tracker = DialogueStateTracker("someone", DOMAIN.slots)
        tracker.model_id = "model-1"
        for _ in range(rng.randint(5, 80)):
            for _ in range(rng.choice([1, 1, 2, 3])):
                tracker.update(random_event(rng))
            applied_checks += 1
            if tracker_state.applied_events(tracker) != RASA_APPLIED(tracker):
                mismatches += 1
            if rng.random() < 0.3:
                copy_checks += 1
                fast = tracker_state.copy_without_replay(tracker)
                if state(fast) != state(tracker_state.original_copy(tracker)):
                    mismatches += 1
                fast.update(SlotSet("items", ["changed"]))
                if tracker.slots["items"].value == ["changed"] and len(tracker.events) == len(
                    fast.events
                ):
                    mismatches += 1  # the copy must not share state with the original
    print(
        json.dumps(
            {
                "applied": applied_checks,
                "full_computations": FULL["computations"],
                "copies": copy_checks,
                "mismatches": mismatches,
            }
        )
    )


main()
