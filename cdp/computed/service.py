"""Keeping aggregate state current in the writer's transaction, rebuilding it, reading values.

Every aggregate of a source gets a state row for a profile as soon as the profile has a
fact of that source, so an aggregate added to the definitions later is recognised (stale
on read, rebuilt on the next write) rather than silently read as empty.

Writers call apply_order_change / apply_event after storing their row: the facts an order
had before the write are retracted and the facts it has now are added, so a status change
or an edited line keeps every aggregate exact. Retraction is O(1) for counts, sums,
averages, tallies and day buckets. Retracting the current min/max/first/last of an order
aggregate rebuilds that one aggregate for that profile from its orders (events are never
retracted). State built by an older definition (spec_hash differs) is rebuilt the same way
when it is next written, and reported stale until then.

Formulas, scores and windows are evaluated when read, with the current clock, so values
that depend on the date are right without any batch job.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Date,
    Delete,
    Select,
    String,
    TextClause,
    and_,
    bindparam,
    delete,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from cdp.attributes.definitions import STANDARD_ATTRIBUTES
from cdp.attributes.models import AttributeValue
from cdp.attributes.types import typed_for_formulas
from cdp.clock import utcnow
from cdp.computed.definitions import (
    Aggregate,
    AggregateDef,
    ComputedDefinitions,
    FormulaDef,
    load_computed_definitions,
)
from cdp.computed.expressions import EvalContext, evaluate, truthy
from cdp.computed.facts import Fact, decode, encode, event_fact, order_facts, order_key, part_key
from cdp.computed.models import ComputedPart, ComputedState
from cdp.db import conflict_insert, reusable_sql
from cdp.errors import ProfileNotFound
from cdp.events.models import Event, EventIn
from cdp.orders.models import Order
from cdp.profiles.models import Profile

_STATE_VALUE_COLUMNS = ("count", "total", "value", "at")
_PART_VALUE_COLUMNS = ("count", "total")
_EXTREMES = {Aggregate.MIN, Aggregate.MAX, Aggregate.FIRST, Aggregate.LAST}
_TALLIES = {Aggregate.MOST_FREQUENT, Aggregate.UNIQUE_LIST}


def window_start(definition: AggregateDef, today: date) -> date:
    """First day inside a definition's window: the last N days end today (UTC)."""
    return today - timedelta(days=(definition.window_days or 1) - 1)


def _family(source: str) -> str:
    """Orders and their lines are written together: one history for staleness checks."""
    return "orders" if source == "order_lines" else source


def _matches(definition: AggregateDef, fact: Fact) -> bool:
    # This runs for every fact and aggregate: a plain loop, and no generator for an empty
    # exclude, cost half as much as any() over generators.
    if fact.source != definition.source:
        return False
    for key, values in definition.where:
        if fact.get(key) not in values:
            return False
    if definition.exclude:
        return not any(fact.get(key) in values for key, values in definition.exclude)
    return True


@dataclass(slots=True)
class AggregateRow:
    """A computed_state row (key None) or computed_parts row, held in memory.

    Writers fold facts into these and write back only what changed; readers get them from
    one query. Plain rows rather than ORM objects: the unit of work cost more than the
    arithmetic, and no session ever holds a stale copy of a computed row.
    """

    customer_id: str
    name: str
    spec_hash: str | None = None
    count: int = 0
    total: str = "0"
    value: Any = None
    at: datetime | None = None
    key: str | None = None
    day: date | None = None
    # The stored values (count, total, value, at) when read; None for a row not stored yet.
    stored: tuple[Any, ...] | None = None

    def values(self) -> tuple[Any, ...]:
        return (self.count, self.total, self.value, self.at)


