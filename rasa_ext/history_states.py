"""Dialogue states of a conversation computed once per turn, not once per turn per turn.

Every policy asks the domain for the states of the whole conversation at every prediction
(`Domain.states_for_tracker_history`), which replays all events from the start and builds a
state at every action: the longer the conversation, the slower each turn, although the policies
keep only their last few states. Conversations grow by appending events, so this keeps, per
conversation, the states of its complete turns and the replayed tracker behind them, and only
adds the states of events appended since. Whenever that could differ from Rasa's result (events
are not a strict continuation of what was seen, a turn was reverted, a session restarted, a loop
started or ran) it recomputes everything as Rasa does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import rasa.shared.core.constants
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_ext.recent import RecentItems, continues

CACHE_SIZE_ENV = "RASA_STATES_CACHE_SIZE"
DEFAULT_CACHE_SIZE = 5000
# Events after which the applied history of earlier events may change (see
# DialogueStateTracker.applied_events): never continued incrementally.
HISTORY_CHANGING_EVENTS = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted)

original_states_for_tracker_history = Domain.states_for_tracker_history


@dataclass
class StatesProgress:
    """How far the states of one conversation have been computed, and the loop's variables."""

    domain: Domain
    rule_only_data: dict[str, Any] | None
    loop_names: set[str]
    events: list[Event]
    replayed: DialogueStateTracker
    states: list[State] = field(default_factory=list)
    last_ml_action_sub_state: Any = None
    turn_was_hidden: bool = False


_progress: RecentItems[tuple[Any, ...], StatesProgress] = RecentItems(
    CACHE_SIZE_ENV, DEFAULT_CACHE_SIZE
)


def _safe_to_append(new_events: list[Event], loop_names: set[str]) -> bool:
    for event in new_events:
        if isinstance(event, HISTORY_CHANGING_EVENTS):
            return False
        if isinstance(event, ActiveLoop) and event.name:
            return False
        if isinstance(event, ActionExecuted) and event.action_name in loop_names:
            return False
    return True


def _add_state(
    domain: Domain,
    progress: StatesProgress,
    prior: DialogueStateTracker,
    hide_rule_turn: bool,
    omit_unset_slots: bool,
    ignore_rule_only_turns: bool,
    states: list[State],
) -> None:
    """The body of Rasa's loop in Domain.states_for_tracker_history, for one prior tracker."""
    if ignore_rule_only_turns:
        if not progress.turn_was_hidden:
            progress.last_ml_action_sub_state = domain._get_prev_action_sub_state(prior)
        if not prior.followup_action and prior.latest_action_name != prior.active_loop_name:
            progress.turn_was_hidden = hide_rule_turn
        if progress.turn_was_hidden:
            return
    state = domain.get_active_state(prior, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, progress.rule_only_data)
        if states:
            domain._substitute_rule_only_user_input(state, states[-1])
        if progress.last_ml_action_sub_state:
            state[rasa.shared.core.constants.PREVIOUS_ACTION] = progress.last_ml_action_sub_state
    states.append(domain._clean_state(state))


def states_for_tracker_history(
    self: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[State]:
    """`Domain.states_for_tracker_history`, continuing from the conversation's last turn."""
    events = list(tracker.events)
    key = (tracker.sender_id, omit_unset_slots, ignore_rule_only_turns, tracker.is_rule_tracker)
    progress = _progress.get(key)
    if (
        progress is None
        or progress.domain is not self
        # Only the ML view of the history uses it; RulePolicy builds an equal dict every call.
        or (ignore_rule_only_turns and progress.rule_only_data != rule_only_data)
        or not continues(progress.events, events)
        or not _safe_to_append(events[len(progress.events) :], progress.loop_names)
    ):
        # Rasa's own computation, then the replayed tracker to continue from next time.
        result = original_states_for_tracker_history(
            self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data
        )
        _remember(
            key, self, tracker, events, omit_unset_slots, ignore_rule_only_turns, rule_only_data
        )
        return result
    _advance(self, progress, events, omit_unset_slots, ignore_rule_only_turns)
    return _with_current_turn(self, progress, omit_unset_slots, ignore_rule_only_turns)


def _advance(
    domain: Domain,
    progress: StatesProgress,
    events: list[Event],
    omit_unset_slots: bool,
    ignore_rule_only_turns: bool,
) -> None:
    """Add the states of complete turns among the events appended since last time."""
    for event in events[len(progress.events) :]:
        if isinstance(event, ActionExecuted):
            _add_state(
                domain,
                progress,
                progress.replayed,
                event.hide_rule_turn,
                omit_unset_slots,
                ignore_rule_only_turns,
                progress.states,
            )
        progress.replayed.update(event)
    progress.events = events


def _with_current_turn(
    domain: Domain, progress: StatesProgress, omit_unset_slots: bool, ignore_rule_only_turns: bool
) -> list[State]:
    """The kept states plus the state of the turn in progress (not kept: it is still growing)."""
    states = list(progress.states)
    scratch = StatesProgress(
        domain,
        progress.rule_only_data,
        progress.loop_names,
        progress.events,
        progress.replayed,
        states,
        progress.last_ml_action_sub_state,
        progress.turn_was_hidden,
    )
    _add_state(
        domain, scratch, progress.replayed, False, omit_unset_slots, ignore_rule_only_turns, states
    )
    return states


def _remember(
    key: tuple[Any, ...],
    domain: Domain,
    tracker: DialogueStateTracker,
    events: list[Event],
    omit_unset_slots: bool,
    ignore_rule_only_turns: bool,
    rule_only_data: dict[str, Any] | None,
) -> None:
    """Keep a conversation whose history is all its events since the session started.

    A conversation with reverted turns or loop executions folded away is not kept: its
    history is not a plain prefix of what comes next.
    """
    start = _events_before_session_start(events)
    applied = tracker.applied_events()
    if len(applied) != len(events) - start or any(
        a is not b for a, b in zip(applied, events[start:], strict=False)
    ):
        _progress.drop(key)
        return
    loop_names = {e.name for e in events if isinstance(e, ActiveLoop) and e.name}
    progress = StatesProgress(
        domain, rule_only_data, loop_names, events[:start], tracker.init_copy()
    )
    _advance(domain, progress, events, omit_unset_slots, ignore_rule_only_turns)
    _progress.put(key, progress)


def _events_before_session_start(events: list[Event]) -> int:
    """Rasa's history starts after the last session start or restart."""
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], (Restarted, SessionStarted)):
            return index + 1
    return 0
