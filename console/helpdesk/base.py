"""What a helpdesk adapter does: mirror a handoff as ordered, individually retried steps, and
read ownership changes (hand-back, resolve) from its webhooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from cdp.handoff.models import HandoffState

Step = tuple[str, Callable[[], None]]


class Helpdesk(Protocol):
    name: str

    def steps(self, handoff: dict[str, Any]) -> list[Step]:
        """The calls that mirror one handoff, in the order they must happen."""

    def ownership_change(self, payload: dict[str, Any]) -> tuple[str, HandoffState] | None:
        """(handoff id, new state) when a webhook says who owns the conversation now."""

    def webhook_allowed(self, token: str) -> bool:
        """Whether a webhook call carries the configured secret."""
