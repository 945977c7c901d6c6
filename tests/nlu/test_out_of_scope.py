"""Off-topic messages never start a business action (the trained model, end to end).

Every held-out off-topic message (tests/nlu/heldout_faq.yml) goes through the real NLU pipeline
and the real policies (check_out_of_scope.py, in the Rasa venv). Whatever it is classified as,
the turn may only decline it, ask what was meant, or offer a person: no action that reads or
writes a customer's orders, profile or payments.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.rasa_venv import run_in_rasa_venv
from tools.paths import RASA_PYTHON, REPO
from tools.training import train
from tools.validate_data import domain_action_names

# What the bot may do with an off-topic message.
ALLOWED = {
    "utter_out_of_scope",
    "action_two_stage_fallback",
    "action_offer_person",
    "action_default_fallback",
    "action_listen",
}
# The share of off-topic messages that must get one of the ALLOWED answers.
DECLINED_AT_LEAST = 0.75
# Actions that are not business actions: conversation, fallback and handoff machinery.
NOT_BUSINESS = ALLOWED | {
    "action_greet",
    "action_default_ask_affirmation",
    "action_contact_human",
    "action_handoff_relay",
    "action_handoff_ended",
    "action_handoff_followup",
}


def business_actions() -> set[str]:
    """Every custom action of the domain that serves a business flow."""
    domain = yaml.safe_load((REPO / "domain.yml").read_text())
    return (
        {name for name in domain_action_names(domain) if not name.startswith("utter_")}
        - NOT_BUSINESS
        - {"action_session_start"}
    )


@pytest.fixture(scope="module")
def turns() -> dict:
    if not RASA_PYTHON.exists():
        pytest.skip("the Rasa venv is not installed")
    return run_in_rasa_venv(Path(__file__).with_name("check_out_of_scope.py"), str(train()))


def test_there_are_business_actions_to_guard_against() -> None:
    assert {"action_propose_repeat_order", "action_place_repeat_order"} <= business_actions()


def test_no_off_topic_message_starts_a_business_action(turns: dict) -> None:
    assert len(turns) >= 20
    started = {
        text: turn["actions"]
        for text, turn in turns.items()
        if set(turn["actions"]) & business_actions()
    }
    assert not started


def test_most_off_topic_messages_are_declined_or_questioned(turns: dict) -> None:
    """The rest are taken for a store question and answered from the knowledge base: wrong,
    but harmless (the test above). Measured 16 of 20 (docs/conversation-design.md); this bar
    catches a model that starts to answer off-topic messages as a rule."""
    answered_otherwise = {
        text: (turn["intent"], turn["actions"])
        for text, turn in turns.items()
        if not set(turn["actions"]) <= ALLOWED
    }
    assert len(answered_otherwise) <= len(turns) * (1 - DECLINED_AT_LEAST), answered_otherwise
    assert all(actions[0] == "utter_faq" for _, actions in answered_otherwise.values())
