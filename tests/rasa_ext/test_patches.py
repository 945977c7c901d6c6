"""The Rasa-side patches keep Rasa's behaviour exactly (checked inside the Rasa venv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres import postgres_database_or_skip
from tests.rasa_venv import run_in_rasa_venv as run_in_venv
from tools.databases import for_rasa
from tools.paths import RASA_PYTHON
from tools.training import train

pytestmark = pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa venv is not installed")


def run_in_rasa_venv(script: str, *args: str) -> dict:
    """Run a check script of this folder with the Rasa venv."""
    return run_in_venv(Path(__file__).with_name(script), *args)


@pytest.fixture(scope="module")
def report() -> dict:
    return run_in_rasa_venv("check_patches.py")


def test_action_responses_are_judged_as_before(report: dict) -> None:
    for name, (original, patched) in report["validation"].items():
        assert patched == original, name
    assert report["validation"]["valid"][1] == ["ok", True]
    for invalid in ("event without name", "responses not a list"):
        verdict, message = report["validation"][invalid][1]
        assert verdict == "invalid" and "Failed to validate Action server response" in message


def test_random_action_responses_are_judged_as_before(report: dict) -> None:
    """The per-type fast path accepts exactly what Rasa's full schema accepts."""
    verdicts = report["random_validation"]
    assert verdicts["disagreements"] == 0
    assert 0 < verdicts["valid"] < verdicts["total"]  # both verdicts were exercised


def test_event_types_resolve_as_before(report: dict) -> None:
    assert report["types_equal"] and report["type_count"] > 20
    assert report["topic"] and report["default"]
    assert report["unknown"] == "Unknown event name 'no_such_event'."


def test_sqlite_tracker_store_uses_the_write_ahead_log(report: dict) -> None:
    assert report["sqlite"] == ["wal", 1]  # synchronous=NORMAL


def test_rule_states_are_formatted_only_for_the_debug_log(report: dict) -> None:
    assert report["states_when_debugging"] and report["states_otherwise"] == ""


def test_incremental_history_states_equal_rasas_at_every_turn() -> None:
    history = run_in_rasa_venv("check_history_states.py")
    assert history["comparisons"] == 272 and history["mismatches"] == []
    # It really continues: Rasa's full computation only where continuing isn't safe.
    assert history["full_computations"] < history["comparisons"] / 4


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_cached_tracker_store_returns_what_rasa_returns(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        checks = run_in_rasa_venv("check_tracker_cache.py", f"sqlite:///{tmp_path / 't.db'}")
    else:
        with postgres_database_or_skip("tracker_cache") as url:
            checks = run_in_rasa_venv("check_tracker_cache.py", for_rasa(url))
    assert checks == dict.fromkeys(checks, True) and len(checks) == 8


def test_models_predict_the_same_through_the_concrete_graph() -> None:
    result = run_in_rasa_venv("check_tf_predict.py", str(train()))
    assert result["same"] is True and result["same_when_loaded_for_prediction"] is True
    assert result["actions"] >= 10  # the check conversation's predictions were all compared


def test_deferred_ted_changes_no_prediction_and_mostly_stays_idle() -> None:
    result = run_in_rasa_venv("check_deferred_ted.py", str(train()))
    assert result["same"] and result["predictions"] > 50
    # TED ran only where rules and stories left the choice open (where it can still lose, e.g.
    # to the fallback when its own confidence is low); they decided the rest without it.
    assert result["ted_won"] <= result["ted_computed"] < result["predictions"] / 4
    assert result["ted_computed"] > 0


def test_actions_get_the_recent_events_over_one_kept_open_connection() -> None:
    checks = run_in_rasa_venv("check_action_calls.py")
    assert checks == dict.fromkeys(checks, True) and len(checks) == 5


def test_incremental_applied_events_and_copies_equal_rasas() -> None:
    checks = run_in_rasa_venv("check_tracker_state.py")
    assert checks["mismatches"] == 0 and checks["applied"] > 1000 and checks["copies"] > 300
    # It really continues: Rasa's full walk only where continuing isn't safe.
    assert checks["full_computations"] < checks["applied"] / 5