class _Store:
    """The state and part rows of one profile that a write touches, created on demand."""

    __slots__ = ("customer_id", "parts", "rebuild", "states", "today")

    def __init__(self, customer_id: str, today: date) -> None:
        self.customer_id = customer_id
        self.today = today
        self.states: dict[str, AggregateRow] = {}
        self.parts: dict[tuple[str, str], AggregateRow] = {}
        self.rebuild: set[str] = set()

    def load(self, rows: Iterable[AggregateRow]) -> None:
        """Take rows as read from the database (they are stored: only changes are written)."""
        for row in rows:
            row.stored = row.values()
            if row.key is None:
                self.states[row.name] = row
            else:
                self.parts[(row.name, row.key)] = row

    def state(self, definition: AggregateDef) -> AggregateRow:
        state = self.states.get(definition.name)
        if state is None:
            state = AggregateRow(self.customer_id, definition.name, definition.spec_hash)
            self.states[definition.name] = state
        return state

    def part(self, definition: AggregateDef, key: str, day: date | None) -> AggregateRow:
        part = self.parts.get((definition.name, key))
        if part is None:
            part = AggregateRow(self.customer_id, definition.name, key=key, day=day)
            self.parts[(definition.name, key)] = part
        return part

    def apply(self, definition: AggregateDef, fact: Fact, sign: int) -> None:
        """Add (sign 1) or retract (sign -1) one fact's contribution to one aggregate."""
        if not _matches(definition, fact):
            return
        value = fact.get(definition.field) if definition.field else None
        if definition.field and value is None:
            return
        kind = definition.aggregate
        if kind in (Aggregate.SUM, Aggregate.AVERAGE) and not isinstance(value, Decimal):
            return
        state = self.state(definition)
        if definition.window_days:
            if fact.day < window_start(definition, self.today):
                return  # outside the window for good: time only moves forward
            bucket = self.part(definition, fact.day.isoformat(), fact.day)
            bucket.count += sign
            bucket.total = str(Decimal(bucket.total) + sign * (value or 0))
            return
        if kind in _TALLIES:
            weight = fact.get(definition.weight) if definition.weight else Decimal(1)
            tally = self.part(definition, part_key(value), None)
            tally.count += sign
            tally.total = str(Decimal(tally.total) + sign * (weight or 0))
            return
        state.count += sign
        if kind in (Aggregate.SUM, Aggregate.AVERAGE):
            state.total = str(Decimal(state.total) + sign * value)
        elif kind in _EXTREMES:
            self._extreme(definition, state, value, fact.at, sign)

    def _extreme(
        self, definition: AggregateDef, state: AggregateRow, value: Any, at: datetime, sign: int
    ) -> None:
        kind = definition.aggregate
        if kind in (Aggregate.MIN, Aggregate.MAX):
            candidate: tuple[Any, ...] = (order_key(value),)
            stored = None if state.value is None else (order_key(decode(state.value)),)
        else:
            if state.at is not None and at != state.at:
                # The time alone decides (for nearly every fact): the stored value need
                # not be decoded.
                later = at > state.at
                if sign > 0 and later == (kind is Aggregate.LAST):
                    state.value = encode(value)
                    state.at = at
                return
            candidate = (at, order_key(value))
            stored = None if state.at is None else (state.at, order_key(decode(state.value)))
        if sign < 0:
            if candidate == stored:
                self.rebuild.add(definition.name)
            return
        better = stored is None or (
            candidate < stored if kind in (Aggregate.MIN, Aggregate.FIRST) else candidate > stored
        )
        if better:
            state.value = encode(value)
            state.at = at if kind in (Aggregate.FIRST, Aggregate.LAST) else None

    def forget(self, name: str) -> None:
        """Drop the rows of one aggregate, which is rebuilt from scratch instead."""
        for key in [key for key in self.parts if key[0] == name]:
            del self.parts[key]
        self.states.pop(name, None)

    def write(self, session: Session) -> None:
        """Write what changed: new and changed state rows, part rows with a count (a tally
        or bucket back at zero is deleted, not kept). One statement per table and kind of
        change, whatever the number of rows."""
        states = [row for row in self.states.values() if row.values() != row.stored]
        parts = [
            row for row in self.parts.values() if row.count != 0 and row.values() != row.stored
        ]
        gone = [row for row in self.parts.values() if row.count == 0 and row.stored is not None]
        connection = session.connection()
        dialect = connection.dialect.name
        if states:
            connection.execute(_upsert_statement(dialect, "state"), [state_row(r) for r in states])
        if parts:
            connection.execute(_upsert_statement(dialect, "part"), [part_row(r) for r in parts])
        if gone:
            connection.execute(
                _delete_part_statement(),
                [{"customer_id": r.customer_id, "name": r.name, "key": r.key} for r in gone],
            )
        for row in (*states, *parts):
            row.stored = row.values()


