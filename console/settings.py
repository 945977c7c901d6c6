"""Console settings from the environment (every variable is in docs/handoff.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from cdp.config import database_url


@dataclass(frozen=True)
class ChatwootSettings:
    url: str
    account_id: int
    bot_token: str
    team_ids: dict[str, int]
    webhook_token: str


@dataclass(frozen=True)
class ConsoleSettings:
    database_url: str
    secret: str
    rasa_url: str
    rasa_token: str
    internal_token: str
    host: str = "127.0.0.1"
    port: int = 5056
    scan_seconds: float = 1.0
    session_hours: float = 12.0
    chatwoot: ChatwootSettings | None = field(default=None)


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"error: {name} must be set (see docs/handoff.md)")
    return value


def chatwoot_from_env() -> ChatwootSettings | None:
    url = os.environ.get("CHATWOOT_URL", "").rstrip("/")
    if not url:
        return None
    raw_teams = os.environ.get("CHATWOOT_TEAM_IDS", "{}")
    try:
        team_ids = {str(k): int(v) for k, v in json.loads(raw_teams).items()}
    except (ValueError, TypeError, AttributeError):
        raise SystemExit(
            "error: CHATWOOT_TEAM_IDS must be a JSON object like "
            f'{{"billing": 4}}, got {raw_teams!r}'
        ) from None
    return ChatwootSettings(
        url=url,
        account_id=int(_required("CHATWOOT_ACCOUNT_ID")),
        bot_token=_required("CHATWOOT_BOT_TOKEN"),
        team_ids=team_ids,
        webhook_token=_required("CHATWOOT_WEBHOOK_TOKEN"),
    )


def settings_from_env() -> ConsoleSettings:
    return ConsoleSettings(
        database_url=database_url(),
        secret=_required("CONSOLE_SECRET"),
        rasa_url=os.environ.get("RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
        rasa_token=_required("RASA_API_TOKEN"),
        internal_token=_required("HANDOFF_CONSOLE_TOKEN"),
        host=os.environ.get("CONSOLE_HOST", "127.0.0.1"),
        port=int(os.environ.get("CONSOLE_PORT", "5056")),
        scan_seconds=float(os.environ.get("CONSOLE_SCAN_SECONDS", "1.0")),
        chatwoot=chatwoot_from_env(),
    )
