"""Handoffs in the database: create once, move through the state machine, keep every message.

Every transition is a compare-and-set on the current state inside the caller's transaction
(`UPDATE ... WHERE state IN (...)`), so two agents claiming one conversation cannot both win,
and each successful transition writes exactly one `handoff_events` row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cdp.errors import CdpError
from cdp.events.models import Event
from cdp.handoff.models import (
    OPEN_STATES,
    Agent,
    AgentRole,
    Delivery,
    Handoff,
    HandoffEvent,
    HandoffMessage,
    HandoffState,
    MessageAuthor,
    ReasonCode,
)
from cdp.handoff.package import PERSONAL_FIELDS, CustomerFacts, HandoffRequest, build_package
from cdp.handoff.routing import Decision, RoutingTable, features_of, route
from cdp.orders.models import Order, OrderStatus
from cdp.privacy.audit import record_audit
from cdp.privacy.models import AuditAction
from cdp.profiles.models import Profile

CLOSED_STATES = (HandoffState.RESOLVED, HandoffState.RETURNED, HandoffState.ABANDONED)
OPEN_ORDER_STATUSES = (OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.SHIPPED)
SPENT_ORDER_STATUSES = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)
# hashlib.scrypt cost: 16 MiB of memory per hash, about 50 ms here.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TRANSITIONS: dict[HandoffState, tuple[HandoffState, ...]] = {
    HandoffState.ACCEPTED: (HandoffState.REQUESTED,),
    HandoffState.RESOLVED: (HandoffState.ACCEPTED,),
    HandoffState.RETURNED: (HandoffState.REQUESTED, HandoffState.ACCEPTED),
    HandoffState.ABANDONED: (HandoffState.REQUESTED,),
}


class HandoffError(CdpError):
    """A handoff operation that cannot happen; the message says which handoff and why."""


class HandoffConflict(HandoffError):
    """The handoff is not in a state that allows this (someone else got there first)."""


# --- customer facts -------------------------------------------------------------------------


def customer_facts(
    session: Session, customer_id: str | None, now: datetime
) -> CustomerFacts | None:
    """What the package says about the customer, from the profile, orders and events."""
    if customer_id is None:
        return None
    profile = session.get(Profile, customer_id)
    if profile is None:
        return None
    orders = session.scalars(select(Order).where(Order.customer_id == customer_id)).all()
    spent = [o for o in orders if o.status in SPENT_ORDER_STATUSES]
    currencies = {o.currency for o in spent}
    last_event = session.scalars(
        select(Event)
        .where(Event.customer_id == customer_id)
        .order_by(Event.occurred_at.desc())
        .limit(1)
    ).first()
    name = " ".join(part for part in (profile.first_name, profile.last_name) if part) or None
    tier = profile.custom.get("loyalty_tier")
    return CustomerFacts(
        customer_id=customer_id,
        name=name,
        email=profile.email,
        phone=profile.phone,
        language=profile.language,
        tier=str(tier) if tier else None,
        lifetime_value=float(sum(o.total for o in spent)) if spent else 0.0,
        currency=currencies.pop() if len(currencies) == 1 else None,
        last_event=(
            {"type": last_event.type, "at": last_event.occurred_at.isoformat()}
            if last_event
            else None
        ),
        open_orders=sum(1 for o in orders if o.status in OPEN_ORDER_STATUSES),
        tenure_days=(now - profile.created_at).days,
        sources={
            "tier": "profile.custom.loyalty_tier",
            "lifetime_value": "sum of paid, shipped and delivered orders",
            "lead_score": "not computed yet",
        },
    )


# --- handoffs -------------------------------------------------------------------------------


def get_handoff(session: Session, handoff_id: str) -> Handoff | None:
    return session.get(Handoff, handoff_id)


def open_handoff(session: Session, conversation_id: str) -> Handoff | None:
    """The conversation's handoff that a person owns now, if any."""
    return session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation_id, Handoff.state.in_(OPEN_STATES)
        )
    ).first()


def _event(
    session: Session,
    handoff_id: str,
    kind: str,
    actor: str,
    now: datetime,
    from_state: HandoffState | None = None,
    to_state: HandoffState | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        HandoffEvent(
            handoff_id=handoff_id,
            type=kind,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value if to_state else None,
            actor=actor,
            at=now,
            details=details or {},
        )
    )


