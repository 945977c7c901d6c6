"""Runs in the Rasa venv (called by test_patches.py): the cached SQL tracker store returns what
Rasa's returns, also when another replica wrote to the conversation in between."""

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from rasa_ext.patches import apply_patches
from rasa_ext.tracker_cache import original_retrieve, original_save

domain = Domain.load("domain.yml")


def rows(store, sender):
    event = store.SQLEvent
    with store.session_scope() as session:
        return [
            list(row)
            for row in session.query(
                event.type_name, event.timestamp, event.intent_name, event.action_name, event.data
            )
            .filter(event.sender_id == sender)
            .order_by(event.id)
        ]


def dumped(tracker):
    """Everything Rasa derives from a tracker: events, slots, latest message, loop, paused..."""
    return tracker.current_state(EventVerbosity.ALL) if tracker else None


async def main(url):
    apply_patches()
    this_replica = SQLTrackerStore(domain, host=url)
    other_replica = SQLTrackerStore(domain, host=url)
    checks = {}

    async def agree(name, sender):
        cached = await this_replica.retrieve(sender)
        fresh = await original_retrieve(other_replica, sender, False)
        checks[name] = dumped(cached) == dumped(fresh) and fresh is not None

    tracker = await this_replica.get_or_create_tracker("c1")
    for event in [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        SlotSet("customer_id", "C-1"),
        ActionExecuted("action_listen"),
        UserUttered("hi", {"name": "greet", "confidence": 1}),
    ]:
        tracker.update(event)
    await this_replica.save(tracker)
    await agree("after own save", "c1")

    # A second turn through the cache: only the new events are inserted, as Rasa would.
    mine = await this_replica.retrieve("c1")
    for event in [
        ActionExecuted("action_greet"),
        ActionExecuted("action_listen"),
        UserUttered("repeat", {"name": "repeat_order", "confidence": 1}),
    ]:
        mine.update(event)
    await this_replica.save(mine)
    kept = this_replica._session_cache.get("c1").tracker
    await agree("after a cached turn", "c1")
    checks["saved state handed out once, as a private copy"] = (
        kept is not None
        and kept is not mine
        and this_replica._session_cache.get("c1").tracker is None
    )
    reference = DialogueStateTracker.from_events("c2", list(mine.events), domain.slots)
    await original_save(other_replica, reference)
    checks["rows as Rasa writes them"] = (
        rows(this_replica, "c1")[-3:] == rows(this_replica, "c2")[-3:]
    )

    theirs = await other_replica.retrieve("c1")
    theirs.update(ActionExecuted("action_greet"))
    theirs.update(SlotSet("first_name", "Ana"))
    await other_replica.save(theirs)
    await agree("after another replica appended", "c1")

    theirs = await other_replica.retrieve("c1")
    for event in [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
    ]:
        theirs.update(event)
    await other_replica.save(theirs)
    await agree("after another replica started a new session", "c1")
    checks["new session only"] = [
        e["event"] for e in dumped(await this_replica.retrieve("c1"))["events"]
    ] == ["session_started", "action"]

    checks["unknown conversation"] = await this_replica.retrieve("nobody") is None
    print(json.dumps(checks))


with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tmp) / 't.db'}"))
