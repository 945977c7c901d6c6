"""Runs in the Rasa venv (called by test_patches.py): patched and original Rasa agree."""

import json

import jsonschema
from rasa.core.actions.action import RemoteAction
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
        }
    )
)
