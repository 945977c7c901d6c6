"""Chatwoot (Agent Bot API) as a helpdesk: mirror a handoff, take hand-backs from webhooks.

The conversation lives in Chatwoot (it owns the channel; its display id reaches the bot as
message metadata `chatwoot_conversation_id`). Order matters (docs/handoff.md): attributes,
private note, priority and team are set before `toggle_status open`, because Chatwoot's
auto-assignment runs on that transition. Each step is recorded as a handoff event when it
succeeds, so a retry repeats only the steps that did not happen (no second private note).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import requests

from cdp.handoff.models import HandoffEvent, HandoffState
from cdp.handoff.service import get_handoff
from console.helpdesk.base import Step
from console.settings import ChatwootSettings

if TYPE_CHECKING:
    from console.app import Console

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10
PRIORITIES = {"urgent": "urgent", "high": "high", "normal": "medium", "low": "low"}
STATUS_TO_STATE = {"pending": HandoffState.RETURNED, "resolved": HandoffState.RESOLVED}
STEP_EVENT_PREFIX = "chatwoot_"


class ChatwootError(RuntimeError):
    """A Chatwoot call failed; the message names the step and the answer."""


class ChatwootDesk:
    name = "chatwoot"

    def __init__(self, settings: ChatwootSettings, http: requests.Session | None = None) -> None:
        self.settings = settings
        self.http = http or requests.Session()
        self.http.headers["api_access_token"] = settings.bot_token

    def _post(self, step: str, conversation: int, path: str, body: dict[str, Any]) -> None:
        url = (
            f"{self.settings.url}/api/v1/accounts/{self.settings.account_id}"
            f"/conversations/{conversation}/{path}"
        )
        try:
            reply = self.http.post(url, json=body, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise ChatwootError(f"{step}: Chatwoot unreachable: {error}") from None
        if reply.status_code >= 300:
            raise ChatwootError(
                f"{step}: Chatwoot answered {reply.status_code}: {reply.text[:200]}"
            )

    def steps(self, handoff: dict[str, Any]) -> list[Step]:
        package = handoff["package"]
        conversation = int(package["context"]["chatwoot_conversation_id"])
        customer = package.get("customer") or {}
        intent = package.get("intent") or {}
        attributes = {
            "handoff_id": handoff["id"],
            "handoff_reason": package["reason"]["code"],
            "intent": intent.get("name"),
            "intent_confidence": intent.get("confidence"),
            "customer_tier": customer.get("tier"),
            "cdp_id": customer.get("customer_id"),
            "routing_rule": handoff["rule_id"],
            "triage_score": handoff["score"],
            "language": package.get("language"),
            "page_url": package.get("context", {}).get("page_url"),
        }
        note = (
            f"**Handoff** reason={package['reason']['code']} team={handoff['team']} "
            f"priority={handoff['priority']} rule={handoff['rule_id']}\n"
            f"Summary: {package['summary']}"
        )
        team_id = self.settings.team_ids.get(handoff["team"])
        steps: list[Step] = [
            (
                "custom_attributes",
                lambda: self._post(
                    "custom_attributes",
                    conversation,
                    "custom_attributes",
                    {"custom_attributes": {k: v for k, v in attributes.items() if v is not None}},
                ),
            ),
            (
                "private_note",
                lambda: self._post(
                    "private_note",
                    conversation,
                    "messages",
                    {"content": note, "message_type": "outgoing", "private": True},
                ),
            ),
            (
                "priority",
                lambda: self._post(
                    "priority",
                    conversation,
                    "toggle_priority",
                    {"priority": PRIORITIES[handoff["priority"]]},
                ),
            ),
        ]
        if team_id is not None:
            steps.append(
                (
                    "team",
                    lambda: self._post("team", conversation, "assignments", {"team_id": team_id}),
                )
            )
        steps.append(
            (
                "open",
                lambda: self._post("open", conversation, "toggle_status", {"status": "open"}),
            )
        )
        return steps

    def ownership_change(self, payload: dict[str, Any]) -> tuple[str, HandoffState] | None:
        """A hand-back (status pending) or resolve on a conversation we handed off."""
        if payload.get("event") not in (
            "conversation_status_changed",
            "conversation_updated",
            "conversation_resolved",
        ):
            return None
        handoff_id = (payload.get("custom_attributes") or {}).get("handoff_id")
        state = STATUS_TO_STATE.get(str(payload.get("status")))
        if not handoff_id or state is None:
            return None
        return str(handoff_id), state

    def webhook_allowed(self, token: str) -> bool:
        return hmac.compare_digest(token, self.settings.webhook_token)


def pending_steps(desk: ChatwootDesk, handoff: dict[str, Any], done: set[str]) -> list[Step]:
    return [(name, call) for name, call in desk.steps(handoff) if name not in done]


async def sync_handoff(console: Console, desk: ChatwootDesk, handoff_id: str) -> None:
    """Mirror one handoff to Chatwoot, skipping steps already done; a failure stops the rest."""

    def snapshot(session: Any) -> tuple[dict[str, Any] | None, set[str]]:
        handoff = get_handoff(session, handoff_id)
        if handoff is None or "chatwoot_conversation_id" not in handoff.package.get("context", {}):
            return None, set()
        done = {
            event.type.removeprefix(STEP_EVENT_PREFIX)
            for event in session.query(HandoffEvent).filter_by(handoff_id=handoff_id)
            if event.type.startswith(STEP_EVENT_PREFIX)
        }
        view = {
            "id": handoff.id,
            "package": handoff.package,
            "team": handoff.team,
            "priority": handoff.priority,
            "rule_id": handoff.rule_id,
            "score": handoff.triage_score,
        }
        return view, done

    handoff, done = await console.db(snapshot)
    if handoff is None:
        return
    for name, call in pending_steps(desk, handoff, done):
        try:
            await asyncio.to_thread(call)
        except ChatwootError as error:
            logger.error("handoff %s not mirrored to Chatwoot: %s", handoff_id, error)
            return

        def record(session: Any, step: str = name) -> None:
            session.add(
                HandoffEvent(
                    handoff_id=handoff_id,
                    type=f"{STEP_EVENT_PREFIX}{step}",
                    actor="console",
                    at=datetime.now(timezone.utc),
                    details={},
                )
            )

        await console.db(record)
