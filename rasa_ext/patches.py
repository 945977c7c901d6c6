"""Fixes to Rasa 3.6 internals, applied before the server starts (`rasa_ext.apply_patches`).

Each one keeps Rasa's behaviour and only removes a cost or a defect measured here (the one
change to what the customer sees: a typed yes or no to "did you mean ...?" counts as its
button, rasa_ext/typed_answers.py); each has a test in tests/rasa_ext/ that fails if the
installed Rasa no longer needs or fits it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jsonschema import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses
from rasa.shared.utils.schemas.events import EVENT_SCHEMA
from rasa.utils.endpoints import EndpointConfig
from rasa.utils.tensorflow.models import RasaModel

from rasa_ext import handoff, typed_answers
from rasa_ext.action_calls import action_call_format, shared_session
from rasa_ext.deferred_ted import best_policy_prediction, deferred_ted_predict
from rasa_ext.fast_load import load_for_prediction
from rasa_ext.history_states import states_for_tracker_history
from rasa_ext.sqlite_tuning import tune_sqlite_engines
from rasa_ext.tf_predict import rasa_predict_on_concrete_graph
from rasa_ext.tracker_cache import retrieve_with_cache, save_and_keep
from rasa_ext.tracker_state import applied_events, copy_without_replay


@lru_cache(maxsize=1)
def action_response_validator() -> Validator:
    """The validator of action-server responses, built (and its schema checked) once.

    `jsonschema.validate` checks the schema itself against the draft 2020-12 metaschema on
    every call: 54 ms per custom action here, against 0.8 ms for validating the response alone.
    """
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


EventCheck = Callable[[dict[str, Any]], bool]

# Branches of Rasa's event `oneOf` simple enough to check by hand (compared with the installed
# schema when the checks are built; any other shape goes to jsonschema).
SLOT_BRANCH = {
    "properties": {"event": {"const": "slot"}, "name": {"type": "string"}, "value": {}},
    "required": ["name", "value"],
}
BASE_PROPERTIES = {
    "event": {"type": "string"},
    "timestamp": {"type": ["number", "null"]},
    "metadata": {"type": ["object", "null"]},
}


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _base_holds(event: dict[str, Any]) -> bool:
    """The properties every event shares: JSON types of `timestamp` and `metadata`."""
    return _is_number_or_none(event.get("timestamp")) and isinstance(
        event.get("metadata"), (dict, type(None))
    )


def _slot_holds(event: dict[str, Any]) -> bool:
    return _base_holds(event) and isinstance(event.get("name"), str) and "value" in event


def _check_for(branch: dict[str, Any], base: dict[str, Any]) -> EventCheck:
    type_name = branch["properties"]["event"]["const"]
    if base["properties"] == BASE_PROPERTIES and base.get("required") == ["event"]:
        if branch == {"properties": {"event": {"const": type_name}}}:
            return _base_holds
        if branch == SLOT_BRANCH:
            return _slot_holds
    schema = {**base, "allOf": [branch]}
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema).is_valid


@lru_cache(maxsize=1)
def event_checks() -> dict[str, EventCheck]:
    """One check per event type: Rasa's event schema with `oneOf` narrowed to that type's branch.

    Rasa's schema validates every event against all 23 branches of a `oneOf` (the user-message
    branch alone describes the whole parse data) to find the one whose `event` constant
    matches. An event whose `event` is "slot" can only match the "slot" branch, so the `oneOf`
    holds exactly when that branch does. Empty (no fast path) if two branches ever share a
    constant, as the argument then no longer holds.
    """
    base = {key: value for key, value in EVENT_SCHEMA.items() if key != "oneOf"}
    checks: dict[str, EventCheck] = {}
    for branch in EVENT_SCHEMA["oneOf"]:
        type_name = branch["properties"]["event"]["const"]
        if type_name in checks:
            return {}
        checks[type_name] = _check_for(branch, base)
    return checks


def surely_valid(result: Any) -> bool:
    """True only for responses Rasa's schema accepts; False means "ask the full validator"."""
    if not isinstance(result, dict):
        return False
    responses = result.get("responses", [])
    if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
        return False
    events = result.get("events", [])
    if not isinstance(events, list):
        return False
    checks = event_checks()
    for event in events:
        type_name = event.get("event") if isinstance(event, dict) else None
        check = checks.get(type_name) if isinstance(type_name, str) else None
        if check is None or not check(event):
            return False
    return True


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Rasa's `RemoteAction._validate_action_result`: the per-type fast path, else the full schema.

    The full validator (built once) still judges anything the fast path does not accept, so
    verdicts and error messages are Rasa's.
    """
    if surely_valid(result):
        return True
    try:
        action_response_validator().validate(result)
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            "from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise
    return True


_event_classes: dict[str, type[Event]] = {}


def resolve_event_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    """Rasa's `Event.resolve_by_type`, from a table instead of a class-tree walk per event.

    Rasa walks every subclass of `Event` (with `inspect.isabstract` on each) for every event it
    loads, so loading a conversation costs more the longer it is: 22% of a turn at turn 160.
    The table is rebuilt on a miss, so event classes defined later are still found.
    """
    if type_name not in _event_classes:
        for cls in all_subclasses(Event):
            _event_classes.setdefault(cls.type_name, cls)
    if type_name in _event_classes:
        return _event_classes[type_name]
    if type_name == "topic":
        return None  # Rasa's backwards compatibility with TopicSet events
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


def format_states_for_debug_log(states: list[dict]) -> str:
    """`Policy.format_tracker_states` when RulePolicy's debug log is on, else nothing.

    RulePolicy formats every state of the conversation into a string at each prediction, only
    to pass it to a debug log line: work that grows with the conversation (4% of turn 100).
    """
    if logging.getLogger(RulePolicy.__module__).isEnabledFor(logging.DEBUG):
        return Policy.format_tracker_states(states)
    return ""


def apply_patches() -> None:
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    RemoteAction._action_call_format = action_call_format  # type: ignore[method-assign]
    EndpointConfig.session = shared_session  # type: ignore[method-assign,assignment]
    Event.resolve_by_type = staticmethod(resolve_event_type)  # type: ignore[method-assign]
    tune_sqlite_engines()
    SQLTrackerStore._retrieve = retrieve_with_cache  # type: ignore[method-assign]
    SQLTrackerStore.save = save_and_keep  # type: ignore[method-assign]
    DialogueStateTracker.applied_events = applied_events  # type: ignore[method-assign]
    DialogueStateTracker.copy = copy_without_replay  # type: ignore[method-assign]
    Domain.states_for_tracker_history = states_for_tracker_history  # type: ignore[method-assign]
    RasaModel._rasa_predict = rasa_predict_on_concrete_graph  # type: ignore[method-assign]
    RasaModel.load = classmethod(load_for_prediction)  # type: ignore[method-assign,assignment]
    MessageProcessor.handle_message = handoff.handle_message  # type: ignore[method-assign]
    MessageProcessor.parse_message = typed_answers.parse_message  # type: ignore[method-assign]
    RulePolicy.format_tracker_states = staticmethod(  # type: ignore[method-assign]
        format_states_for_debug_log
    )
    TEDPolicy.predict_action_probabilities = deferred_ted_predict  # type: ignore[method-assign]
    DefaultPolicyPredictionEnsemble._best_policy_prediction = staticmethod(  # type: ignore[method-assign]
        best_policy_prediction
    )
