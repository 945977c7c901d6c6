"""A typed yes or no to "did you mean ...?" works like its button (rasa_ext/typed_answers.py).

Checked in the Rasa venv with the trained model's NLU, Rasa's own fallback loop and the
model's policies (check_typed_answers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rasa_venv import run_in_rasa_venv
from tools.paths import RASA_PYTHON
from tools.training import train


@pytest.fixture(scope="module")
def report() -> dict:
    if not RASA_PYTHON.exists():
        pytest.skip("the Rasa venv is not installed")
    return run_in_rasa_venv(Path(__file__).with_name("check_typed_answers.py"), str(train()))


@pytest.mark.parametrize("typed", ["yes", "yeah"])
def test_a_typed_yes_takes_the_suggested_intent(report: dict, typed: str) -> None:
    answer = report["utter_ask_order_status"][typed]
    assert (answer["intent"], answer["text"]) == ("order_status", typed)
    assert answer["loop"] is None  # the ladder ended with the clarified message
    assert answer["next"] == "action_order_status"


@pytest.mark.parametrize("typed", ["yes", "yeah"])
def test_a_typed_yes_to_a_knowledge_base_question_gets_its_answer(report: dict, typed: str) -> None:
    answer = report["utter_ask_faq/delivery_times"][typed]
    assert (answer["intent"], answer["topic"]) == ("faq", "faq/delivery_times")
    assert answer["next"] == "utter_faq"


@pytest.mark.parametrize("question", ["utter_ask_order_status", "utter_ask_faq/delivery_times"])
@pytest.mark.parametrize("typed", ["no", "nope"])
def test_a_typed_no_goes_to_the_rephrase_step(report: dict, question: str, typed: str) -> None:
    answer = report[question][typed]
    assert (answer["intent"], answer["text"]) == ("out_of_scope", typed)
    assert answer["said"] == [report["rephrase_text"]]
    assert answer["loop"] == "action_two_stage_fallback"
    assert answer["next"] == "action_listen"


@pytest.mark.parametrize(("typed", "intent"), [("yes", "affirm"), ("no", "deny")])
def test_without_buttons_to_answer_a_yes_or_no_stays_one(
    report: dict, typed: str, intent: str
) -> None:
    """After "say it in other words" there is nothing a yes or no could choose."""
    assert report["utter_ask_rephrase"][typed]["intent"] == intent
    assert report["without_tracker"] == "affirm"