def create_handoff(
    session: Session,
    package: dict[str, Any],
    decision: Decision,
    now: datetime,
    accept_within: timedelta,
) -> tuple[Handoff, bool]:
    """Store a new handoff in `requested`; (handoff, created).

    Idempotent on the package's handoff id, and a conversation that already has an open
    handoff keeps it: the second request returns the first, so nothing is duplicated.
    """
    handoff_id = package["handoff_id"]
    existing = session.get(Handoff, handoff_id)
    if existing is not None:
        return existing, False
    conversation_id = package["conversation"]["id"]
    current = open_handoff(session, conversation_id)
    if current is not None:
        return current, False
    reason = package["reason"]["code"]
    try:
        ReasonCode(reason)
    except ValueError:
        allowed = [code.value for code in ReasonCode]
        raise HandoffError(
            f"handoff {handoff_id}: field reason.code: {reason!r} is not one of {allowed}"
        ) from None
    customer = package.get("customer") or {}
    handoff = Handoff(
        id=handoff_id,
        conversation_id=conversation_id,
        customer_id=customer.get("customer_id"),
        state=HandoffState.REQUESTED,
        reason=ReasonCode(reason),
        channel=package["conversation"].get("channel"),
        language=package.get("language"),
        team=decision.team,
        priority=decision.priority,
        priority_rank=decision.priority_rank,
        triage_score=decision.score,
        rule_id=decision.rule_id,
        package=package,
        routing=decision.as_dict(),
        requested_at=now,
        deadline_at=now + accept_within,
    )
    try:
        with session.begin_nested():
            session.add(handoff)
            session.flush()
    except IntegrityError:
        # A concurrent request for the same conversation or id won the insert.
        winner = session.get(Handoff, handoff_id) or open_handoff(session, conversation_id)
        if winner is None:
            raise
        return winner, False
    _event(
        session,
        handoff_id,
        "requested",
        "bot",
        now,
        None,
        HandoffState.REQUESTED,
        {"reason": reason, "routing": decision.as_dict()},
    )
    return handoff, True


def transition(
    session: Session,
    handoff_id: str,
    to_state: HandoffState,
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
    agent: str | None = None,
) -> Handoff:
    """Move a handoff to `to_state` if its current state allows it; one event per success.

    `agent` (for accept, and for closing an accepted handoff) must be the owner: a claim is
    a compare-and-set, so of two agents claiming at once exactly one succeeds.
    """
    allowed = TRANSITIONS[to_state]
    values: dict[str, Any] = {"state": to_state}
    conditions = [Handoff.id == handoff_id, Handoff.state.in_(allowed)]
    if to_state is HandoffState.ACCEPTED:
        values.update(agent=agent, accepted_at=now)
    else:
        values.update(closed_at=now)
        if agent is not None:
            conditions.append((Handoff.agent == agent) | (Handoff.agent.is_(None)))
    before = session.scalars(select(Handoff.state).where(Handoff.id == handoff_id)).first()
    if before is None:
        raise HandoffError(f"handoff {handoff_id}: no such handoff")
    result = session.execute(
        update(Handoff)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalars(select(Handoff).where(Handoff.id == handoff_id)).one()
        session.refresh(current)
        owner = f" by {current.agent}" if current.agent else ""
        raise HandoffConflict(
            f"handoff {handoff_id}: cannot move to {to_state.value}: "
            f"it is {current.state.value}{owner}"
        )
    _event(session, handoff_id, to_state.value, actor, now, before, to_state, details)
    handoff = session.get(Handoff, handoff_id)
    assert handoff is not None
    session.refresh(handoff)
    return handoff


def request_handoff(
    session: Session,
    request: HandoffRequest,
    customer_id: str | None,
    table: RoutingTable,
    accept_within: timedelta,
) -> tuple[Handoff, bool]:
    """Build the package, route it and store the handoff; (handoff, created).

    Outside business hours the wait is the routing file's `outside_timeout_seconds`; when
    that is 0 the handoff is closed as `abandoned` at once and the caller offers the customer
    a callback or a ticket in the same turn.
    """
    now = request.requested_at
    facts = customer_facts(session, customer_id, now)
    package = build_package(replace(request, customer=facts))
    decision = route(features_of(package, table), table)
    hours = table.business_hours
    if hours is not None and not hours.is_open(now):
        accept_within = timedelta(seconds=hours.outside_timeout_seconds)
    handoff, created = create_handoff(session, package, decision, now, accept_within)
    if created and accept_within <= timedelta(0):
        details = {"why": "outside business hours, nobody can accept"}
        handoff = transition(session, handoff.id, HandoffState.ABANDONED, "bot", now, details)
        mark_bot_told(session, handoff.id, now)
    return handoff, created


def record_followup(session: Session, handoff_id: str, choice: str, now: datetime) -> None:
    """The customer's choice after nobody could take the conversation: callback or ticket."""
    if choice not in ("callback", "ticket"):
        raise HandoffError(
            f"handoff {handoff_id}: field followup: {choice!r} is not callback or ticket"
        )
    session.execute(update(Handoff).where(Handoff.id == handoff_id).values(followup=choice))
    _event(session, handoff_id, f"followup_{choice}", "customer", now)


def last_closed_handoff(session: Session, conversation_id: str) -> Handoff | None:
    return session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.state.in_(CLOSED_STATES))
        .order_by(Handoff.closed_at.desc())
        .limit(1)
    ).first()


def queue(
    session: Session, teams: Sequence[str] | None, states: Sequence[HandoffState]
) -> list[Handoff]:
    """Handoffs in `states`, most important first: priority, then score, then longest wait."""
    query = select(Handoff).where(Handoff.state.in_(states))
    if teams is not None:
        query = query.where(Handoff.team.in_(teams))
    query = query.order_by(
        Handoff.priority_rank.desc(), Handoff.triage_score.desc(), Handoff.requested_at
    )
    return list(session.scalars(query))


