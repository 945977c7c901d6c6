"""Calls to the action server whose cost does not grow with the conversation.

Rasa sends the whole conversation, every event with its full parse data, to the action server
at every custom action, and opens a new HTTP client session (a new connection) for each call.
At turn 100 serialising that payload alone was 14% of a turn. Custom actions here read slots,
the latest message and the current turn; they get the events of the last few user turns
(`RASA_ACTION_TRACKER_TURNS`, default 10) of the current session, and the client keeps its
connections to the action server open between calls.

The rankings in a user event's parse data (every intent's confidence, the response selector's
candidates) were two thirds of each user event and no action reads them there: the latest
message, whose ranking the fallback reads, is sent whole as `latest_message`. They are left
out of the events.
"""

from __future__ import annotations

import asyncio
import os
from types import TracebackType
from typing import Any

import aiohttp
import rasa
import ujson
from rasa.core.actions.action import RemoteAction
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig

TRACKER_TURNS_ENV = "RASA_ACTION_TRACKER_TURNS"
DEFAULT_TRACKER_TURNS = 10


def tracker_turns() -> int:
    raw = os.environ.get(TRACKER_TURNS_ENV, str(DEFAULT_TRACKER_TURNS))
    try:
        turns = int(raw)
    except ValueError:
        raise ValueError(f"{TRACKER_TURNS_ENV} must be a whole number, got {raw!r}") from None
    if turns < 1:
        raise ValueError(f"{TRACKER_TURNS_ENV} must be at least 1, got {turns}")
    return turns


def recent_events(tracker: DialogueStateTracker, turns: int) -> list[Event]:
    """The events from the `turns`-th last user message on, within the current session.

    Read from the end, so the cost depends on `turns`, not on the length of the conversation.
    """
    window: list[Event] = []
    users_seen = 0
    for event in reversed(tracker.events):
        window.append(event)
        if isinstance(event, SessionStarted):
            break
        if isinstance(event, UserUttered):
            users_seen += 1
            if users_seen == turns:
                break
    window.reverse()
    return window


# Parse data an action reads from `latest_message` only, never from earlier user events.
RANKING_KEYS = frozenset({"intent_ranking", "response_selector"})


def event_for_action(event: Event) -> dict[str, Any]:
    """The event as Rasa serialises it, a user message without its rankings."""
    data = event.as_dict()
    parse_data = data.get("parse_data") if isinstance(event, UserUttered) else None
    if parse_data:
        data["parse_data"] = {
            key: value for key, value in parse_data.items() if key not in RANKING_KEYS
        }
    return data


def action_call_format(
    self: RemoteAction, tracker: DialogueStateTracker, domain: Domain
) -> dict[str, Any]:
    """Rasa's `RemoteAction._action_call_format`, with the recent events only, unranked."""
    tracker_state = tracker.current_state(EventVerbosity.NONE)
    tracker_state["events"] = [
        event_for_action(event) for event in recent_events(tracker, tracker_turns())
    ]
    result = {
        "next_action": self._name,
        "sender_id": tracker.sender_id,
        "tracker": tracker_state,
        "version": rasa.__version__,
    }
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(
        self.name()
    ):
        result["domain"] = domain.as_dict()
    return result


class OpenSession:
    """`async with` on a shared client session that leaves it open afterwards."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


# Endpoint id -> (the endpoint, the event loop, its session). Holding the endpoint keeps its id
# from being reused; Rasa builds its endpoints once, when the server starts.
_sessions: dict[int, tuple[EndpointConfig, asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}


def shared_session(self: EndpointConfig) -> OpenSession:
    """One client session per endpoint and event loop, kept open (keep-alive connections).

    Rasa's `EndpointConfig.request` enters `self.session()` per request and closes it after,
    so every call to the action server opened a new connection. Same headers, authentication
    and timeout as Rasa's session; JSON encoded by ujson, which Rasa already depends on.
    """
    loop = asyncio.get_running_loop()
    known = _sessions.get(id(self))
    if known is not None and known[1] is loop and not known[2].closed:
        return OpenSession(known[2])
    auth = None
    if self.basic_auth:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
    session = aiohttp.ClientSession(
        headers=self.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        json_serialize=ujson.dumps,
    )
    _sessions[id(self)] = (self, loop, session)
    return OpenSession(session)
