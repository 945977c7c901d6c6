"""Frustration: which messages are marked, and what the policy does after them.

The rules (rasa_ext/frustration_signals.py) are plain Python and tested here directly; the Rasa
component and policy that apply them are checked inside the Rasa venv with the trained model
(check_frustration.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rasa_ext.frustration_signals import LISTEN, OFFER, assess, next_step
from tests.rasa_venv import run_in_rasa_venv
from tools.paths import RASA_PYTHON
from tools.training import train

NO_OFFER = frozenset({"human_handoff", "handoff_followup"})


@pytest.mark.parametrize(
    ("text", "signals"),
    [
        ("this is fucking ridiculous", ("swearing", "insult")),
        ("wtf is going on with my order", ("swearing",)),
        ("useless bot", ("insult",)),
        ("you're wasting my time", ("exasperation",)),
        ("WHERE IS MY ORDER", ("shouting",)),
        ("I WANT MY MONEY BACK NOW", ("shouting",)),
        ("where is my parcel?!?!", ("exasperated_punctuation",)),
        ("seriously!?!", ("exasperated_punctuation",)),
        ("WHY IS THIS SO HARD?!?!", ("shouting", "exasperated_punctuation")),
    ],
)
def test_clear_frustration_is_marked_with_its_signals(text: str, signals: tuple) -> None:
    found = assess(text)
    assert found.is_frustrated
    assert found.signals == signals
    assert found.label == "+".join(signals)


@pytest.mark.parametrize(
    "text",
    [
        "how long does delivery take",
        "thanks so much!!!",  # one mild sign: excitement, not anger
        "where is my order???",  # impatient, not yet angry
        "tell me a joke",  # "joke" is not an insult word
        "can i get a VAT invoice",  # an acronym is not shouting
        "OK",
        "I need help with order O-5003",
        "my class assignment",  # "ass" only as a whole word
        "is the trash can in stock",
    ],
)
def test_ordinary_messages_are_not_marked(text: str) -> None:
    assert not assess(text).is_frustrated


def decide(**overrides: object) -> str | None:
    arguments = {
        "latest_action": "action_listen",
        "offer_action": "action_offer_person",
        "intent": "order_status",
        "frustrated": True,
        "offered_since_message": False,
        "offered_recently": False,
        "handoff_open": False,
        "no_offer_intents": NO_OFFER,
    } | overrides
    return next_step(**arguments)  # type: ignore[arg-type]


def test_a_frustrated_message_gets_the_offer_first() -> None:
    assert decide() == OFFER


def test_after_the_offer_the_turn_ends_when_nothing_else_marked_listening() -> None:
    assert decide(latest_action="action_offer_person") == LISTEN


def test_once_offered_the_message_is_left_to_the_other_policies() -> None:
    assert decide(offered_since_message=True) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"frustrated": False},
        {"intent": "human_handoff"},  # already asking for a person
        {"handoff_open": True},  # a person owns the conversation
        {"offered_recently": True},  # offered after the previous message: no nagging
        {"latest_action": "action_greet"},  # mid-turn: only right after the message
    ],
)
def test_no_offer(overrides: dict) -> None:
    assert decide(**overrides) is None


@pytest.fixture(scope="module")
def model_report() -> dict:
    if not RASA_PYTHON.exists():
        pytest.skip("the Rasa venv is not installed")
    return run_in_rasa_venv(Path(__file__).with_name("check_frustration.py"), str(train()))


def test_the_trained_pipeline_marks_frustration_and_keeps_the_intent(model_report: dict) -> None:
    angry = model_report["parsed"]["WHERE IS MY ORDER?!?! THIS IS RIDICULOUS"]
    assert angry["frustration"] == "insult+shouting+exasperated_punctuation"
    calm = model_report["parsed"]["how long does delivery take"]
    assert calm["frustration"] is None
    assert calm["intent"] == "faq"


def test_the_policy_offers_a_person_then_lets_the_message_be_answered(model_report: dict) -> None:
    # A frustrated question: the offer, then (after the action's "listening" mark) the answer.
    assert model_report["frustrated_faq"] == ["action_offer_person", "utter_faq", "action_listen"]
    # A calm one: answered at once.
    assert model_report["calm_faq"] == ["utter_faq", "action_listen"]
    # Frustrated and not understood: only the offer, no "did you mean".
    assert model_report["frustrated_fallback"] == ["action_offer_person", "action_listen"]
    # Asking for a person while angry: straight to the person, no offer first.
    assert model_report["frustrated_handoff"] == ["action_contact_human", "action_listen"]
