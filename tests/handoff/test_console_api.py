"""The console over HTTP: login, queues by team and priority, masking, claim, reply, hand-back."""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy import Engine, select

from cdp.db import transaction
from cdp.handoff.config import routing_table
from cdp.handoff.models import Handoff, HandoffMessage, HandoffState
from cdp.handoff.package import HandoffRequest
from cdp.handoff.service import request_handoff
from cdp.privacy.audit import audit_entries
from tests.handoff.conftest import ConsoleServer, RecordingRasa


def new_handoff(
    engine: Engine, conversation: str, customer: str | None, wait: timedelta = timedelta(minutes=5)
) -> str:
    request = HandoffRequest(
        conversation_id=conversation,
        message_id="m-1",
        reason="user_requested",
        requested_at=datetime.now(timezone.utc),
        channel="socketio",
        intent="human_handoff",
        confidence=0.97,
        events=[{"event": "user", "text": "can I talk to a person", "timestamp": 1.0}],
    )
    with transaction(engine) as session:
        return request_handoff(session, request, customer, routing_table(), wait)[0].id


def listen(console: ConsoleServer, client: requests.Session) -> queue.Queue[tuple[str, str]]:
    """Server-sent events of the console, as (event, data) pairs, read in a thread."""
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    reply = client.get(f"{console.url}/api/stream", stream=True, timeout=30)
    assert reply.status_code == 200

    def read() -> None:
        kind = None
        try:
            for line in reply.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.put((kind, line[6:]))
        except requests.RequestException:
            return  # the console stopped at the end of the test

    threading.Thread(target=read, daemon=True).start()
    return events


def wait_for(events: queue.Queue[tuple[str, str]], kind: str, contains: str = "") -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got, data = events.get(timeout=max(deadline - time.monotonic(), 0.01))
        if got == kind and contains in data:
            return data
    raise AssertionError(f"no {kind} event with {contains!r}")


def test_login_is_required_and_checked(console: ConsoleServer) -> None:
    assert requests.get(f"{console.url}/api/queue", timeout=5).status_code == 401
    assert requests.get(f"{console.url}/api/stream", timeout=5).status_code == 401
    reply = requests.post(
        f"{console.url}/api/login", json={"username": "ava", "password": "nope"}, timeout=10
    )
    assert reply.status_code == 401 and reply.json() == {"error": "wrong username or password"}
    client = console.login("ava")
    assert client.get(f"{console.url}/api/me", timeout=5).json()["teams"] == ["general", "vip_care"]
    assert client.cookies.get("console_session")


