"""Settings of a local run, from the environment with development defaults under `var/`.

Secrets that are not set are generated once and kept in `var/` (mode 600), so a restart keeps
the same API token and keeps customer tokens minted earlier valid.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tools.paths import VAR
from tools.stack import StackSettings

DEMO_CUSTOMER_ID = "C-1001"


def local_secret(env_name: str, file_name: str) -> str:
    """The value of `env_name`, or a random secret kept in `var/file_name`."""
    if value := os.environ.get(env_name):
        return value
    path = VAR / file_name
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def default_cdp_url() -> str:
    return os.environ.get("CDP_DATABASE_URL") or f"sqlite:///{VAR / 'cdp.sqlite3'}"


def default_tracker_store_url() -> str:
    return os.environ.get("RASA_TRACKER_STORE_URL") or f"sqlite:///{VAR / 'tracker.sqlite3'}"


def local_settings(model: Path) -> StackSettings:
    return StackSettings(
        model=model,
        cdp_database_url=default_cdp_url(),
        tracker_store_url=default_tracker_store_url(),
        api_token=local_secret("RASA_API_TOKEN", "rasa_api_token"),
        identity_secret=local_secret("CDP_IDENTITY_SECRET", "identity_secret"),
        rasa_port=int(os.environ.get("RASA_PORT", "5005")),
        action_port=int(os.environ.get("ACTION_SERVER_PORT", "5055")),
        console_port=int(os.environ.get("CONSOLE_PORT", "5056")),
        console_secret=local_secret("CONSOLE_SECRET", "console_secret"),
        handoff_token=local_secret("HANDOFF_CONSOLE_TOKEN", "handoff_console_token"),
        erasure_key=local_secret("CDP_ERASURE_KEY", "erasure_key"),
    )
