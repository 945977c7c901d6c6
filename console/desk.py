"""What the console does with the database: one function per agent action, JSON-ready results.

Each takes the SQLAlchemy session first and runs inside one transaction opened by the caller
(app.py), so a refused action (wrong state, wrong agent, wrong team) writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from cdp.clock import isoformat_z
from cdp.handoff.models import (
    OPEN_STATES,
    Agent,
    Delivery,
    Handoff,
    HandoffMessage,
    HandoffState,
    MessageAuthor,
)
from cdp.handoff.package import masked_package
from cdp.handoff.service import (
    HandoffError,
    add_message,
    events_of,
    get_handoff,
    may_see_personal_data,
    messages_of,
    queue,
    record_personal_data_read,
    set_delivery,
    transition,
)

TEXT_MAX_LENGTH = 4000


class Forbidden(HandoffError):
    """The agent may not do this to this handoff (not their team, not their conversation)."""


class NotFound(HandoffError):
    """No such handoff or message."""


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "username": agent.username,
        "display_name": agent.display_name,
        "role": agent.role.value,
        "teams": agent.teams,
        "sees_personal_data": may_see_personal_data(agent),
    }


def _teams_of(agent: Agent) -> list[str] | None:
    return None if may_see_personal_data(agent) else list(agent.teams)


def _customer_label(handoff: Handoff, agent: Agent) -> str:
    package = masked_package(handoff.package, may_see_personal_data(agent))
    customer = package.get("customer") or {}
    return customer.get("name") or (
        "anonymous visitor" if not customer else customer["customer_id"]
    )


def queue_item(handoff: Handoff, agent: Agent, now: datetime) -> dict[str, Any]:
    return {
        "id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "state": handoff.state.value,
        "team": handoff.team,
        "priority": handoff.priority,
        "score": handoff.triage_score,
        "rule_id": handoff.rule_id,
        "reason": handoff.reason.value,
        "channel": handoff.channel,
        "language": handoff.language,
        "agent": handoff.agent,
        "summary": handoff.package.get("summary"),
        "customer": _customer_label(handoff, agent),
        "requested_at": isoformat_z(handoff.requested_at),
        "waiting_seconds": int((now - handoff.requested_at).total_seconds()),
    }


def agent_queues(session: Session, agent: Agent, now: datetime) -> dict[str, Any]:
    """Waiting handoffs of the agent's teams (all teams for a supervisor) and their own."""
    waiting = queue(session, _teams_of(agent), [HandoffState.REQUESTED])
    mine = [
        h
        for h in queue(session, None, [HandoffState.ACCEPTED])
        if h.agent == agent.username or may_see_personal_data(agent)
    ]
    return {
        "waiting": [queue_item(h, agent, now) for h in waiting],
        "mine": [queue_item(h, agent, now) for h in mine],
    }


def message_json(message: HandoffMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "handoff_id": message.handoff_id,
        "author": message.author.value,
        "agent": message.agent,
        "text": message.text,
        "at": isoformat_z(message.created_at),
        "delivery": message.delivery.value if message.delivery else None,
        "delivery_error": message.delivery_error,
    }


def _visible(session: Session, handoff_id: str, agent: Agent) -> Handoff:
    handoff = get_handoff(session, handoff_id)
    if handoff is None:
        raise NotFound(f"handoff {handoff_id}: no such handoff")
    teams = _teams_of(agent)
    if teams is not None and handoff.team not in teams and handoff.agent != agent.username:
        raise Forbidden(f"handoff {handoff_id}: team {handoff.team} is not one of yours")
    return handoff


def _owned(session: Session, handoff_id: str, agent: Agent) -> Handoff:
    handoff = _visible(session, handoff_id, agent)
    if handoff.state is not HandoffState.ACCEPTED:
        raise Forbidden(f"handoff {handoff_id}: it is {handoff.state.value}; claim it first")
    if handoff.agent != agent.username and not may_see_personal_data(agent):
        raise Forbidden(f"handoff {handoff_id}: {handoff.agent} owns this conversation")
    return handoff


