"""Events are stored once per event_id."""

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.clock import parse_timestamp
from cdp.errors import ProfileNotFound
from cdp.events.models import Event, EventIn
from cdp.events.service import record_event


def _payment_failed(reason: str) -> EventIn:
    return EventIn(
        event_id="E-1",
        customer_id="C-1",
        type="payment_failed",
        occurred_at=parse_timestamp("2026-11-20T09:00:00Z"),
        channel="web",
        properties={"reason": reason},
    )


def test_redelivered_event_is_ignored(session: Session, make_profile: Callable[..., None]) -> None:
    make_profile("C-1")
    assert record_event(session, _payment_failed("card_declined")) is True
    assert record_event(session, _payment_failed("other")) is False
    session.commit()
    events = session.scalars(select(Event)).all()
    assert [(e.event_id, e.type, e.properties) for e in events] == [
        ("E-1", "payment_failed", {"reason": "card_declined"})
    ]
    assert events[0].occurred_at == parse_timestamp("2026-11-20T09:00:00Z")


def test_event_needs_an_existing_profile(session: Session) -> None:
    with pytest.raises(ProfileNotFound):
        record_event(session, _payment_failed("card_declined"))
