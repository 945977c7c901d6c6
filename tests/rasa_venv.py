"""Checks that must run inside the Rasa venv (Rasa's own classes), started from pytest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tools.paths import RASA_PYTHON, REPO


def run_in_rasa_venv(script: Path, *args: str) -> dict:
    """Run a check script with the Rasa venv's Python; it prints one JSON line last."""
    result = subprocess.run(
        [str(RASA_PYTHON), str(script), *args],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "RASA_TELEMETRY_ENABLED": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
