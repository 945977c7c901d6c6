"""The action server can load the customer flows: every action the domain lists is served,
and the shared base classes are not registered as actions themselves."""

from __future__ import annotations

from pathlib import Path

import yaml
from rasa_sdk.executor import ActionExecutor

from tools.validate_data import domain_action_names

DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"


def test_every_domain_action_is_served_and_nothing_else() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    served = set(executor.actions)
    listed = domain_action_names(yaml.safe_load(DOMAIN.read_text()))
    assert served == listed
    assert {"validate_contact_form", "action_accept_offer", "action_decline_offer"} <= served
