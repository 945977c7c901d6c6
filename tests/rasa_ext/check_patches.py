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

original_resolve = Event.resolve_by_type
original_validate = RemoteAction._validate_action_result
apply_patches()
action = RemoteAction("action_x", None)

RESPONSES = {
    "valid": {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": []},
    "empty": {},
    "event without name": {"events": [{"value": 1}]},
    "responses not a list": {"responses": "nope"},
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


type_names = sorted({cls.type_name for cls in all_subclasses(Event)})
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
