"""Recording events exactly once per event_id, whatever the sender retries."""

from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cdp.computed.service import apply_event
from cdp.errors import ProfileNotFound
from cdp.events.models import Event, EventIn
from cdp.profiles.models import Profile


def record_event(session: Session, incoming: EventIn) -> bool:
    """Store the event; False when its event_id is already stored (a redelivery).

    A redelivery is ignored even if its content differs: the first delivery wins. The
    insert uses ON CONFLICT DO NOTHING, so two concurrent deliveries can't both fail or
    both land. A stored event updates the computed attributes in the same transaction.
    """
    if session.get(Profile, incoming.customer_id) is None:
        raise ProfileNotFound(incoming.customer_id)
    values = {
        "event_id": incoming.event_id,
        "customer_id": incoming.customer_id,
        "type": incoming.type,
        "occurred_at": incoming.occurred_at,
        "channel": incoming.channel,
        "properties": incoming.properties,
    }
    statement = _insert_ignoring_duplicates(session).values(values).returning(Event.id)
    if session.execute(statement).first() is None:
        return False
    apply_event(session, incoming)
    return True


# Both dialects spell "insert unless the key exists" as INSERT ... ON CONFLICT DO NOTHING.
_DIALECT_INSERTS: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _insert_ignoring_duplicates(session: Session) -> Insert:
    dialect = session.get_bind().dialect.name
    insert = _DIALECT_INSERTS[dialect]
    return insert(Event).on_conflict_do_nothing(index_elements=[Event.event_id])


def latest_event(
    session: Session,
    customer_id: str,
    types: Collection[str],
    *,
    since: datetime | None = None,
) -> Event | None:
    """The customer's most recent event of one of `types`, optionally not older than `since`."""
    query = select(Event).where(Event.customer_id == customer_id, Event.type.in_(list(types)))
    if since is not None:
        query = query.where(Event.occurred_at >= since)
    return session.scalar(query.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(1))


def events_of_types(session: Session, customer_id: str, types: Collection[str]) -> list[Event]:
    """The customer's events of these types, oldest first (for short, per-customer lists)."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.customer_id == customer_id, Event.type.in_(list(types)))
            .order_by(Event.occurred_at, Event.id)
        )
    )
