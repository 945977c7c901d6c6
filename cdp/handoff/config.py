"""Handoff settings from the environment (documented in docs/handoff.md)."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from cdp.handoff.routing import RoutingTable, load_table

DEFAULT_ROUTING_FILE = Path(__file__).resolve().parents[2] / "handoff" / "routing.yml"
DEFAULT_ACCEPT_TIMEOUT_SECONDS = 300


def routing_file() -> Path:
    return Path(os.environ.get("HANDOFF_ROUTING_FILE") or DEFAULT_ROUTING_FILE)


@lru_cache(maxsize=4)
def _table(path: Path, modified_ns: int) -> RoutingTable:
    return load_table(path)


def routing_table() -> RoutingTable:
    """The routing table, re-read when the file changes (operations edit it live)."""
    path = routing_file()
    return _table(path, path.stat().st_mtime_ns)


def accept_timeout() -> timedelta:
    """How long a requested handoff waits for an agent during business hours."""
    raw = os.environ.get("HANDOFF_ACCEPT_TIMEOUT_SECONDS") or str(DEFAULT_ACCEPT_TIMEOUT_SECONDS)
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"HANDOFF_ACCEPT_TIMEOUT_SECONDS: must be a number, got {raw!r}") from None
    if seconds < 0:
        raise ValueError(f"HANDOFF_ACCEPT_TIMEOUT_SECONDS: must be >= 0, got {raw!r}")
    return timedelta(seconds=seconds)


def console_url() -> str | None:
    """Where the agent console listens (the action server tells it about new handoffs)."""
    return (os.environ.get("HANDOFF_CONSOLE_URL") or "").rstrip("/") or None


def console_token() -> str:
    """Shared secret of the console's internal endpoints (Rasa and the action server)."""
    return os.environ.get("HANDOFF_CONSOLE_TOKEN", "")
