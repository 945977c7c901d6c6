"""The Chatwoot adapter against a local HTTP server replaying recorded Chatwoot answers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cdp.db import transaction
from cdp.handoff.config import routing_table
from cdp.handoff.models import HandoffEvent, HandoffState
from cdp.handoff.package import HandoffRequest
from cdp.handoff.service import request_handoff
from console.app import Console
from console.helpdesk.chatwoot import ChatwootDesk, sync_handoff
from console.settings import ChatwootSettings, ConsoleSettings

FIXTURES = Path(__file__).with_name("fixtures") / "chatwoot"
BOT_TOKEN = "bot-token-1"


@dataclass
class ReplayChatwoot:
    """Answers each call with the recorded response for its path; records what it received."""

    exchanges: dict[str, Any]
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_once: set[str] = field(default_factory=set)
    url: str = ""

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        suffix = path.rsplit("/", 1)[-1]
        self.received.append(
            {"method": method, "path": path, "token": headers.get("api_access_token"), "body": body}
        )
        if suffix in self.fail_once:
            self.fail_once.discard(suffix)
            return 500, {"error": "Internal Server Error"}
        exchange = self.exchanges[f"{method} {suffix}"]
        return exchange["status"], exchange["response"]


@pytest.fixture
def chatwoot() -> Iterator[ReplayChatwoot]:
    replay = ReplayChatwoot(json.loads((FIXTURES / "exchanges.json").read_text()))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer = replay.answer("POST", self.path, dict(self.headers), body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield replay
    server.shutdown()


def settings_for(url: str, database_url: str) -> tuple[ConsoleSettings, ChatwootSettings]:
    chatwoot = ChatwootSettings(
        url=url, account_id=1, bot_token=BOT_TOKEN, team_ids={"vip_care": 4}, webhook_token="hook"
    )
    console = ConsoleSettings(
        database_url=database_url,
        secret="s",
        rasa_url="http://127.0.0.1:9",
        rasa_token="t",
        internal_token="i",
        chatwoot=chatwoot,
    )
    return console, chatwoot


def chatwoot_handoff(engine: Engine) -> str:
    request = HandoffRequest(
        conversation_id="chatwoot-567",
        message_id="m-1",
        reason="user_requested",
        requested_at=datetime.now(timezone.utc),
        channel="chatwoot",
        intent="human_handoff",
        confidence=0.97,
        metadata={"chatwoot_conversation_id": 567},
        events=[{"event": "user", "text": "I need a person", "timestamp": 1.0}],
    )
    from cdp.importer import import_file
    from tests.handoff.conftest import DEMO_FILE

    with transaction(engine) as session:
        import_file(session, DEMO_FILE)
        return request_handoff(session, request, "C-1001", routing_table(), timedelta(minutes=5))[
            0
        ].id


def test_handoff_is_mirrored_in_order_and_resumes_without_repeating(
    chatwoot: ReplayChatwoot, cdp_url: str, cdp_engine: Engine
) -> None:
    handoff_id = chatwoot_handoff(cdp_engine)
    console_settings, settings = settings_for(chatwoot.url, cdp_url)
    console, desk = Console(console_settings), ChatwootDesk(settings)
    chatwoot.fail_once = {"assignments"}
    asyncio.run(sync_handoff(console, desk, handoff_id))
    asyncio.run(sync_handoff(console, desk, handoff_id))  # the retry after the failure
    asyncio.run(sync_handoff(console, desk, handoff_id))  # and a redelivery: nothing left to do

    base = "/api/v1/accounts/1/conversations/567/"
    assert [r["path"].removeprefix(base) for r in chatwoot.received] == [
        "custom_attributes",
        "messages",
        "toggle_priority",
        "assignments",  # fails
        "assignments",
        "toggle_status",  # the retry repeats only what did not happen
    ]
    assert {r["token"] for r in chatwoot.received} == {BOT_TOKEN}
    exchanges = chatwoot.exchanges
    attributes = chatwoot.received[0]["body"]
    expected = json.loads(
        json.dumps(exchanges["POST custom_attributes"]["request"]).replace("<handoff>", handoff_id)
    )
    assert {
        k: attributes["custom_attributes"][k] for k in expected["custom_attributes"]
    } == expected["custom_attributes"]
    note = chatwoot.received[1]["body"]
    assert note["private"] is True and note["content"].startswith(
        "**Handoff** reason=user_requested team=vip_care"
    )
    assert "Summary: Customer asked for a person" in note["content"]
    for index, key in (
        (2, "POST toggle_priority"),
        (4, "POST assignments"),
        (5, "POST toggle_status"),
    ):
        assert chatwoot.received[index]["body"] == exchanges[key]["request"]
    with transaction(cdp_engine) as session:
        steps = session.scalars(
            select(HandoffEvent.type).where(
                HandoffEvent.handoff_id == handoff_id, HandoffEvent.type.like("chatwoot_%")
            )
        ).all()
    assert sorted(steps) == sorted(
        [
            "chatwoot_custom_attributes",
            "chatwoot_private_note",
            "chatwoot_priority",
            "chatwoot_team",
            "chatwoot_open",
        ]
    )
    console.engine.dispose()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("handed_back", HandoffState.RETURNED),
        ("resolved", HandoffState.RESOLVED),
        ("opened", None),
        ("not_ours", None),
        ("message", None),
    ],
)
def test_webhooks_say_who_owns_the_conversation(name: str, expected: HandoffState | None) -> None:
    payload = json.loads((FIXTURES / "webhooks.json").read_text())[name]
    _, settings = settings_for("http://chatwoot.invalid", "sqlite://")
    change = ChatwootDesk(settings).ownership_change(payload)
    assert change == (None if expected is None else ("<handoff>", expected))
    assert ChatwootDesk(settings).webhook_allowed("hook") and not ChatwootDesk(
        settings
    ).webhook_allowed("nope")