def state_row(row: AggregateRow) -> dict[str, Any]:
    return {
        "customer_id": row.customer_id,
        "name": row.name,
        "spec_hash": row.spec_hash,
        "count": row.count,
        "total": row.total,
        "value": row.value,
        "at": row.at,
    }


def part_row(row: AggregateRow) -> dict[str, Any]:
    return {
        "customer_id": row.customer_id,
        "name": row.name,
        "key": row.key,
        "day": row.day,
        "count": row.count,
        "total": row.total,
    }


@cache
def _upsert_statement(dialect: str, kind: str) -> TextClause:
    """INSERT ... ON CONFLICT DO UPDATE of the value columns, built once per dialect: new
    and changed rows of a table go in one executemany."""
    table = ComputedState.__table__ if kind == "state" else ComputedPart.__table__
    keys = [column.name for column in table.primary_key.columns]
    columns = _STATE_VALUE_COLUMNS if kind == "state" else _PART_VALUE_COLUMNS
    insert = conflict_insert(dialect, table)
    upsert = insert.on_conflict_do_update(
        index_elements=keys, set_={name: insert.excluded[name] for name in columns}
    )
    return reusable_sql(upsert, dialect, [column.name for column in table.columns])


@cache
def _delete_part_statement() -> Delete:
    parts = ComputedPart.__table__.c
    return delete(ComputedPart.__table__).where(
        parts.customer_id == bindparam("customer_id"),
        parts.name == bindparam("name"),
        parts.key == bindparam("key"),
    )


def apply_order_change(
    session: Session,
    customer_id: str,
    before: list[Fact],
    after: list[Fact],
    *,
    definitions: ComputedDefinitions | None = None,
    now: datetime | None = None,
) -> None:
    """Update aggregates for an order written in this transaction (before/after snapshots;
    `after` may also hold the facts of events recorded with it, one update for all)."""
    _apply(
        session,
        customer_id,
        [(fact, -1) for fact in before] + [(fact, 1) for fact in after],
        definitions,
        now,
    )


def apply_event(
    session: Session,
    event: EventIn,
    *,
    definitions: ComputedDefinitions | None = None,
    now: datetime | None = None,
) -> None:
    """Update aggregates for an event just stored in this transaction."""
    _apply(session, event.customer_id, [(event_fact(event), 1)], definitions, now)


def lock_profile(session: Session, customer_id: str) -> bool:
    """Serialise aggregate updates per profile (a row lock on PostgreSQL; SQLite writes
    are already serialised by BEGIN IMMEDIATE). False if there is no such profile.

    FOR NO KEY UPDATE, not FOR UPDATE: the order or event inserted in this transaction
    holds a KEY SHARE lock on the profile through its foreign key, and two writers
    upgrading that to FOR UPDATE would deadlock. Taken before the insert, it also tells
    the writer whether the profile exists.

    A lock is held until the end of the transaction (or savepoint) that took it, so a
    second call there (a reorder records its request event, then the order) answers
    without a round trip.
    """
    held = session.info.get(_LOCKED_KEY)
    if held is not None and held[0] is _innermost(session) and customer_id in held[1]:
        return True
    if session.execute(_lock_profile_statement(), {"customer_id": customer_id}).first() is None:
        return False
    current = _innermost(session)  # only now surely begun (the session may autobegin)
    if held is None or held[0] is not current:
        held = session.info[_LOCKED_KEY] = (current, set())
    held[1].add(customer_id)
    return True


