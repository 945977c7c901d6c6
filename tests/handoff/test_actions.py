"""The bot side: start a handoff, relay agent replies once, end it once, record the follow-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions import cdp_access
from actions.handoff import ActionHandoffEnded, ActionHandoffFollowup, ActionHandoffRelay
from actions.human import ActionContactHuman
from cdp.db import transaction
from cdp.handoff.models import Handoff, HandoffState, MessageAuthor
from cdp.handoff.service import add_message, open_handoff, transition
from cdp.importer import import_file
from tests.actions.trackers import SECRET, token_for, tracker
from tests.handoff.conftest import DEMO_FILE

NOW = datetime.now(timezone.utc)


@pytest.fixture
def actions_cdp(
    cdp_url: str, cdp_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    with transaction(cdp_engine) as session:
        import_file(session, DEMO_FILE)
    monkeypatch.setenv("CDP_DATABASE_URL", cdp_url)
    monkeypatch.setenv("CDP_IDENTITY_SECRET", SECRET)
    monkeypatch.delenv("HANDOFF_CONSOLE_URL", raising=False)
    cdp_access.cdp_engine.cache_clear()
    yield cdp_engine
    cdp_access.cdp_engine().dispose()
    cdp_access.cdp_engine.cache_clear()


def followup_tracker(choice: str) -> Tracker:
    latest = {
        "text": "/handoff_followup",
        "intent": {"name": "handoff_followup"},
        "message_id": "m-3",
        "entities": [{"entity": "followup", "value": choice}],
        "metadata": {},
    }
    return Tracker("conversation-1", {}, latest, [], False, None, {}, "action_listen")


async def test_request_relay_end_and_followup(actions_cdp: Engine) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionContactHuman().run(
        dispatcher, tracker("a person please", token_for("C-1001")), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_human_contact"
    assert events == [
        {"event": "slot", "timestamp": None, "name": "handoff_state", "value": "requested"}
    ]
    with transaction(actions_cdp) as session:
        handoff = open_handoff(session, "conversation-1")
        assert handoff.customer_id == "C-1001" and handoff.package["customer"]["tier"] == "gold"
        transition(session, handoff.id, HandoffState.ACCEPTED, "ava", NOW, agent="ava")
        for key in ("a", "b"):
            add_message(
                session, handoff.id, f"ava:{key}", MessageAuthor.AGENT, f"reply {key}", NOW, "ava"
            )

    relayed = CollectingDispatcher()
    result = await ActionHandoffRelay().run(relayed, tracker(), {})
    assert [m["text"] for m in relayed.messages] == ["reply a", "reply b"]
    assert [(e["event"], e["name"]) for e in result] == [("action", "action_listen")]
    again = CollectingDispatcher()
    await ActionHandoffRelay().run(again, tracker(), {})
    assert again.messages == []  # each reply is uttered once

    # Still owned: the end action keeps the slot and says nothing.
    still = CollectingDispatcher()
    events = await ActionHandoffEnded().run(still, tracker(), {})
    assert still.messages == [] and events[0]["value"] == "accepted"
    with transaction(actions_cdp) as session:
        transition(session, handoff.id, HandoffState.RETURNED, "ava", NOW, agent="ava")
    for expected in (["utter_handoff_back_with_bot"], []):  # announced once, then silent
        ended = CollectingDispatcher()
        events = await ActionHandoffEnded().run(ended, tracker(), {})
        assert [m["response"] for m in ended.messages] == expected
        assert events[0] == {
            "event": "slot",
            "timestamp": None,
            "name": "handoff_state",
            "value": None,
        }


async def test_nobody_accepts_then_a_callback(actions_cdp: Engine) -> None:
    await ActionContactHuman().run(CollectingDispatcher(), tracker("human", None), {})
    with transaction(actions_cdp) as session:
        handoff = open_handoff(session, "conversation-1")
        transition(session, handoff.id, HandoffState.ABANDONED, "timeout", NOW)
    ended = CollectingDispatcher()
    await ActionHandoffEnded().run(ended, tracker(), {})
    assert [m["response"] for m in ended.messages] == ["utter_handoff_unavailable"]
    chosen = CollectingDispatcher()
    await ActionHandoffFollowup().run(chosen, followup_tracker("callback"), {})
    assert [m["response"] for m in chosen.messages] == ["utter_handoff_followup_callback"]
    with transaction(actions_cdp) as session:
        assert session.get(Handoff, handoff.id).followup == "callback"
