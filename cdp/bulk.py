"""Writing many already-validated new profiles and events with a few statements per chunk.

The importer's bulk path (`python -m cdp import --bulk`) hands chunks here instead of
calling upsert_profile / record_event once per record. The rows written are the ones those
functions would write for the same input (tests/cdp/test_cdp_importer_bulk.py compares
every table and every computed value), but a chunk costs a handful of statements:

- new profiles: one multi-row INSERT each into profiles, attribute_values and identities;
- events: one INSERT ... ON CONFLICT DO NOTHING RETURNING for the chunk, then the computed
  aggregates of every profile the chunk touched are read with two queries, folded in
  memory by the same code as the one-record path (cdp.computed.service), and written back.

Callers decide which records are eligible: profiles whose customer id and identifiers
nobody holds yet, events whose customer exists. Anything else goes through the ordinary
service functions.
"""

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, Table, any_, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cdp.addresses import ADDRESS_PARTS
from cdp.attributes.definitions import CustomDefinitions
from cdp.attributes.errors import UnknownAttribute
from cdp.attributes.models import AttributeKind, AttributeValue
from cdp.attributes.service import clean_custom_value
from cdp.computed.definitions import AggregateDef, ComputedDefinitions
from cdp.computed.facts import event_fact, part_key
from cdp.computed.models import ComputedPart, ComputedState
from cdp.computed.service import (
    _TALLIES,
    AggregateRow,
    _family,
    _rebuild,
    _Store,
    part_row,
    state_row,
)
from cdp.events.models import Event, EventIn
from cdp.identities.models import Identity, IdentitySource, IdentityType
from cdp.profiles.models import Profile, ProfileAttributes

# Rows per multi-row statement: well under PostgreSQL's 65535 bind parameters per statement.
STATEMENT_ROWS = 1000
# Lines per write to a COPY stream.
COPY_LINES = 2000
_STANDARD_COLUMNS = ("first_name", "last_name", "email", "phone", "language", "timezone")


@dataclass(frozen=True)
class NewProfile:
    """The rows upsert_profile would insert for a profile that does not exist yet."""

    customer_id: str
    profile: dict[str, Any]
    attribute_values: list[dict[str, Any]]
    identities: list[tuple[IdentityType, str, bool]]
    declared: frozenset[str]


def new_profile_rows(
    customer_id: str,
    attributes: ProfileAttributes,
    definitions: CustomDefinitions,
    source: IdentitySource,
    now: datetime,
) -> NewProfile:
    """Validate the custom values and build the rows; InvalidValue (field = the custom
    attribute) or UnknownAttribute like upsert_profile. Values are already normalised."""
    columns = {name: getattr(attributes, name) for name in _STANDARD_COLUMNS}
    wanted = [name for name, value in columns.items() if value is not None]
    if attributes.address is not None:
        wanted.append("address")
    declared: dict[str, Any] = {}
    undeclared: dict[str, Any] = {}
    for key, value in (attributes.custom or {}).items():
        (declared if key in definitions.attributes else undeclared)[key] = value
    if undeclared and definitions.undeclared == "reject":
        raise UnknownAttribute(sorted(undeclared)[0])
    profile: dict[str, Any] = {
        "customer_id": customer_id,
        **columns,
        "custom": undeclared,
        "created_at": now,
        "updated_at": now,
        "merged_into": None,
    }
    for part in ADDRESS_PARTS:
        profile["address_" + part] = getattr(attributes.address, part, None)
    values = [
        _attribute_row(
            customer_id,
            name,
            AttributeKind.STANDARD,
            None,
            None,
            source,
            now,
            _verified(attributes, name),
        )
        for name in wanted
    ]
    for name, raw in declared.items():
        definition = definitions.attributes[name]
        value = None if raw is None else clean_custom_value(definition, raw)
        values.append(
            _attribute_row(
                customer_id,
                name,
                AttributeKind.CUSTOM,
                value,
                definition.type.value,
                source,
                now,
                attributes.verified,
            )
        )
    identities = [
        (kind, columns[kind.value], verified)
        for kind, verified in (
            (IdentityType.EMAIL, attributes.email_verified),
            (IdentityType.PHONE, attributes.phone_verified),
        )
        if columns[kind.value] is not None
    ]
    return NewProfile(customer_id, profile, values, identities, frozenset(declared))


def _verified(attributes: ProfileAttributes, name: str) -> bool:
    if name == "email":
        return attributes.email_verified
    if name == "phone":
        return attributes.phone_verified
    return attributes.verified