# session.info key: (the transaction or savepoint that took them, customer ids locked).
_LOCKED_KEY = "cdp.computed.locked_profiles"


def _innermost(session: Session) -> object:
    """The savepoint or transaction in progress (None before the session begins one)."""
    return session.get_nested_transaction() or session.get_transaction()


@cache
def _lock_profile_statement() -> Select[tuple[str]]:
    # Built once: SQLAlchemy reuses its cache key and compiled SQL on every order and event.
    return (
        select(Profile.customer_id)
        .where(Profile.customer_id == bindparam("customer_id"))
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE on PostgreSQL
    )


def _apply(
    session: Session,
    customer_id: str,
    changes: list[tuple[Fact, int]],
    definitions: ComputedDefinitions | None,
    now: datetime | None,
) -> None:
    definitions = definitions or load_computed_definitions()
    sources = {fact.source for fact, _ in changes}
    touched = [d for d in definitions.aggregates.values() if d.source in sources]
    if not touched:
        return
    today = (now or utcnow()).date()
    lock_profile(session, customer_id)
    store = _Store(customer_id, today)
    names = [d.name for d in touched]
    keys = {fact.day.isoformat() for fact, _ in changes}
    keys |= {
        part_key(fact.get(d.field))
        for fact, _ in changes
        for d in touched
        if d.aggregate in _TALLIES and d.field and fact.get(d.field) is not None
    }
    store.load(
        _read_rows(
            session,
            _touched_rows_statement(),
            {"customer_id": customer_id, "names": names, "keys": sorted(keys)},
        )
    )
    built = {_family(definitions.aggregates[name].source) for name in store.states}
    for definition in touched:
        state = store.states.get(definition.name)
        if state is None and _family(definition.source) in built:
            store.rebuild.add(definition.name)  # defined after this profile's history
        elif state is not None and state.spec_hash != definition.spec_hash:
            store.rebuild.add(definition.name)
        else:
            store.state(definition)
    for fact, sign in changes:
        for definition in touched:
            if definition.name not in store.rebuild:
                store.apply(definition, fact, sign)
    for name in store.rebuild:
        store.forget(name)
    store.write(session)
    if store.rebuild:
        rebuild = [definitions.aggregates[name] for name in sorted(store.rebuild)]
        _rebuild(session, customer_id, rebuild, today)


def _rows_statement(
    state_filter: ColumnElement[bool], part_filter: ColumnElement[bool]
) -> CompoundSelect:
    """State rows and part rows of one profile in one query (UNION ALL; a state row is
    the one without a key), so a read or a write costs one round trip for both tables."""
    states, parts = ComputedState.__table__.c, ComputedPart.__table__.c
    # Columns in the order of AggregateRow's fields after customer_id.
    return union_all(
        select(
            states.name,
            states.spec_hash,
            states.count,
            states.total,
            states.value,
            states.at,
            type_coerce(null(), String).label("key"),
            type_coerce(null(), Date).label("day"),
        ).where(states.customer_id == bindparam("customer_id"), state_filter),
        select(
            parts.name,
            null(),
            parts.count,
            parts.total,
            null(),
            null(),
            parts.key,
            parts.day,
        ).where(parts.customer_id == bindparam("customer_id"), part_filter),
    )


@cache
def _touched_rows_statement() -> CompoundSelect:
    """The rows a write can change: its aggregates' states and the parts of its keys."""
    states, parts = ComputedState.__table__.c, ComputedPart.__table__.c
    names = bindparam("names", expanding=True)
    return _rows_statement(
        states.name.in_(names),
        and_(parts.name.in_(names), parts.key.in_(bindparam("keys", expanding=True))),
    )


