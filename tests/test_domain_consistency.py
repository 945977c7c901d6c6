"""The domain, the training data and the action code agree with each other.

Rasa's validator can't see inside custom actions; these checks catch a response or action that
is misspelt, missing or never used.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import yaml
from rasa_sdk import Action
from rasa_sdk.forms import ValidationAction

import actions
from tools.paths import REPO
from tools.validate_data import (
    domain_action_names,
    responses_asked_by_forms,
    responses_sent_by_actions,
)

DOMAIN = yaml.safe_load((REPO / "domain.yml").read_text())
ENDPOINTS = yaml.safe_load((REPO / "endpoints.yml").read_text())
# Rasa reads data/ recursively (data/rules/, data/stories/, data/nlu/).
STORY_TEXT = "\n".join(p.read_text() for p in sorted((REPO / "data").rglob("*.yml")))


def actions_sent_the_domain() -> set[str]:
    return {
        name
        for entry in DOMAIN["actions"]
        if isinstance(entry, dict)
        for name, options in entry.items()
        if (options or {}).get("send_domain") is True
    }


def action_classes() -> dict[str, type[Action]]:
    classes: dict[str, type[Action]] = {}
    for module_info in pkgutil.iter_modules(actions.__path__):
        module = importlib.import_module(f"actions.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # Abstract bases (a shared form validation, say) are not actions of their own.
            is_action = issubclass(cls, Action) and not inspect.isabstract(cls)
            if is_action and cls.__module__ == module.__name__:
                classes[cls().name()] = cls
    return classes


def test_every_response_an_action_sends_is_in_the_domain() -> None:
    assert responses_sent_by_actions() <= set(DOMAIN["responses"])


def test_domain_actions_and_action_classes_match() -> None:
    assert domain_action_names(DOMAIN) == set(action_classes())


def test_rasa_sends_the_domain_exactly_to_the_form_validations() -> None:
    """Selective domain (endpoints.yml): the domain goes only to actions that read it.

    Rasa-sdk's form validation reads the form's required slots and slot mappings from the
    domain, and "did you mean ...?" looks up which questions exist (actions/fallback.py); the
    other actions never look at it, and sending it with every call was most of the payload.
    """
    assert ENDPOINTS["action_endpoint"]["enable_selective_domain"] is True
    validations = {
        name for name, cls in action_classes().items() if issubclass(cls, ValidationAction)
    }
    assert validations
    assert actions_sent_the_domain() == validations | {"action_default_ask_affirmation"}


def test_every_response_is_used() -> None:
    used_in_data = set(re.findall(r"\butter_\w+", STORY_TEXT))
    sent = responses_sent_by_actions() | responses_asked_by_forms()
    unused = set(DOMAIN["responses"]) - used_in_data - sent
    assert not unused


def test_every_intent_has_a_rule_or_story() -> None:
    handled = set(re.findall(r"intent:\s*(\w+)", STORY_TEXT))
    assert set(DOMAIN["intents"]) <= handled
