"""The Rasa-side gate (rasa_ext/handoff.py) fits the installed Rasa (checked in the Rasa venv)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools.paths import RASA_PYTHON, REPO

pytestmark = pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa venv is not installed")


def test_the_gate_repeats_rasas_own_steps_in_order() -> None:
    result = subprocess.run(
        [str(RASA_PYTHON), str(Path(__file__).with_name("check_rasa_gate.py"))],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "RASA_TELEMETRY_ENABLED": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["patched"]
    # Rasa: log, (NLU-only save), extract slots, predict, anonymise, save.
    assert report["rasa"] == [
        "log_message",
        "save_tracker",
        "run_action_extract_slots",
        "_run_prediction_loop",
        "run_anonymization_pipeline",
        "save_tracker",
    ]
    # Ours: the same, with the gate's own save right after logging the message.
    assert report["ours"] == [report["rasa"][0], "save_tracker", *report["rasa"][1:]]