def _attribute_row(
    customer_id: str,
    name: str,
    kind: AttributeKind,
    value: Any,
    value_type: str | None,
    source: IdentitySource,
    now: datetime,
    verified: bool,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "name": name,
        "kind": kind,
        "value": value,
        "value_type": value_type,
        "source": source,
        "verified": verified,
        "set_at": now,
    }


def stored_customers(session: Session, customer_ids: Iterable[str]) -> set[str]:
    """Which of these customer ids have a profile (one query per STATEMENT_ROWS ids)."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(customer_ids))):
        found.update(
            session.scalars(
                select(Profile.customer_id).where(_among(session, Profile.customer_id, chunk))
            )
        )
    return found


def taken_identifiers(
    session: Session, identifiers: Iterable[tuple[IdentityType, str]]
) -> set[tuple[IdentityType, str]]:
    """Which of these (type, value) identifiers some profile already holds."""
    by_type: dict[IdentityType, set[str]] = {}
    for kind, value in identifiers:
        by_type.setdefault(kind, set()).add(value)
    taken: set[tuple[IdentityType, str]] = set()
    for kind, values in by_type.items():
        for chunk in _chunks(sorted(values)):
            taken.update(
                (kind, value)
                for value in session.scalars(
                    select(Identity.value).where(
                        Identity.type == kind, _among(session, Identity.value, chunk)
                    )
                )
            )
    return taken


def insert_new_profiles(session: Session, profiles: Sequence[NewProfile]) -> None:
    """Insert profiles nobody holds yet, with their provenance rows and identities."""
    if not profiles:
        return
    session.flush()
    now = profiles[0].profile["created_at"]
    _insert(session, Profile.__table__, [item.profile for item in profiles])
    _insert(
        session,
        AttributeValue.__table__,
        [row for item in profiles for row in item.attribute_values],
    )
    _insert(
        session,
        Identity.__table__,
        [
            {
                "customer_id": item.customer_id,
                "type": kind,
                "value": value,
                "verified": verified,
                "source": IdentitySource.IMPORT,
                "created_at": now,
            }
            for item in profiles
            for kind, value, verified in item.identities
        ],
    )


def insert_events(session: Session, events: Sequence[EventIn]) -> list[EventIn]:
    """Insert events whose customers exist; returns those stored (not redeliveries).

    Within the list the first event with an event_id wins, as with record_event; the
    database's ON CONFLICT DO NOTHING skips ids stored before (or by a concurrent writer).
    PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT from it.
    """
    unique: dict[str, EventIn] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    if not unique:
        return []
    session.flush()
    rows = [
        {
            "event_id": event.event_id,
            "customer_id": event.customer_id,
            "type": event.type,
            "occurred_at": event.occurred_at,
            "channel": event.channel,
            "properties": event.properties,
        }
        for event in unique.values()
    ]
    if session.get_bind().dialect.name == "postgresql":
        stored = _insert_events_postgresql(session, rows)
    else:
        table = Event.__table__
        statement = (
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(table.c.event_id)
        )
        stored = set()
        connection = session.connection()
        for chunk in _chunks(rows):
            stored.update(connection.execute(statement, chunk).scalars())
    return [event for event in unique.values() if event.event_id in stored]


_EVENT_COLUMNS = "event_id, customer_id, type, occurred_at, channel, properties"


def _insert_events_postgresql(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    connection = session.connection()
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS cdp_bulk_events (event_id varchar, "
        "customer_id varchar, type varchar, occurred_at timestamptz, channel varchar, "
        "properties json) ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql("TRUNCATE cdp_bulk_events")
    _copy(
        session,
        "cdp_bulk_events",
        ["event_id", "customer_id", "type", "occurred_at", "channel", "properties"],
        (
            [
                r["event_id"],
                r["customer_id"],
                r["type"],
                r["occurred_at"],
                r["channel"],
                r["properties"],
            ]
            for r in rows
        ),
        {"properties"},
    )
    raw = connection.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM cdp_bulk_events "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        return {row[0] for row in cursor.fetchall()}


def apply_events_in_bulk(
    session: Session,
    events: Sequence[EventIn],
    definitions: ComputedDefinitions,
    now: datetime,
) -> None:
    """Update the event aggregates of every profile these newly stored events belong to.

    Equivalent to apply_event for each event in turn. A profile whose stored state needs a
    rebuild (built by an older definition, or missing for an aggregate added later) gets
    its event aggregates rebuilt from history, as the one-record path would.
    """
    touched = [d for d in definitions.aggregates.values() if d.source == "events"]
    if not touched or not events:
        return
    by_customer: dict[str, list[EventIn]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    customer_ids = sorted(by_customer)
    names = [d.name for d in touched]
    today = now.date()
    facts = {cid: [event_fact(event) for event in items] for cid, items in by_customer.items()}
    keys = {fact.day.isoformat() for items in facts.values() for fact in items} | {
        part_key(fact.get(d.field))
        for items in facts.values()
        for fact in items
        for d in touched
        if d.aggregate in _TALLIES and d.field and fact.get(d.field) is not None
    }
    session.flush()
    _lock_profiles(session, customer_ids)
    stores = {cid: _Store(cid, today) for cid in customer_ids}
    for chunk in _chunks(customer_ids):
        for row in session.execute(
            select(ComputedState.__table__).where(
                _among(session, ComputedState.customer_id, chunk), ComputedState.name.in_(names)
            )
        ):
            stores[row.customer_id].states[row.name] = AggregateRow(
                row.customer_id, row.name, row.spec_hash, row.count, row.total, row.value, row.at
            )
        for row in session.execute(
            select(ComputedPart.__table__).where(
                _among(session, ComputedPart.customer_id, chunk),
                ComputedPart.name.in_(names),
                _among(session, ComputedPart.key, sorted(keys)),
            )
        ):
            stores[row.customer_id].parts[(row.name, row.key)] = AggregateRow(
                row.customer_id, row.name, None, row.count, row.total, key=row.key, day=row.day
            )
    one_by_one = [cid for cid in customer_ids if _needs_rebuild(stores[cid], touched)]
    for cid in one_by_one:
        del stores[cid]
    for cid, store in stores.items():
        for definition in touched:
            store.state(definition)
        for fact in facts[cid]:
            for definition in touched:
                store.apply(definition, fact, 1)
    _replace_rows(session, stores, names, keys)
    if session.identity_map:
        session.expire_all()  # ORM copies of the rows just replaced are out of date
    for cid in one_by_one:
        # What the one-record path ends with: these aggregates rebuilt from the history,
        # which now holds the new events too.
        _rebuild(session, cid, touched, today)


def fold_events_of_new_profiles(
    session: Session,
    customer_ids: Sequence[str],
    definitions: ComputedDefinitions,
    now: datetime,
) -> None:
    """Build the event aggregates of profiles created by this import, once, at its end.

    Such profiles have no computed state yet and nobody else can see them before the
    commit, so instead of rewriting their rows chunk after chunk their stored events are
    read back (by the customer_id index) and folded in one pass, with the same arithmetic
    as apply_event. Aggregates don't depend on the order events arrive in, so the rows are
    the ones the one-record path leaves.
    """
    touched = [d for d in definitions.aggregates.values() if d.source == "events"]
    if not touched:
        return
    session.flush()
    today = now.date()
    events = Event.__table__.c
    for chunk in _chunks(sorted(customer_ids)):
        stores: dict[str, _Store] = {}
        rows = session.execute(
            select(
                events.customer_id,
                events.event_id,
                events.type,
                events.channel,
                events.occurred_at,
                events.properties,
            ).where(_among(session, events.customer_id, chunk))
        ).all()
        for row in rows:
            store = stores.get(row.customer_id)
            if store is None:
                store = stores[row.customer_id] = _Store(row.customer_id, today)
                for definition in touched:
                    store.state(definition)
            fact = event_fact(row)  # type: ignore[arg-type]
            for definition in touched:
                store.apply(definition, fact, 1)
        _insert_rows(session, stores)


def _needs_rebuild(store: _Store, touched: list[AggregateDef]) -> bool:
    """The same test as the one-record path: stale or missing state means a rebuild."""
    built = {_family(d.source) for d in touched if d.name in store.states}
    for definition in touched:
        state = store.states.get(definition.name)
        if state is None and _family(definition.source) in built:
            return True
        if state is not None and state.spec_hash != definition.spec_hash:
            return True
    return False


def _replace_rows(
    session: Session, stores: dict[str, _Store], names: list[str], keys: set[str]
) -> None:
    """Write the folded rows back. Events only add, so no row drops to zero: PostgreSQL
    upserts them (an UPDATE in place, no new index entries); SQLite deletes what was read
    and inserts what is now."""
    if session.get_bind().dialect.name == "postgresql":
        _upsert_rows_postgresql(session, stores)
        return
    customer_ids = sorted(stores)
    for chunk in _chunks(customer_ids):
        session.execute(
            delete(ComputedState.__table__).where(
                _among(session, ComputedState.customer_id, chunk), ComputedState.name.in_(names)
            )
        )
        session.execute(
            delete(ComputedPart.__table__).where(
                _among(session, ComputedPart.customer_id, chunk),
                ComputedPart.name.in_(names),
                _among(session, ComputedPart.key, sorted(keys)),
            )
        )
    _insert_rows(session, stores)


def _upsert_rows_postgresql(session: Session, stores: dict[str, _Store]) -> None:
    """COPY the rows into temporary tables shaped like the real ones, then one
    INSERT ... SELECT ... ON CONFLICT DO UPDATE per table."""
    connection = session.connection()
    for table, keys in (
        (ComputedState.__table__, ("customer_id", "name")),
        (ComputedPart.__table__, ("customer_id", "name", "key")),
    ):
        scratch = f"cdp_bulk_{table.name}"
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} "
            f"(LIKE {table.name}) ON COMMIT DELETE ROWS"
        )
        connection.exec_driver_sql(f"TRUNCATE {scratch}")
        rows = _state_rows(stores) if table is ComputedState.__table__ else _part_rows(stores)
        if not rows:
            continue
        columns = list(rows[0])
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        _copy(session, scratch, columns, [list(row.values()) for row in rows], json_columns)
        names = ", ".join(columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {scratch} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )


def _insert_rows(session: Session, stores: dict[str, _Store]) -> None:
    """Insert the folded state rows and the non-empty part rows."""
    _insert(session, ComputedState.__table__, _state_rows(stores))
    _insert(session, ComputedPart.__table__, _part_rows(stores))


def _state_rows(stores: dict[str, _Store]) -> list[dict[str, Any]]:
    return [state_row(row) for store in stores.values() for row in store.states.values()]


def _part_rows(stores: dict[str, _Store]) -> list[dict[str, Any]]:
    """Part rows with a non-zero count (a tally or bucket at zero is deleted, not kept)."""
    return [
        part_row(row) for store in stores.values() for row in store.parts.values() if row.count != 0
    ]


def refresh_statistics(session: Session) -> None:
    """ANALYZE the tables a bulk import fills (PostgreSQL; it counts this transaction's own
    rows). Without it the planner keeps the sizes of before the import and, a million rows
    later, answers the chunk lookups by scanning whole tables."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.flush()
    tables = (Profile, AttributeValue, Identity, Event, ComputedState, ComputedPart)
    names = ", ".join(model.__tablename__ for model in tables)
    session.connection().exec_driver_sql(f"ANALYZE {names}")


