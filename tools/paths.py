"""Where things live: the repo, the two venvs, runtime state and models."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / ".venv"
RASA_BIN = VENVS / "rasa" / "bin" / "rasa"
RASA_PYTHON = VENVS / "rasa" / "bin" / "python"
ACTIONS_PYTHON = VENVS / "actions" / "bin" / "python"
VAR = REPO / "var"
MODELS = REPO / "models"
RESULTS = REPO / "results"