def test_queue_view_claim_reply_handback(
    console: ConsoleServer, rasa_api: RecordingRasa, demo_engine: Engine
) -> None:
    ava, leo, sam = console.login("ava"), console.login("leo"), console.login("sam")
    events = listen(console, ava)
    vip = new_handoff(demo_engine, "web-vip", "C-1001")  # gold member: vip_care, high
    visitor = new_handoff(demo_engine, "web-anon", None)  # general, low
    assert console.internal(f"/api/internal/handoffs/{vip}/notify").status_code == 200
    wait_for(events, "queue", vip)

    waiting = ava.get(f"{console.url}/api/queue", timeout=5).json()["waiting"]
    assert [item["id"] for item in waiting] == [vip, visitor]  # priority first
    assert waiting[0]["customer"] == "A. D." and waiting[0]["rule_id"] == "vip"
    assert leo.get(f"{console.url}/api/queue", timeout=5).json()["waiting"] == []
    assert leo.get(f"{console.url}/api/handoffs/{vip}", timeout=5).status_code == 403

    masked = ava.get(f"{console.url}/api/handoffs/{vip}", timeout=5).json()
    assert masked["package"]["customer"]["email"] == "a***@example.com"
    assert masked["package"]["transcript"][0]["text"] == "can I talk to a person"
    assert masked["routing"]["team"] == "vip_care" and masked["events"][0]["type"] == "requested"
    full = sam.get(f"{console.url}/api/handoffs/{vip}", timeout=5).json()
    assert full["package"]["customer"]["email"] == "ana.diaz@example.com"
    with transaction(demo_engine) as session:  # the CDP's audit log names who saw what, and why
        reads = [
            (e.actor, e.action.value, e.purpose, e.fields) for e in audit_entries(session, "C-1001")
        ]
    assert reads == [
        ("console:sam", "read", f"handoff console view (handoff {vip})", ["name", "email", "phone"])
    ]

    # Replying needs a claim; two agents claiming: the second one is told who has it.
    key = {"key": "reply-0001", "text": "Hi Ana, Ava here."}
    assert (
        ava.post(f"{console.url}/api/handoffs/{vip}/reply", json=key, timeout=10).status_code == 403
    )
    assert ava.post(f"{console.url}/api/handoffs/{vip}/claim", timeout=10).status_code == 200
    taken = sam.post(f"{console.url}/api/handoffs/{vip}/claim", timeout=10)
    assert taken.status_code == 409 and "accepted by ava" in taken.json()["error"]
    wait_for(events, "handoff", '"accepted"')

    first = ava.post(f"{console.url}/api/handoffs/{vip}/reply", json=key, timeout=10)
    assert first.status_code == 201 and first.json()["delivery"] == "sent"
    again = ava.post(f"{console.url}/api/handoffs/{vip}/reply", json=key, timeout=10)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert rasa_api.sent == [("web-vip", "Hi Ana, Ava here.")]
    assert rasa_api.calls == [("web-vip", "action_handoff_relay")]

    # Rasa down: the reply is kept and shown as failed; a retry delivers it once.
    rasa_api.fail_with = 503
    failed = ava.post(
        f"{console.url}/api/handoffs/{vip}/reply",
        json={"key": "reply-0002", "text": "Still there?"},
        timeout=10,
    ).json()
    assert failed["delivery"] == "failed" and "503" in failed["delivery_error"]
    rasa_api.fail_with = None
    retried = ava.post(
        f"{console.url}/api/handoffs/{vip}/reply",
        json={"key": "reply-0002", "text": "Still there?", "retry": True},
        timeout=10,
    ).json()
    assert retried["delivery"] == "sent"
    assert rasa_api.sent[-1] == ("web-vip", "Still there?") and len(rasa_api.sent) == 2

    note = ava.post(
        f"{console.url}/api/handoffs/{vip}/note",
        json={"key": "note-00001", "text": "VIP, be nice"},
        timeout=10,
    )
    assert note.status_code == 201 and note.json()["author"] == "note"
    bad = ava.post(
        f"{console.url}/api/handoffs/{vip}/reply", json={"key": "k", "text": "x"}, timeout=10
    )
    assert bad.status_code == 400 and "field key" in bad.json()["error"]

    # Customer messages from Rasa: stored once, pushed live, refused without the token.
    message = {
        "conversation_id": "web-vip",
        "message_id": "rasa-m-9",
        "text": "thanks!",
        "timestamp": time.time(),
    }
    assert console.internal("/api/internal/messages", message, token="wrong").status_code == 401
    assert console.internal("/api/internal/messages", message).json() == {"stored": True}
    assert console.internal("/api/internal/messages", message).json() == {"stored": False}
    assert "thanks!" in wait_for(events, "message", "rasa-m-9")

    # Hand back: the state changes, and the bot is told once.
    handback = ava.post(f"{console.url}/api/handoffs/{vip}/handback", timeout=10)
    assert handback.json() == {"id": vip, "state": "returned"}
    assert ("web-vip", "<returned>") in rasa_api.sent
    with transaction(demo_engine) as session:
        handoff = session.get(Handoff, vip)
        assert handoff.state is HandoffState.RETURNED and handoff.bot_notified_at is not None
        texts = [
            m.text
            for m in session.scalars(select(HandoffMessage).where(HandoffMessage.handoff_id == vip))
        ]
        assert sorted(texts) == sorted(
            ["Hi Ana, Ava here.", "Still there?", "VIP, be nice", "thanks!"]
        )
    assert ava.post(f"{console.url}/api/handoffs/{vip}/resolve", timeout=10).status_code == 409


def test_nobody_accepts_in_time_the_bot_takes_over(
    console: ConsoleServer, rasa_api: RecordingRasa, demo_engine: Engine
) -> None:
    handoff_id = new_handoff(demo_engine, "web-late", "C-1002", wait=timedelta(seconds=0.5))
    deadline = time.monotonic() + 10
    while ("web-late", "<abandoned>") not in rasa_api.sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ("web-late", "<abandoned>") in rasa_api.sent
    with transaction(demo_engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff.state is HandoffState.ABANDONED and handoff.bot_notified_at is not None


def test_a_bot_that_was_not_told_is_told_again(
    console: ConsoleServer, rasa_api: RecordingRasa, demo_engine: Engine
) -> None:
    rasa_api.fail_with = 502
    handoff_id = new_handoff(demo_engine, "web-retry", None, wait=timedelta(seconds=0.3))
    time.sleep(1.0)  # timed out, but Rasa is down: the watchdog keeps trying
    with transaction(demo_engine) as session:
        assert session.get(Handoff, handoff_id).bot_notified_at is None
    rasa_api.fail_with = None
    deadline = time.monotonic() + 10
    while ("web-retry", "<abandoned>") not in rasa_api.sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rasa_api.sent.count(("web-retry", "<abandoned>")) == 1