def _lock_profiles(session: Session, customer_ids: list[str]) -> None:
    """Row locks on the profiles, in key order, like the one-record path takes one by one."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serialises writers
    for chunk in _chunks(customer_ids):
        session.execute(
            select(Profile.customer_id)
            .where(_among(session, Profile.customer_id, chunk))
            .order_by(Profile.customer_id)
            .with_for_update(key_share=True)
        )


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Plain inserts: COPY on PostgreSQL (one stream, no per-row statement), multi-row
    executemany on SQLite."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for chunk in _chunks(rows):
            connection.execute(table.insert(), chunk)
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    _copy(
        session,
        table.name,
        columns,
        [[row[name] for name in columns] for row in rows],
        json_columns,
    )


def _copy(
    session: Session,
    table: str,
    columns: list[str],
    rows: Iterable[list[Any]],
    json_columns: Collection[str],
) -> None:
    """COPY rows in PostgreSQL's text format, formatted here (much cheaper per row than
    letting the driver adapt every value)."""
    is_json = [name in json_columns for name in columns]
    names = ", ".join(f'"{name}"' for name in columns)
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    lines = []
    for row in rows:
        fields = [
            _copy_text(json.dumps(value, ensure_ascii=False) if flag else value)
            for value, flag in zip(row, is_json, strict=True)
        ]
        lines.append("\t".join(fields))
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for start in range(0, len(lines), COPY_LINES):
            copy.write("\n".join(lines[start : start + COPY_LINES]) + "\n")


def _copy_text(value: Any) -> str:
    """One field of COPY text: NULL as \\N, JSON already serialised (None became JSON null,
    as SQLAlchemy's JSON type writes it), enum members as their stored value."""
    kind = type(value)
    if kind is str:
        return _escape(value) if _COPY_SPECIAL.search(value) else value
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if kind is datetime or kind is date:
        return value.isoformat()
    if isinstance(value, Enum):
        return _copy_text(value.value)
    return _copy_text(str(value))


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _among(session: Session, column: Any, values: list[str]) -> ColumnElement[bool]:
    """column IN values; on PostgreSQL one array parameter (= ANY) instead of one
    parameter per value, which is costly to send and to plan for thousands of values."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(String())))
    return column.in_(values)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), STATEMENT_ROWS):
        yield items[start : start + STATEMENT_ROWS]
