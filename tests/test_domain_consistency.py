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

import actions
from tools.paths import REPO
from tools.validate_data import responses_sent_by_actions

DOMAIN = yaml.safe_load((REPO / "domain.yml").read_text())
STORY_TEXT = "\n".join(p.read_text() for p in (REPO / "data").rglob("*.yml"))


def action_classes() -> dict[str, type[Action]]:
    classes: dict[str, type[Action]] = {}
    for module_info in pkgutil.iter_modules(actions.__path__):
        module = importlib.import_module(f"actions.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Action) and cls.__module__ == module.__name__:
                classes[cls().name()] = cls
    return classes


def test_every_response_an_action_sends_is_in_the_domain() -> None:
    assert responses_sent_by_actions() <= set(DOMAIN["responses"])


def test_domain_actions_and_action_classes_match() -> None:
    assert set(DOMAIN["actions"]) == set(action_classes())


def test_every_response_is_used() -> None:
    used_in_data = set(re.findall(r"\butter_\w+", STORY_TEXT))
    unused = set(DOMAIN["responses"]) - used_in_data - responses_sent_by_actions()
    assert not unused


def test_every_intent_has_a_rule_or_story() -> None:
    handled = set(re.findall(r"intent:\s*(\w+)", STORY_TEXT))
    assert set(DOMAIN["intents"]) <= handled
