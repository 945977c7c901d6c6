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

from sqlalchemy import Select, bindparam, delete, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, instance_state

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
    if fact.source != definition.source:
        return False
    if any(fact.get(key) not in values for key, values in definition.where):
        return False
    return not any(fact.get(key) in values for key, values in definition.exclude)


class _Store:
    """The state and part rows of one profile that a write touches, created on demand."""

    def __init__(self, session: Session, customer_id: str, today: date) -> None:
        self.session = session
        self.customer_id = customer_id
        self.today = today
        self.states: dict[str, ComputedState] = {}
        self.parts: dict[tuple[str, str], ComputedPart] = {}
        self.rebuild: set[str] = set()

    def state(self, definition: AggregateDef) -> ComputedState:
        state = self.states.get(definition.name)
        if state is None:
            state = ComputedState(
                customer_id=self.customer_id,
                name=definition.name,
                spec_hash=definition.spec_hash,
                count=0,
                total="0",
            )
            self.session.add(state)
            self.states[definition.name] = state
        return state

    def part(self, definition: AggregateDef, key: str, day: date | None) -> ComputedPart:
        part = self.parts.get((definition.name, key))
        if part is None:
            part = ComputedPart(
                customer_id=self.customer_id,
                name=definition.name,
                key=key,
                day=day,
                count=0,
                total="0",
            )
            self.session.add(part)
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
        self, definition: AggregateDef, state: ComputedState, value: Any, at: datetime, sign: int
    ) -> None:
        kind = definition.aggregate
        if kind in (Aggregate.MIN, Aggregate.MAX):
            candidate: tuple[Any, ...] = (order_key(value),)
            stored = None if state.value is None else (order_key(decode(state.value)),)
        else:
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

    def drop_empty_parts(self) -> None:
        for key, part in list(self.parts.items()):
            if part.count == 0:
                if part in self.session.new:
                    self.session.expunge(part)
                else:
                    self.session.delete(part)
                del self.parts[key]

    def batch_updates(self) -> None:
        """Mark every value column of each changed row as changed.

        The flush groups UPDATEs by the set of changed columns: a reorder changing counts on
        some rows and values on others sent one statement per row. With the same columns on
        every changed row, each table gets one executemany.
        """
        for row, columns in [
            *((state, _STATE_VALUE_COLUMNS) for state in self.states.values()),
            *((part, _PART_VALUE_COLUMNS) for part in self.parts.values()),
        ]:
            if instance_state(row).modified and row not in self.session.new:
                for column in columns:
                    flag_modified(row, column)

    def forget(self, name: str) -> None:
        """Drop loaded rows of one aggregate so it can be rebuilt from scratch."""
        for key in [key for key in self.parts if key[0] == name]:
            self.session.expunge(self.parts.pop(key))
        state = self.states.pop(name, None)
        if state is not None:
            self.session.expunge(state)


def apply_order_change(
    session: Session,
    customer_id: str,
    before: list[Fact],
    after: list[Fact],
    *,
    definitions: ComputedDefinitions | None = None,
    now: datetime | None = None,
) -> None:
    """Update aggregates for an order written in this transaction (before/after snapshots)."""
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


def _lock_profile(session: Session, customer_id: str) -> None:
    """Serialise aggregate updates per profile (a row lock on PostgreSQL; SQLite writes
    are already serialised by BEGIN IMMEDIATE).

    FOR NO KEY UPDATE, not FOR UPDATE: the order or event just inserted holds a KEY SHARE
    lock on the profile through its foreign key, and two writers upgrading that to FOR
    UPDATE would deadlock.
    """
    session.execute(_lock_profile_statement(), {"customer_id": customer_id})


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
    _lock_profile(session, customer_id)
    store = _Store(session, customer_id, today)
    names = [d.name for d in touched]
    keys = {fact.day.isoformat() for fact, _ in changes}
    keys |= {
        part_key(fact.get(d.field))
        for fact, _ in changes
        for d in touched
        if d.aggregate in _TALLIES and d.field and fact.get(d.field) is not None
    }
    with session.no_autoflush:
        for state in session.scalars(
            _states_statement(), {"customer_id": customer_id, "names": names}
        ):
            store.states[state.name] = state
        for part in session.scalars(
            _parts_statement(), {"customer_id": customer_id, "names": names, "keys": sorted(keys)}
        ):
            store.parts[(part.name, part.key)] = part
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
        store.drop_empty_parts()
        store.batch_updates()
    if store.rebuild:
        rebuild = [definitions.aggregates[name] for name in sorted(store.rebuild)]
        _rebuild(session, customer_id, rebuild, today)
    session.flush()


@cache
def _states_statement() -> Select[tuple[ComputedState]]:
    return select(ComputedState).where(
        ComputedState.customer_id == bindparam("customer_id"),
        ComputedState.name.in_(bindparam("names", expanding=True)),
    )


@cache
def _parts_statement() -> Select[tuple[ComputedPart]]:
    return select(ComputedPart).where(
        ComputedPart.customer_id == bindparam("customer_id"),
        ComputedPart.name.in_(bindparam("names", expanding=True)),
        ComputedPart.key.in_(bindparam("keys", expanding=True)),
    )


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
    session.execute(
        delete(ComputedPart).where(
            ComputedPart.customer_id == customer_id, ComputedPart.name.in_(names)
        )
    )
    session.execute(
        delete(ComputedState).where(
            ComputedState.customer_id == customer_id, ComputedState.name.in_(names)
        )
    )
    store = _Store(session, customer_id, today)
    for definition in definitions:
        store.state(definition)
    for fact in _history(session, customer_id, {d.source for d in definitions}):
        for definition in definitions:
            store.apply(definition, fact, 1)
    store.drop_empty_parts()
    session.flush()


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
    _lock_profile(session, customer_id)
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
) -> tuple[list[ComputedState], list[ComputedPart]]:
    """The state rows and the live part rows of one profile (two indexed queries)."""
    states = list(
        session.scalars(select(ComputedState).where(ComputedState.customer_id == customer_id))
    )
    parts = list(
        session.scalars(
            select(ComputedPart).where(
                ComputedPart.customer_id == customer_id,
                or_(
                    ComputedPart.day.is_(None), ComputedPart.day >= part_cutoff(definitions, today)
                ),
            )
        )
    )
    return states, parts


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
    states, parts = load_computed_rows(session, customer_id, definitions, moment.date())
    return evaluate_computed(definitions, profile, list(rows), states, parts, moment)


def evaluate_computed(
    definitions: ComputedDefinitions,
    profile: Profile,
    attribute_rows: Iterable[AttributeValue],
    states: Iterable[ComputedState],
    parts: Iterable[ComputedPart],
    now: datetime,
) -> ComputedValues:
    """Computed values from already loaded rows: no queries."""
    today = now.date()
    by_name = {state.name: state for state in states}
    parts_by_name: dict[str, list[ComputedPart]] = {}
    for part in parts:
        parts_by_name.setdefault(part.name, []).append(part)
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
    definition: AggregateDef, state: ComputedState | None, parts: list[ComputedPart], today: date
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
