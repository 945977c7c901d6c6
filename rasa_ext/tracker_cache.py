"""Load a conversation from the SQL tracker store without re-reading all of it every turn.

Rasa's SQLTrackerStore reads, parses and deserialises every event of the session on each
message, so a turn costs more the longer the conversation is (44% of a turn at turn 200 here).
This keeps the events of recently active conversations (the very objects the server just
saved, so later work can recognise them) and reads only the rows written since; a new session,
or a conversation not in the cache, is loaded in full as before.
Events are never changed once stored, and Rasa's lock store lets one process at a time work on
a conversation, so rows with a higher id than the last one seen are exactly what is new, also
when other replicas wrote them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from rasa_ext.recent import RecentItems, continues
from rasa_ext.tracker_state import copy_for_reuse

# Rasa's own: the full history of all sessions is rarely asked for (the HTTP API), and saving
# stays Rasa's, followed by keeping what was saved.
original_retrieve = SQLTrackerStore._retrieve
original_save = SQLTrackerStore.save

CACHE_SIZE_ENV = "RASA_TRACKER_CACHE_SIZE"
DEFAULT_CACHE_SIZE = 5000  # conversations


@dataclass
class CachedSession:
    """The events of a conversation's latest session and the id of the last row read.

    `tracker` is a private copy of the tracker as last saved, holding exactly `events`: handed
    out once by the next read if no row was written since, instead of replaying every event.
    """

    last_row_id: int
    events: list[Event]
    tracker: DialogueStateTracker | None = None
    domain: Domain | None = None


def _cache_of(store: SQLTrackerStore) -> RecentItems[str, CachedSession]:
    cache = getattr(store, "_session_cache", None)
    if cache is None:
        cache = RecentItems(CACHE_SIZE_ENV, DEFAULT_CACHE_SIZE)
        store._session_cache = cache  # type: ignore[attr-defined]
    return cache


def _read_session(store: SQLTrackerStore, sender_id: str) -> CachedSession | None:
    """The latest session read in full, with the query Rasa itself uses."""
    with store.session_scope() as session:
        rows = store._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
    if not rows:
        return None
    return CachedSession(rows[-1].id, deserialise_events([json.loads(r.data) for r in rows]))


def _read_newer_rows(store: SQLTrackerStore, sender_id: str, cached: CachedSession) -> bool:
    """Append the rows written after `cached`; False when a new session started among them."""
    event = store.SQLEvent
    with store.session_scope() as session:
        rows = (
            session.query(event.id, event.type_name, event.data)
            .filter(event.sender_id == sender_id, event.id > cached.last_row_id)
            .order_by(event.id)
            .all()
        )
    if any(row.type_name == SessionStarted.type_name for row in rows):
        return False
    if rows:
        cached.events.extend(deserialise_events([json.loads(row.data) for row in rows]))
        cached.last_row_id = rows[-1].id
        cached.tracker = None  # another process wrote to the conversation
    return True


async def retrieve_with_cache(
    self: SQLTrackerStore, sender_id: str, fetch_events_from_all_sessions: bool
) -> DialogueStateTracker | None:
    """`SQLTrackerStore._retrieve`, reading only new rows of a cached latest session."""
    if fetch_events_from_all_sessions:
        return await original_retrieve(self, sender_id, fetch_events_from_all_sessions)
    cache = _cache_of(self)
    cached = cache.get(sender_id)
    if cached is None or not _read_newer_rows(self, sender_id, cached):
        cached = _read_session(self, sender_id)
        if cached is None:
            cache.drop(sender_id)
            return None
        cache.put(sender_id, cached)
    saved, cached.tracker = cached.tracker, None
    if saved is not None and cached.domain is self.domain:
        return saved
    # A new tracker object every time, as Rasa expects; the events themselves are immutable.
    return DialogueStateTracker.from_events(sender_id, list(cached.events), self.domain.slots)


def _row(store: SQLTrackerStore, sender_id: str, event: Event) -> Any:
    """The row Rasa's SQLTrackerStore.save writes for an event."""
    data = event.as_dict()
    return store.SQLEvent(
        sender_id=sender_id,
        type_name=event.type_name,
        timestamp=data.get("timestamp"),
        intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        action_name=data.get("name"),
        data=json.dumps(data),
    )


async def save_and_keep(self: SQLTrackerStore, tracker: DialogueStateTracker) -> None:
    """`SQLTrackerStore.save` for a conversation read through the cache: insert the events
    added since, without counting the stored ones first, and keep them for the next turn."""
    cache = _cache_of(self)
    cached = cache.get(tracker.sender_id)
    events = list(tracker.events)
    if cached is None or self.event_broker is not None or not continues(cached.events, events):
        # Not a continuation of what this process read: Rasa's way, and read afresh next time.
        cache.drop(tracker.sender_id)
        await original_save(self, tracker)
        return
    known = len(cached.events)
    rows = [_row(self, tracker.sender_id, event) for event in events[known:]]
    with self.session_scope() as session:
        session.add_all(rows)
        session.flush()  # assigns the row ids
        last_row_id = rows[-1].id if rows else cached.last_row_id
        session.commit()
    # Keep what Rasa's query returns: the events from the latest session start on. The cached
    # ones already start there, so only the new events can hold a later start.
    starts = [known + i for i, e in enumerate(events[known:]) if isinstance(e, SessionStarted)]
    kept = events[starts[-1] if starts else 0 :]
    # The saved state is reusable when it holds just those events (a tracker read by Rasa does).
    reusable = copy_for_reuse(tracker) if len(kept) == len(events) else None
    cache.put(tracker.sender_id, CachedSession(last_row_id, kept, reusable, self.domain))