def conversation_view(session: Session, handoff_id: str, agent: Agent) -> dict[str, Any]:
    """The package (masked for the agent's role), routing, transcript since, and history."""
    handoff = _visible(session, handoff_id, agent)
    unmasked = may_see_personal_data(agent)
    now = datetime.now(timezone.utc)
    if unmasked:
        record_personal_data_read(session, handoff, agent, "handoff console view")
    return {
        **queue_item(handoff, agent, now),
        "package": masked_package(handoff.package, unmasked),
        "routing": handoff.routing,
        "messages": [message_json(m) for m in messages_of(session, handoff.id)],
        "events": [
            {"type": e.type, "actor": e.actor, "at": isoformat_z(e.at), "details": e.details}
            for e in events_of(session, handoff.id)
        ],
    }


def claim(session: Session, handoff_id: str, agent: Agent) -> Handoff:
    _visible(session, handoff_id, agent)
    now = datetime.now(timezone.utc)
    return transition(
        session, handoff_id, HandoffState.ACCEPTED, agent.username, now, agent=agent.username
    )


def close(session: Session, handoff_id: str, agent: Agent, to_state: HandoffState) -> Handoff:
    handoff = _visible(session, handoff_id, agent)
    if handoff.state is HandoffState.ACCEPTED:
        _owned(session, handoff_id, agent)
    now = datetime.now(timezone.utc)
    owner = None if may_see_personal_data(agent) else agent.username
    return transition(session, handoff_id, to_state, agent.username, now, agent=owner)


def _checked_text(handoff_id: str, key: str, text: object) -> str:
    if not isinstance(key, str) or not 8 <= len(key) <= 100:
        raise HandoffError(f"handoff {handoff_id}: field key: must be a string of 8-100 characters")
    if not isinstance(text, str) or not text.strip():
        raise HandoffError(f"handoff {handoff_id}: field text: must be a non-empty string")
    if len(text) > TEXT_MAX_LENGTH:
        raise HandoffError(f"handoff {handoff_id}: field text: longer than {TEXT_MAX_LENGTH}")
    return text.strip()


def write(
    session: Session, handoff_id: str, agent: Agent, key: str, text: object, author: MessageAuthor
) -> tuple[dict[str, Any], bool]:
    """Store a reply (owner only) or an internal note; (message, created); same key, same row."""
    clean = _checked_text(handoff_id, key, text)
    if author is MessageAuthor.AGENT:
        _owned(session, handoff_id, agent)
    else:
        _visible(session, handoff_id, agent)
    message_id = f"{agent.username}:{key}"
    message, created = add_message(
        session, handoff_id, message_id, author, clean, datetime.now(timezone.utc), agent.username
    )
    return message_json(message), created


def delivery_outcome(session: Session, handoff_id: str, error: str | None) -> list[dict[str, Any]]:
    """After a relay attempt: replies the bot uttered are sent; the rest failed if it errored."""
    changed = []
    for message in messages_of(session, handoff_id):
        if message.author is not MessageAuthor.AGENT or message.delivery is Delivery.SENT:
            continue
        if message.relayed_at is not None:
            set_delivery(session, message.id, Delivery.SENT)
        elif error is not None:
            set_delivery(session, message.id, Delivery.FAILED, error[:500])
        else:
            set_delivery(session, message.id, Delivery.FAILED, "the bot did not relay it")
        session.refresh(message)
        changed.append(message_json(message))
    return changed


def store_customer_message(
    session: Session, conversation_id: str, message_id: str, text: str, at: datetime
) -> dict[str, Any] | None:
    """A customer message Rasa forwarded (or the tracker showed); None if no person owns it."""
    handoff = next(
        (h for h in queue(session, None, OPEN_STATES) if h.conversation_id == conversation_id),
        None,
    )
    if handoff is None:
        return None
    message, created = add_message(
        session, handoff.id, message_id, MessageAuthor.CUSTOMER, text, at
    )
    return message_json(message) if created else None