def overdue(session: Session, now: datetime) -> list[Handoff]:
    """Requested handoffs nobody accepted in time."""
    return list(
        session.scalars(
            select(Handoff).where(
                Handoff.state == HandoffState.REQUESTED, Handoff.deadline_at <= now
            )
        )
    )


def bot_not_told(session: Session) -> list[Handoff]:
    """Closed handoffs whose end Rasa has not acknowledged: the bot must not stay silent."""
    return list(
        session.scalars(
            select(Handoff).where(
                Handoff.state.in_(CLOSED_STATES), Handoff.bot_notified_at.is_(None)
            )
        )
    )


def mark_bot_told(session: Session, handoff_id: str, now: datetime) -> None:
    session.execute(update(Handoff).where(Handoff.id == handoff_id).values(bot_notified_at=now))


def events_of(session: Session, handoff_id: str) -> list[HandoffEvent]:
    return list(
        session.scalars(
            select(HandoffEvent)
            .where(HandoffEvent.handoff_id == handoff_id)
            .order_by(HandoffEvent.id)
        )
    )


# --- messages -------------------------------------------------------------------------------


def add_message(
    session: Session,
    handoff_id: str,
    message_id: str,
    author: MessageAuthor,
    text: str,
    now: datetime,
    agent: str | None = None,
) -> tuple[HandoffMessage, bool]:
    """Store a message once per id; (message, created). A redelivery returns the first copy."""
    existing = session.get(HandoffMessage, message_id)
    if existing is not None:
        if existing.handoff_id != handoff_id:
            raise HandoffError(
                f"message {message_id}: field id: already used in handoff {existing.handoff_id}"
            )
        return existing, False
    if not text.strip():
        raise HandoffError(f"message {message_id}: field text: must not be empty")
    message = HandoffMessage(
        id=message_id,
        handoff_id=handoff_id,
        author=author,
        agent=agent,
        text=text,
        created_at=now,
        delivery=Delivery.PENDING if author is MessageAuthor.AGENT else None,
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        winner = session.get(HandoffMessage, message_id)
        if winner is None:
            raise
        return winner, False
    return message, True


def messages_of(session: Session, handoff_id: str) -> list[HandoffMessage]:
    return list(
        session.scalars(
            select(HandoffMessage)
            .where(HandoffMessage.handoff_id == handoff_id)
            .order_by(HandoffMessage.created_at, HandoffMessage.id)
        )
    )


def set_delivery(
    session: Session, message_id: str, delivery: Delivery, error: str | None = None
) -> None:
    """Record the outcome of sending an agent reply; `sent` is final."""
    session.execute(
        update(HandoffMessage)
        .where(HandoffMessage.id == message_id, HandoffMessage.delivery != Delivery.SENT)
        .values(delivery=delivery, delivery_error=error)
    )


def claim_relay(session: Session, message_id: str, now: datetime) -> HandoffMessage | None:
    """The agent reply to utter, or None if it was already uttered (or never existed)."""
    result = session.execute(
        update(HandoffMessage)
        .where(
            HandoffMessage.id == message_id,
            HandoffMessage.author == MessageAuthor.AGENT,
            HandoffMessage.relayed_at.is_(None),
        )
        .values(relayed_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(HandoffMessage, message_id)


# --- agents ---------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """scrypt with a random salt, in a self-describing string."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encode = base64.b64encode
    return (
        f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def create_agent(
    session: Session,
    username: str,
    display_name: str,
    role: AgentRole,
    teams: list[str],
    password: str,
    now: datetime,
) -> Agent:
    """A new console account; refuses a taken username or a short password."""
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise HandoffError(f"agent {username!r}: field username: letters, digits, _ - . only")
    if len(password) < 8:
        raise HandoffError(f"agent {username}: field password: must be at least 8 characters")
    if session.get(Agent, username) is not None:
        raise HandoffError(f"agent {username}: field username: already exists")
    agent = Agent(
        username=username,
        display_name=display_name,
        role=role,
        teams=sorted(set(teams)),
        password_hash=hash_password(password),
        created_at=now,
    )
    session.add(agent)
    session.flush()
    return agent


def authenticate(session: Session, username: str, password: str) -> Agent | None:
    agent = session.get(Agent, username)
    if agent is None:
        # Same cost as a real check, so a missing user does not answer faster.
        verify_password(password, hash_password("not-a-real-password"))
        return None
    return agent if verify_password(password, agent.password_hash) else None


def count_agents(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Agent)) or 0


def may_see_personal_data(agent: Agent) -> bool:
    return agent.role is AgentRole.SUPERVISOR


def record_personal_data_read(
    session: Session, handoff: Handoff, agent: Agent, purpose: str
) -> None:
    """An entry in the CDP's audit log for every unmasked view of a customer's personal data."""
    if handoff.customer_id is None:
        return
    record_audit(
        session,
        f"console:{agent.username}",
        AuditAction.READ,
        handoff.customer_id,
        f"{purpose} (handoff {handoff.id})",
        PERSONAL_FIELDS,
    )
