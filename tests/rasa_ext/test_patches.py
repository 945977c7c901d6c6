"""The Rasa-side patches keep Rasa's behaviour exactly (checked inside the Rasa venv)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools.paths import RASA_PYTHON, REPO

pytestmark = pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa venv is not installed")


@pytest.fixture(scope="module")
def report() -> dict:
    result = subprocess.run(
        [str(RASA_PYTHON), str(Path(__file__).with_name("check_patches.py"))],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "RASA_TELEMETRY_ENABLED": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_action_responses_are_judged_as_before(report: dict) -> None:
    for name, (original, patched) in report["validation"].items():
        assert patched == original, name
    assert report["validation"]["valid"][1] == ["ok", True]
    for invalid in ("event without name", "responses not a list"):
        verdict, message = report["validation"][invalid][1]
        assert verdict == "invalid" and "Failed to validate Action server response" in message


def test_event_types_resolve_as_before(report: dict) -> None:
    assert report["types_equal"] and report["type_count"] > 20
    assert report["topic"] and report["default"]
    assert report["unknown"] == "Unknown event name 'no_such_event'."
