"""Runs in the Rasa venv (called by test_patches.py): patched and original Rasa agree."""

import json
import logging
import tempfile

import jsonschema
import sqlalchemy as sa
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

from rasa_ext.patches import apply_patches

type_names = sorted({cls.type_name for cls in all_subclasses(Event)})
original_resolve = Event.resolve_by_type
original_validate = RemoteAction._validate_action_result
apply_patches()
action = RemoteAction("action_x", None)

RESPONSES = {
    "valid": {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": []},
    "empty": {},
    "event without name": {"events": [{"value": 1}]},
    "responses not a list": {"responses": "nope"},
    "slot without value": {"events": [{"event": "slot", "name": "a"}]},
    "slot name not text": {"events": [{"event": "slot", "name": 3, "value": 1}]},
    "boolean timestamp": {"events": [{"event": "bot", "timestamp": True}]},
    "metadata a list": {"events": [{"event": "bot", "metadata": []}]},
    "unknown event": {"events": [{"event": "no_such_event"}]},
    "event not an object": {"events": ["slot"]},
    "response not an object": {"responses": ["hi"]},
    "user message": {"events": [{"event": "user", "text": "hi", "parse_data": {"intent": {}}}]},
    "bot and slot": {
        "events": [
            {"event": "bot", "text": "hi", "timestamp": 1.5, "metadata": None},
            {"event": "slot", "name": "a", "value": None, "timestamp": 2},
            {"event": "action", "name": "action_x", "policy": None, "confidence": 1.0},
            {"event": "followup", "name": "action_y"},
        ],
        "responses": [{"text": "hi", "buttons": []}],
    },
}


def random_value(rng):
    """Any JSON value, biased towards the shapes event properties take."""
    return rng.choice(
        [None, True, 0, 1.5, "", "x", [], [1], {}, {"a": 1}, {"intent": {"name": "greet"}}]
    )


def random_responses(count=3000, seed=7):
    """Action responses of every event type with random, often wrong, property values."""
    import random

    rng = random.Random(seed)
    keys = ["timestamp", "metadata", "name", "value", "text", "entities", "parse_data", "policy"]
    names = [*type_names, "no_such_event", ""]
    results = []
    for _ in range(count):
        events = []
        for _ in range(rng.randint(0, 3)):
            event = {"event": rng.choice(names)} if rng.random() < 0.95 else {}
            for key in rng.sample(keys, rng.randint(0, 4)):
                event[key] = random_value(rng)
            events.append(event if rng.random() < 0.97 else random_value(rng))
        results.append({"events": events} if rng.random() < 0.97 else random_value(rng))
    return results


def random_agreement():
    """How many random responses the patched and original validators judge differently."""
    verdicts = [
        (outcome(original_validate, r)[0], outcome(RemoteAction._validate_action_result, r)[0])
        for r in random_responses()
    ]
    return {
        "disagreements": sum(original != patched for original, patched in verdicts),
        "valid": sum(original == "ok" for original, _ in verdicts),
        "total": len(verdicts),
    }


def outcome(validate, result):
    try:
        return ["ok", validate(action, result)]
    except jsonschema.ValidationError as error:
        return ["invalid", error.message]


def unknown_event_error():
    try:
        Event.resolve_by_type("no_such_event")
    except ValueError as error:
        return str(error)
    return None


STATES = [{}, {"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]


def formatted_states(level):
    logging.getLogger(RulePolicy.__module__).setLevel(level)
    return RulePolicy.format_tracker_states(STATES)


def sqlite_settings():
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/tracker.db")
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        engine.dispose()
    return [mode, sync]


print(
    json.dumps(
        {
            "validation": {
                name: [
                    outcome(original_validate, r),
                    outcome(RemoteAction._validate_action_result, r),
                ]
                for name, r in RESPONSES.items()
            },
            "random_validation": random_agreement(),
            "types_equal": all(Event.resolve_by_type(t) is original_resolve(t) for t in type_names),
            "type_count": len(type_names),
            "topic": Event.resolve_by_type("topic") is None,
            "default": Event.resolve_by_type("no_such_event", Event) is Event,
            "unknown": unknown_event_error(),
            "states_when_debugging": formatted_states(logging.DEBUG)
            == Policy.format_tracker_states(STATES),
            "states_otherwise": formatted_states(logging.INFO),
            "sqlite": sqlite_settings(),
        }
    )
)
