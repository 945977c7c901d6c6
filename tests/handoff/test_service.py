"""The ownership state machine in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cdp.db import transaction
from cdp.handoff.config import DEFAULT_ROUTING_FILE
from cdp.handoff.models import (
    AgentRole,
    Delivery,
    Handoff,
    HandoffEvent,
    HandoffState,
    MessageAuthor,
)
from cdp.handoff.package import HandoffRequest
from cdp.handoff.routing import load_table, parse_table
from cdp.handoff.service import (
    HandoffConflict,
    HandoffError,
    add_message,
    authenticate,
    bot_not_told,
    claim_relay,
    create_agent,
    customer_facts,
    events_of,
    mark_bot_told,
    open_handoff,
    overdue,
    queue,
    request_handoff,
    set_delivery,
    transition,
)
from cdp.importer import import_file

DEMO_FILE = Path(__file__).resolve().parents[2] / "cdp" / "seed" / "demo_customers.jsonl"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)
TABLE = load_table(DEFAULT_ROUTING_FILE)
WAIT = timedelta(minutes=5)


@pytest.fixture
def engine(cdp_engine: Engine) -> Engine:
    with transaction(cdp_engine) as session:
        import_file(session, DEMO_FILE)
    return cdp_engine


def ask(
    engine: Engine,
    conversation: str,
    customer: str | None = "C-1001",
    message: str = "m-1",
    text: str = "I want a person",
    table=TABLE,
    at: datetime = NOW,
) -> Handoff:
    request = HandoffRequest(
        conversation_id=conversation,
        message_id=message,
        reason="user_requested",
        requested_at=at,
        channel="socketio",
        intent="human_handoff",
        confidence=0.9,
        events=[{"event": "user", "text": text, "timestamp": 1.0}],
    )
    with transaction(engine) as session:
        return request_handoff(session, request, customer, table, WAIT)[0]


def test_customer_facts_from_profile_and_orders(engine: Engine) -> None:
    with transaction(engine) as session:
        facts = customer_facts(session, "C-1001", NOW)
        assert customer_facts(session, None, NOW) is None
        assert customer_facts(session, "C-9999", NOW) is None
    assert facts is not None
    assert (facts.name, facts.tier, facts.language) == ("Ana Diaz", "gold", "en")
    assert facts.lifetime_value > 0 and facts.currency == "USD"
    assert facts.open_orders >= 0 and facts.tenure_days is not None


def test_request_is_stored_routed_and_idempotent(engine: Engine) -> None:
    first = ask(engine, "conv-1")
    again = ask(engine, "conv-1")  # the same message redelivered
    other_message = ask(engine, "conv-1", message="m-2")  # a second request while waiting
    assert first.id == again.id == other_message.id
    assert first.state is HandoffState.REQUESTED
    assert (first.team, first.rule_id, first.priority) == ("vip_care", "vip", "high")
    assert first.routing["matched"] == [
        "tier=gold in ['gold', 'platinum']",
        "rule raises priority to high",
    ]
    assert first.deadline_at == NOW + WAIT
    assert first.package["customer"]["email"] == "ana.diaz@example.com"
    with transaction(engine) as session:
        assert [e.type for e in events_of(session, first.id)] == ["requested"]
        assert open_handoff(session, "conv-1").id == first.id


def test_the_full_life_and_every_transition_is_an_event(engine: Engine) -> None:
    handoff = ask(engine, "conv-2", customer=None)
    with transaction(engine) as session:
        accepted = transition(session, handoff.id, HandoffState.ACCEPTED, "ava", NOW, agent="ava")
        assert (accepted.state, accepted.agent, accepted.accepted_at) == (
            HandoffState.ACCEPTED,
            "ava",
            NOW,
        )
    with (
        transaction(engine) as session,
        pytest.raises(HandoffConflict, match="it is accepted by ava"),
    ):
        transition(session, handoff.id, HandoffState.ACCEPTED, "leo", NOW, agent="leo")
    with transaction(engine) as session, pytest.raises(HandoffConflict):
        transition(
            session, handoff.id, HandoffState.RESOLVED, "leo", NOW, agent="leo"
        )  # not the owner
    with transaction(engine) as session:
        resolved = transition(session, handoff.id, HandoffState.RESOLVED, "ava", NOW, agent="ava")
        assert resolved.closed_at == NOW and open_handoff(session, "conv-2") is None
        assert [(e.type, e.from_state, e.to_state) for e in events_of(session, handoff.id)] == [
            ("requested", None, "requested"),
            ("accepted", "requested", "accepted"),
            ("resolved", "accepted", "resolved"),
        ]
        assert [h.id for h in bot_not_told(session)] == [handoff.id]
        mark_bot_told(session, handoff.id, NOW)
        assert bot_not_told(session) == []
    with transaction(engine) as session, pytest.raises(HandoffConflict, match="it is resolved"):
        transition(session, handoff.id, HandoffState.RETURNED, "ava", NOW)
    # A new request after the end is a new handoff.
    assert ask(engine, "conv-2", customer=None, message="m-9").id != handoff.id


def test_unanswered_requests_time_out_and_failed_writes_leave_nothing(engine: Engine) -> None:
    handoff = ask(engine, "conv-3")
    with transaction(engine) as session:
        assert overdue(session, NOW + WAIT - timedelta(seconds=1)) == []
        assert [h.id for h in overdue(session, NOW + WAIT)] == [handoff.id]
    with pytest.raises(RuntimeError), transaction(engine) as session:
        transition(session, handoff.id, HandoffState.ABANDONED, "timeout", NOW + WAIT)
        raise RuntimeError("crash before commit")
    with transaction(engine) as session:
        assert session.get(Handoff, handoff.id).state is HandoffState.REQUESTED
        assert session.scalar(select(func.count()).select_from(HandoffEvent)) == 1


def test_outside_business_hours_nobody_can_accept(engine: Engine) -> None:
    document = {
        **TABLE_DOCUMENT,
        "business_hours": {"timezone": "UTC", "days": {"sun": ["08:00", "09:00"]}},
    }
    handoff = ask(engine, "conv-4", table=parse_table(document))  # NOW is a Wednesday
    assert handoff.state is HandoffState.ABANDONED and handoff.bot_notified_at == NOW
    with transaction(engine) as session:
        assert events_of(session, handoff.id)[-1].details == {
            "why": "outside business hours, nobody can accept"
        }


def test_queue_order_priority_score_then_waiting_time(engine: Engine) -> None:
    low_old = ask(engine, "q-1", customer="C-1002", at=NOW - timedelta(minutes=9))
    low_new = ask(engine, "q-2", customer="C-1002", at=NOW)
    vip = ask(engine, "q-3", customer="C-1001", at=NOW)
    fraud = ask(engine, "q-4", customer=None, text="someone hacked my account", at=NOW)
    with transaction(engine) as session:
        ids = [h.id for h in queue(session, None, [HandoffState.REQUESTED])]
        general = [h.id for h in queue(session, ["general"], [HandoffState.REQUESTED])]
    assert ids == [fraud.id, vip.id, low_old.id, low_new.id]
    assert general == [low_old.id, low_new.id]


def test_messages_are_stored_once_and_relayed_once(engine: Engine) -> None:
    handoff = ask(engine, "conv-5")
    with transaction(engine) as session:
        reply, created = add_message(
            session, handoff.id, "ava:k1", MessageAuthor.AGENT, "Hello!", NOW, "ava"
        )
        assert created and reply.delivery is Delivery.PENDING
        again, created = add_message(
            session, handoff.id, "ava:k1", MessageAuthor.AGENT, "Hello!", NOW, "ava"
        )
        assert not created and again.id == reply.id
        with pytest.raises(HandoffError, match="message ava:k2: field text: must not be empty"):
            add_message(session, handoff.id, "ava:k2", MessageAuthor.AGENT, "  ", NOW, "ava")
        assert claim_relay(session, "ava:k1", NOW).text == "Hello!"
        assert claim_relay(session, "ava:k1", NOW) is None
        set_delivery(session, "ava:k1", Delivery.SENT)
        set_delivery(session, "ava:k1", Delivery.FAILED, "late error")  # sent is final
        assert session.get(type(reply), "ava:k1").delivery is Delivery.SENT


def test_agents_passwords_are_scrypt_hashes(engine: Engine) -> None:
    with transaction(engine) as session:
        agent = create_agent(
            session, "ava", "Ava", AgentRole.AGENT, ["general"], "correct horse", NOW
        )
        assert agent.password_hash.startswith("scrypt$") and "correct" not in agent.password_hash
        with pytest.raises(HandoffError, match="agent ava: field username: already exists"):
            create_agent(session, "ava", "Ava", AgentRole.AGENT, [], "correct horse", NOW)
        with pytest.raises(HandoffError, match="field password: must be at least 8"):
            create_agent(session, "bob", "Bob", AgentRole.AGENT, [], "short", NOW)
    with transaction(engine) as session:
        assert authenticate(session, "ava", "correct horse").username == "ava"
        assert authenticate(session, "ava", "wrong") is None
        assert authenticate(session, "nobody", "correct horse") is None


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_claims_exactly_one_agent_wins(engine: Engine, attempt: int) -> None:
    handoff = ask(engine, f"race-{attempt}")
    agents = [f"agent{i}" for i in range(6)]
    barrier = threading.Barrier(len(agents))
    outcomes: dict[str, str] = {}

    def claim(agent: str) -> None:
        barrier.wait()
        try:
            with transaction(engine) as session:
                transition(session, handoff.id, HandoffState.ACCEPTED, agent, NOW, agent=agent)
            outcomes[agent] = "won"
        except HandoffConflict:
            outcomes[agent] = "lost"

    threads = [threading.Thread(target=claim, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [a for a, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == len(agents)
    with transaction(engine) as session:
        assert session.get(Handoff, handoff.id).agent == winners[0]
        accepted = [e for e in events_of(session, handoff.id) if e.type == "accepted"]
        assert [e.actor for e in accepted] == winners


def test_concurrent_requests_for_one_conversation_make_one_handoff(engine: Engine) -> None:
    barrier = threading.Barrier(4)
    ids: list[str] = []

    def request(message: str) -> None:
        barrier.wait()
        ids.append(ask(engine, "same-conversation", message=message).id)

    threads = [threading.Thread(target=request, args=(f"m-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1


TABLE_DOCUMENT = __import__("yaml").safe_load(DEFAULT_ROUTING_FILE.read_text())