@cache
def _live_rows_statement() -> CompoundSelect:
    """Every state row, and the parts a read can still use (tallies, and day buckets not
    older than the longest window)."""
    states, parts = ComputedState.__table__.c, ComputedPart.__table__.c
    return _rows_statement(
        states.name.is_not(None), or_(parts.day.is_(None), parts.day >= bindparam("cutoff"))
    )


def _read_rows(
    session: Session, statement: CompoundSelect, parameters: dict[str, Any]
) -> list[AggregateRow]:
    customer_id = parameters["customer_id"]
    return [AggregateRow(customer_id, *row) for row in session.execute(statement, parameters).all()]


def _history(session: Session, customer_id: str, sources: set[str]) -> Iterator[Fact]:
    """Every fact of a profile's stored orders and events, for a rebuild."""
    if sources & {"orders", "order_lines"}:
        for order in session.scalars(
            select(Order).where(Order.customer_id == customer_id).order_by(Order.order_id)
        ):
            yield from order_facts(order)
    if "events" in sources:
        for event in session.scalars(
            select(Event).where(Event.customer_id == customer_id).order_by(Event.id)
        ):
            yield event_fact(event)


def _rebuild(
    session: Session, customer_id: str, definitions: list[AggregateDef], today: date
) -> None:
    """Replace the stored state of some aggregates of a profile with one built from history."""
    names = [d.name for d in definitions]
    connection = session.connection()
    for table in (ComputedPart.__table__, ComputedState.__table__):
        connection.execute(
            delete(table).where(table.c.customer_id == customer_id, table.c.name.in_(names))
        )
    store = _Store(customer_id, today)
    for definition in definitions:
        store.state(definition)
    for fact in _history(session, customer_id, {d.source for d in definitions}):
        for definition in definitions:
            store.apply(definition, fact, 1)
    store.write(session)


def recompute_profile(
    session: Session,
    customer_id: str,
    *,
    definitions: ComputedDefinitions | None = None,
    now: datetime | None = None,
) -> None:
    """Rebuild every aggregate of one profile from its orders and events.

    For repairs, after a definition changed, and after a merge re-pointed orders and events
    to this profile. Raises ProfileNotFound for an unknown customer.
    """
    if session.get(Profile, customer_id) is None:
        raise ProfileNotFound(customer_id)
    definitions = definitions or load_computed_definitions()
    lock_profile(session, customer_id)
    _rebuild(session, customer_id, list(definitions.aggregates.values()), (now or utcnow()).date())


@dataclass(frozen=True)
class ComputedValues:
    """A profile's computed attributes: values by name, the time of first/last values, and
    the aggregates whose stored state predates their current definition."""

    values: dict[str, Any]
    times: dict[str, datetime] = field(default_factory=dict)
    stale: frozenset[str] = frozenset()


def part_cutoff(definitions: ComputedDefinitions, today: date) -> date:
    """The oldest day bucket any windowed aggregate still reads."""
    return today - timedelta(days=max(definitions.max_window_days(), 1) - 1)


def load_computed_rows(
    session: Session, customer_id: str, definitions: ComputedDefinitions, today: date
) -> list[AggregateRow]:
    """The state rows and the live part rows of one profile (one indexed query)."""
    return _read_rows(
        session,
        _live_rows_statement(),
        {"customer_id": customer_id, "cutoff": part_cutoff(definitions, today)},
    )


def computed_values(
    session: Session,
    customer_id: str,
    *,
    definitions: ComputedDefinitions | None = None,
    now: datetime | None = None,
) -> ComputedValues:
    """A profile's computed attributes as of `now` (default: the clock)."""
    definitions = definitions or load_computed_definitions()
    moment = now or utcnow()
    profile = session.get(Profile, customer_id)
    if profile is None:
        raise ProfileNotFound(customer_id)
    rows = session.scalars(select(AttributeValue).where(AttributeValue.customer_id == customer_id))
    aggregates = load_computed_rows(session, customer_id, definitions, moment.date())
    return evaluate_computed(definitions, profile, list(rows), aggregates, moment)


