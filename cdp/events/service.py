"""Recording events exactly once per event_id, whatever the sender retries."""

from collections.abc import Collection
from datetime import datetime
from functools import cache

from sqlalchemy import TextClause, select
from sqlalchemy.orm import Session

from cdp.computed.service import apply_event, lock_profile
from cdp.db import conflict_insert, reusable_sql
from cdp.errors import ProfileNotFound
from cdp.events.models import EVENT_FIELDS, Event, EventIn, event_values


def record_event(session: Session, incoming: EventIn, *, update_aggregates: bool = True) -> bool:
    """Store the event; False when its event_id is already stored (a redelivery).

    A redelivery is ignored even if its content differs: the first delivery wins. The
    insert uses ON CONFLICT DO NOTHING, so two concurrent deliveries can't both fail or
    both land. A stored event updates the computed attributes in the same transaction.
    The profile's aggregate lock is taken first and doubles as the existence check (one
    round trip instead of two). With update_aggregates=False the caller applies the event's
    fact itself, with the other facts of its write (one aggregate update for all).
    """
    if not lock_profile(session, incoming.customer_id):
        raise ProfileNotFound(incoming.customer_id)
    values = dict(zip(EVENT_FIELDS, event_values(incoming), strict=True))
    statement = _insert_ignoring_duplicates(session.get_bind().dialect.name)
    if session.connection().execute(statement, values).first() is None:
        return False
    if update_aggregates:
        apply_event(session, incoming)
    return True


@cache
def _insert_ignoring_duplicates(dialect: str) -> TextClause:
    # Built once per dialect and run as Core on the session's connection: building it and
    # the ORM's bulk-insert handling cost more than the INSERT itself.
    table = Event.__table__
    statement = (
        conflict_insert(dialect, table)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.id)
    )
    return reusable_sql(statement, dialect, EVENT_FIELDS)


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
