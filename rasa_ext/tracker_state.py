"""Tracker operations that Rasa performs by replaying the whole conversation, done incrementally.

`DialogueStateTracker.applied_events()` walks every event of the conversation and is called
several times per turn (session expiry check, policies, actions); `tracker.copy()` replays every
event into a new tracker before each action runs. Both grew with the conversation (together
about 8% of turn 100 here). A tracker's state is a function of its events, so:

- the applied events are kept on the tracker with the number of events they cover and extended
  with the new events, unless one of those could change earlier ones (a new loop name, since
  Rasa decides loop undos by the names of all loops in the conversation);
- a copy takes the state of the original directly (slots copied, events in a new deque)
  instead of rebuilding it event by event.
"""

from __future__ import annotations

import copy
from collections import deque
from itertools import islice

from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

original_applied_events = DialogueStateTracker.applied_events
original_copy = DialogueStateTracker.copy

# Attribute names on the tracker (not part of Rasa's tracker state).
_APPLIED = "_rasa_ext_applied"


class AppliedEvents:
    """The applied events of a tracker's first `count` events, and what they depend on."""

    def __init__(self, count: int, last: Event | None, loops: set[str], events: list[Event]):
        self.count = count
        self.last = last
        self.loops = loops
        self.events = events


def _loop_names(events: list[Event]) -> set[str]:
    return {e.name for e in events if isinstance(e, ActiveLoop) and e.name}


def applied_events(self: DialogueStateTracker) -> list[Event]:
    """Rasa's `applied_events`, computed on the new events only when that gives the same list."""
    total = len(self.events)
    known: AppliedEvents | None = self.__dict__.get(_APPLIED)
    if known is not None and known.count <= total and known.count > 0:
        new_count = total - known.count
        new = list(islice(reversed(self.events), new_count))[::-1] if new_count else []
        boundary_ok = self.events[known.count - 1] is known.last
        if boundary_ok and _loop_names(new) <= known.loops:
            if not new:
                return list(known.events)
            extended = list(known.events)
            _apply(self, new, known.loops, extended)
            self.__dict__[_APPLIED] = AppliedEvents(total, self.events[-1], known.loops, extended)
            return list(extended)
    result = original_applied_events(self)
    if total:
        self.__dict__[_APPLIED] = AppliedEvents(
            total, self.events[-1], _loop_names(list(self.events)), list(result)
        )
    return result


def _apply(
    tracker: DialogueStateTracker, new: list[Event], loops: set[str], applied: list[Event]
) -> None:
    """Rasa's per-event rules of `applied_events`, for the events after the known ones.

    They look back only at the applied list built so far and at the loop names.
    """
    for event in new:
        if isinstance(event, (Restarted, SessionStarted)):
            applied.clear()
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied)
            tracker._undo_till_previous(ActionExecuted, applied)
        elif (
            isinstance(event, ActionExecuted)
            and event.action_name in loops
            and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
        ):
            tracker._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)


def copy_without_replay(self: DialogueStateTracker) -> DialogueStateTracker:
    """Rasa's `tracker.copy()`: the same state, taken over instead of replayed."""
    clone = copy_for_reuse(self)
    clone.__dict__.pop(_APPLIED, None)
    return clone


def copy_for_reuse(self: DialogueStateTracker) -> DialogueStateTracker:
    """A tracker as Rasa rebuilds it from the same events, sharing no mutable state.

    It keeps the applied events computed so far (never changed in place, only replaced).
    """
    clone = copy.copy(self)
    clone.events = deque(self.events, maxlen=self.events.maxlen)
    clone.slots = type(self.slots)()
    for name, slot in self.slots.items():
        slot_copy = copy.copy(slot)
        slot_copy.__dict__.update(copy.deepcopy({"_value": slot._value}))
        clone.slots[name] = slot_copy
    clone.active_loop = copy.copy(self.active_loop)
    clone.latest_action = copy.copy(self.latest_action)
    # A replayed copy is a fresh tracker: no sender source, model, assistant stamp or cache.
    clone.sender_source = None
    clone.model_id = None
    clone.assistant_id = None
    return clone