def evaluate_computed(
    definitions: ComputedDefinitions,
    profile: Profile,
    attribute_rows: Iterable[AttributeValue],
    aggregates: Iterable[AggregateRow],
    now: datetime,
) -> ComputedValues:
    """Computed values from already loaded rows: no queries."""
    today = now.date()
    by_name: dict[str, AggregateRow] = {}
    parts_by_name: dict[str, list[AggregateRow]] = {}
    for row in aggregates:
        if row.key is None:
            by_name[row.name] = row
        else:
            parts_by_name.setdefault(row.name, []).append(row)
    values: dict[str, Any] = {}
    times: dict[str, datetime] = {}
    stale = set()
    built = {
        _family(definitions.aggregates[name].source)
        for name in by_name
        if name in definitions.aggregates
    }
    for definition in definitions.aggregates.values():
        state = by_name.get(definition.name)
        if state is None and _family(definition.source) in built:
            stale.add(definition.name)  # defined after this profile's history was built
        elif state is not None and state.spec_hash != definition.spec_hash:
            stale.add(definition.name)
        values[definition.name] = _aggregate_value(
            definition, state, parts_by_name.get(definition.name, []), today
        )
        if definition.aggregate in (Aggregate.FIRST, Aggregate.LAST) and state and state.at:
            times[definition.name] = state.at
    context = _formula_inputs(definitions, profile, attribute_rows)
    context |= {name: _as_formula_value(value) for name, value in values.items()}
    for formula in definitions.formulas:
        context[formula.name] = _formula_value(formula, EvalContext(context, today))
        values[formula.name] = context[formula.name]
    return ComputedValues(values=values, times=times, stale=frozenset(stale))


def _aggregate_value(
    definition: AggregateDef, state: AggregateRow | None, parts: list[AggregateRow], today: date
) -> Any:
    kind = definition.aggregate
    if definition.window_days:
        start = window_start(definition, today)
        live = [part for part in parts if part.day is not None and start <= part.day <= today]
        count = sum(part.count for part in live)
        total = sum((Decimal(part.total) for part in live), Decimal(0))
    elif state is None:
        count, total = 0, Decimal(0)
    else:
        count, total = state.count, Decimal(state.total)
    if kind is Aggregate.COUNT:
        return count
    if kind is Aggregate.SUM:
        return total
    if kind is Aggregate.AVERAGE:
        return total / count if count else None
    if kind in _EXTREMES:
        return decode(state.value) if state is not None else None
    live_tallies = [part for part in parts if part.count > 0]
    if kind is Aggregate.UNIQUE_LIST:
        return sorted(part.key for part in live_tallies)
    if not live_tallies:
        return None
    best = min(live_tallies, key=lambda part: (-Decimal(part.total), part.key))
    return best.key


def _formula_inputs(
    definitions: ComputedDefinitions, profile: Profile, attribute_rows: Iterable[AttributeValue]
) -> dict[str, Any]:
    """Standard and custom attribute values as formulas see them."""
    inputs: dict[str, Any] = {name: getattr(profile, name) for name in STANDARD_ATTRIBUTES}
    address = profile.address
    inputs["address"] = address.as_dict() if address else None
    for row in attribute_rows:
        definition = definitions.custom.attributes.get(row.name)
        if definition is not None and row.value_type == definition.type.value:
            inputs[row.name] = typed_for_formulas(definition.type, row.value)
    return inputs


def _as_formula_value(value: Any) -> Any:
    """Formulas do arithmetic on Decimal only; counts are stored as int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _formula_value(formula: FormulaDef, context: EvalContext) -> Any:
    if formula.formula is not None:
        return evaluate(formula.formula, context)
    score = Decimal(0)
    for rule in formula.rules:
        if rule.when is not None and truthy(evaluate(rule.when, context)):
            score += rule.points
        elif rule.per is not None:
            amount = evaluate(rule.per, context)
            if isinstance(amount, Decimal):
                score += rule.points * amount
    return score
