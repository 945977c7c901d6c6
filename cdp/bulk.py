"""Writing many already-validated new profiles and events with a few statements per chunk.

The importer's bulk path (`python -m cdp import --bulk`) hands chunks here instead of
calling upsert_profile / record_event once per record. The rows written are the ones those
functions would write for the same input (tests/cdp/test_cdp_importer_bulk.py compares
every table and every computed value), but a chunk costs a handful of statements, and rows
go straight to the driver (a binary COPY on PostgreSQL, one executemany on SQLite):

- new profiles: their rows in profiles, attribute_values and identities;
- events: the chunk's new events; the computed aggregates of stored profiles they touch
  are read with two queries, folded in memory by the same code as the one-record path
  (cdp.computed.service) and written back; those of profiles created by the same import
  are folded in memory as the import goes and written once at its end.

Callers decide which records are eligible: profiles whose customer id and identifiers
nobody holds yet, events whose customer exists (checked here with stored_customers, which
also locks those profiles on PostgreSQL). Anything else goes through the ordinary service
functions. On PostgreSQL, where the role may, the bulk statements skip the per-row
foreign-key checks (_references_checked_here): those locks and this transaction's own
inserts already guarantee every reference.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from functools import cache
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Dialect,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from cdp.addresses import ADDRESS_PARTS
from cdp.attributes.definitions import CustomDefinitions
from cdp.attributes.errors import UnknownAttribute
from cdp.attributes.models import AttributeKind, AttributeValue
from cdp.attributes.service import clean_custom_value
from cdp.column_types import UtcDateTime, stored_utc
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
from cdp.events.models import EVENT_FIELDS, Event, EventIn, event_values
from cdp.identities.models import Identity, IdentitySource, IdentityType
from cdp.profiles.models import Profile, ProfileAttributes

# Rows per multi-row statement: well under PostgreSQL's 65535 bind parameters per statement.
STATEMENT_ROWS = 1000
_STANDARD_COLUMNS = ("first_name", "last_name", "email", "phone", "language", "timezone")
# Rows are built as lists in these column orders: no dict per row to build and take apart.
_PROFILE_COLUMNS = (
    "customer_id",
    *_STANDARD_COLUMNS,
    *(f"address_{part}" for part in ADDRESS_PARTS),
    "custom",
    "created_at",
    "updated_at",
    "merged_into",
)
_ATTRIBUTE_COLUMNS = (
    "customer_id",
    "name",
    "kind",
    "value",
    "value_type",
    "source",
    "verified",
    "set_at",
)
_IDENTITY_COLUMNS = ("customer_id", "type", "value", "verified", "source", "created_at")
# SQLite's page cache during a bulk import, in KiB. With the default 2 MB the index inserts
# into growing tables kept evicting pages they needed next (import about a tenth slower);
# 64 MiB did as well as 256 MiB at 100,000 profiles.
SQLITE_BULK_CACHE_KIB = 65_536
# session.info key: whether this session's PostgreSQL role may set session_replication_role.
_MAY_SKIP_TRIGGERS = "cdp.bulk.may_skip_triggers"


@contextmanager
def bulk_cache(session: Session) -> Iterator[None]:
    """On SQLite, a page cache of at least SQLITE_BULK_CACHE_KIB while inside (the
    connection's own setting is put back after)."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    page_size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
    larger = (-before if before < 0 else before * page_size // 1024) < SQLITE_BULK_CACHE_KIB
    if larger:
        connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        if larger:
            connection.exec_driver_sql(f"PRAGMA cache_size = {before}")


@contextmanager
def _references_checked_here(session: Session) -> Iterator[None]:
    """Inside, PostgreSQL skips its per-row foreign-key checks when the role may turn them
    off (session_replication_role = replica, for this transaction only, and back to origin
    on the way out). Those checks, a query and a row lock per inserted row, were a sixth of
    a bulk import's time at 200,000 profiles.

    The callers vouch for every reference instead: each row written inside refers to a
    profile this transaction inserted, or one that stored_customers or _lock_profiles
    locked FOR KEY SHARE (the lock the check itself takes), so no other transaction can
    delete it before the commit. Nothing else runs inside: the one-record path, which
    relies on the checks, never does."""
    if not _may_skip_triggers(session):
        yield
        return
    connection = session.connection()
    connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    try:
        yield
    finally:
        # After an error in the database the transaction can only roll back, and its SET
        # LOCAL goes with it; a SET now would fail and hide that error.
        if _raw(session).info.transaction_status != TransactionStatus.INERROR:
            connection.exec_driver_sql("SET LOCAL session_replication_role = origin")


def _may_skip_triggers(session: Session) -> bool:
    """PostgreSQL, and the role is a superuser or was granted SET on
    session_replication_role (PostgreSQL 15 and later). Asked once per session."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    allowed = session.info.get(_MAY_SKIP_TRIGGERS)
    if allowed is None:
        connection = session.connection()
        allowed = connection.exec_driver_sql("SHOW is_superuser").scalar_one() == "on"
        version = int(connection.exec_driver_sql("SHOW server_version_num").scalar_one())
        if not allowed and version >= 150000:
            allowed = bool(
                connection.exec_driver_sql(
                    "SELECT has_parameter_privilege('session_replication_role', 'SET')"
                ).scalar_one()
            )
        session.info[_MAY_SKIP_TRIGGERS] = allowed
    return allowed


@dataclass(frozen=True)
class NewProfile:
    """The rows upsert_profile would insert for a profile that does not exist yet: its
    profiles row and attribute_values rows (_PROFILE_COLUMNS, _ATTRIBUTE_COLUMNS order)."""

    customer_id: str
    profile: list[Any]
    attribute_values: list[list[Any]]
    identities: list[tuple[IdentityType, str, bool]]
    declared: frozenset[str]
    created_at: datetime


def new_profile_rows(
    customer_id: str,
    attributes: ProfileAttributes,
    definitions: CustomDefinitions,
    source: IdentitySource,
    now: datetime,
) -> NewProfile:
    """Validate the custom values and build the rows; InvalidValue (field = the custom
    attribute) or UnknownAttribute like upsert_profile. Values are already normalised."""
    standard = [getattr(attributes, name) for name in _STANDARD_COLUMNS]
    columns = dict(zip(_STANDARD_COLUMNS, standard, strict=True))
    wanted = [name for name, value in columns.items() if value is not None]
    if attributes.address is not None:
        wanted.append("address")
    declared: dict[str, Any] = {}
    undeclared: dict[str, Any] = {}
    for key, value in (attributes.custom or {}).items():
        (declared if key in definitions.attributes else undeclared)[key] = value
    if undeclared and definitions.undeclared == "reject":
        raise UnknownAttribute(sorted(undeclared)[0])
    address = attributes.address
    profile = [
        customer_id,
        *standard,
        *(getattr(address, part, None) for part in ADDRESS_PARTS),
        undeclared,
        now,
        now,
        None,
    ]
    standard_kind = AttributeKind.STANDARD
    values = [
        [customer_id, name, standard_kind, None, None, source, _verified(attributes, name), now]
        for name in wanted
    ]
    for name, raw in declared.items():
        definition = definitions.attributes[name]
        value = None if raw is None else clean_custom_value(definition, raw)
        values.append(
            [
                customer_id,
                name,
                AttributeKind.CUSTOM,
                value,
                definition.type.value,
                source,
                attributes.verified,
                now,
            ]
        )
    identities = [
        (kind, columns[kind.value], verified)
        for kind, verified in (
            (IdentityType.EMAIL, attributes.email_verified),
            (IdentityType.PHONE, attributes.phone_verified),
        )
        if columns[kind.value] is not None
    ]
    return NewProfile(customer_id, profile, values, identities, frozenset(declared), now)


def _verified(attributes: ProfileAttributes, name: str) -> bool:
    if name == "email":
        return attributes.email_verified
    if name == "phone":
        return attributes.phone_verified
    return attributes.verified


def stored_customers(session: Session, customer_ids: Iterable[str]) -> set[str]:
    """Which of these customer ids have a profile (one query per _lookup_chunks chunk).

    On PostgreSQL those profiles are locked FOR KEY SHARE until the commit, as a foreign-key
    check would: rows that refer to them may then skip that check
    (_references_checked_here)."""
    found: set[str] = set()
    locking = session.get_bind().dialect.name == "postgresql"
    for chunk in _lookup_chunks(session, sorted(set(customer_ids))):
        query = select(Profile.customer_id).where(_among(session, Profile.customer_id, chunk))
        if locking:
            query = query.order_by(Profile.customer_id).with_for_update(key_share=True)
        found.update(session.scalars(query))
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
        for chunk in _lookup_chunks(session, sorted(values)):
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
    with _references_checked_here(session):
        _write_new_profiles(session, profiles)


def _write_new_profiles(session: Session, profiles: Sequence[NewProfile]) -> None:
    _write(
        session,
        "profiles",
        _columns(Profile.__table__, _PROFILE_COLUMNS),
        (item.profile for item in profiles),
    )
    _write(
        session,
        "attribute_values",
        _columns(AttributeValue.__table__, _ATTRIBUTE_COLUMNS),
        (row for item in profiles for row in item.attribute_values),
    )
    source = IdentitySource.IMPORT
    _write(
        session,
        "identities",
        _columns(Identity.__table__, _IDENTITY_COLUMNS),
        (
            [item.customer_id, kind, value, verified, source, item.created_at]
            for item in profiles
            for kind, value, verified in item.identities
        ),
    )


def insert_events(
    session: Session,
    events: Sequence[EventIn],
    on_server_work: Callable[[], None] | None = None,
) -> list[EventIn]:
    """Insert events whose customers exist; returns those stored (not redeliveries).

    Within the list the first event with an event_id wins, as with record_event; ids stored
    before are skipped. PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT
    ... ON CONFLICT DO NOTHING (which also skips ids a concurrent writer just stored).
    SQLite: the ids already stored are looked up and the others inserted (BEGIN IMMEDIATE
    keeps every other writer out meanwhile). `on_server_work` is called when what is left is
    the server's work (PostgreSQL's INSERT ... SELECT), for a caller with Python work to do
    meanwhile in another thread.
    """
    unique: dict[str, EventIn] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    if not unique:
        return []
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        stored = _insert_events_postgresql(session, list(unique.values()), on_server_work)
        return [event for event in unique.values() if event.event_id in stored]
    taken = _stored_event_ids_sqlite(session, list(unique))
    new = [event for event in unique.values() if event.event_id not in taken]
    _write(session, "events", _event_columns(), map(event_values, new))
    return new


def _stored_event_ids_sqlite(session: Session, event_ids: list[str]) -> set[str]:
    """Which of these event ids are stored, STATEMENT_ROWS at a time through the driver:
    SQLAlchemy's expanding IN cost twice the lookup itself."""
    taken: set[str] = set()
    with closing(_raw(session).cursor()) as cursor:
        for chunk in _chunks(event_ids):
            marks = ", ".join("?" * len(chunk))
            cursor.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk)
            taken.update(row[0] for row in cursor.fetchall())
    return taken


def _event_columns() -> list[Column[Any]]:
    return _columns(Event.__table__, EVENT_FIELDS)


def _columns(table: Table, names: Sequence[str]) -> list[Column[Any]]:
    return [table.c[name] for name in names]


def _insert_events_postgresql(
    session: Session, events: list[EventIn], on_server_work: Callable[[], None] | None
) -> set[str]:
    connection = session.connection()
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS cdp_bulk_events (event_id varchar, "
        "customer_id varchar, type varchar, occurred_at timestamptz, channel varchar, "
        "properties json) ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql("TRUNCATE cdp_bulk_events")
    _write(session, "cdp_bulk_events", _event_columns(), map(event_values, events))
    names = ", ".join(EVENT_FIELDS)
    if on_server_work is not None:
        on_server_work()
    with _references_checked_here(session), _raw(session).cursor() as cursor:
        cursor.execute(
            f"INSERT INTO events ({names}) SELECT {names} FROM cdp_bulk_events "
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
    for chunk in _lookup_chunks(session, customer_ids):
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
    with _references_checked_here(session):  # every profile here was locked above
        _replace_rows(session, stores, names, keys)
    if session.identity_map:
        session.expire_all()  # ORM copies of the rows just replaced are out of date
    for cid in one_by_one:
        # What the one-record path ends with: these aggregates rebuilt from the history,
        # which now holds the new events too.
        _rebuild(session, cid, touched, today)


class NewProfileAggregates:
    """The event aggregates of profiles created by this import: folded in memory as their
    events are stored, written once at the end of the import.

    Such profiles have no computed state yet and nobody else sees them before the commit,
    so there is nothing to read back and no row to rewrite chunk after chunk. Aggregates
    don't depend on the order events arrive in and the arithmetic is apply_event's, so the
    rows are the ones the one-record path leaves.
    """

    def __init__(self, definitions: ComputedDefinitions, now: datetime) -> None:
        self.touched = [d for d in definitions.aggregates.values() if d.source == "events"]
        self.today = now.date()
        self.stores: dict[str, _Store] = {}

    def add(self, events: Iterable[EventIn]) -> None:
        """Fold events just stored for profiles this import created."""
        if not self.touched:
            return
        for event in events:
            store = self.stores.get(event.customer_id)
            if store is None:
                store = self.stores[event.customer_id] = _Store(event.customer_id, self.today)
                for definition in self.touched:
                    store.state(definition)
            fact = event_fact(event)
            for definition in self.touched:
                store.apply(definition, fact, 1)

    def write(self, session: Session) -> set[str]:
        """Insert the folded rows (state rows, and part rows with a count) and forget them;
        returns the customers whose rows these were."""
        session.flush()
        with _references_checked_here(session):  # profiles inserted by this transaction
            _insert_rows(session, self.stores)
        written = set(self.stores)
        self.stores.clear()
        return written


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
    for table, keys, rows in (
        (ComputedState.__table__, ("customer_id", "name"), _state_rows(stores)),
        (ComputedPart.__table__, ("customer_id", "name", "key"), _part_rows(stores)),
    ):
        if not rows:
            continue
        scratch = f"cdp_bulk_{table.name}"
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} "
            f"(LIKE {table.name}) ON COMMIT DELETE ROWS"
        )
        connection.exec_driver_sql(f"TRUNCATE {scratch}")
        _insert(session, table, rows, into=scratch)
        names = ", ".join(rows[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in rows[0] if c not in keys)
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
    stored_customers(session, customer_ids)


def _insert(
    session: Session, table: Table, rows: list[dict[str, Any]], into: str | None = None
) -> None:
    """Insert rows (dicts with the same keys) into a table, or into a scratch table with
    its columns (`into`)."""
    if not rows:
        return
    names = list(rows[0])
    _write(
        session,
        into or table.name,
        _columns(table, names),
        ([row[name] for name in names] for row in rows),
    )


def _write(
    session: Session, target: str, columns: list[Column[Any]], rows: Iterable[Sequence[Any]]
) -> None:
    """Plain inserts straight through the driver, values converted as SQLAlchemy binds them
    (its per-row statement machinery cost more than the database's work): a binary COPY on
    PostgreSQL, one executemany of a prepared INSERT on SQLite."""
    connection = session.connection()
    raw = _raw(session)
    names = ", ".join(f'"{column.name}"' for column in columns)
    if connection.dialect.name == "postgresql":
        formats = [_copy_format(column) for column in columns]
        converted = _converted(rows, [convert for _, convert in formats])
        statement = f'COPY "{target}" ({names}) FROM STDIN (FORMAT BINARY)'
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types([type_name for type_name, _ in formats])
            for row in converted:
                copy.write_row(row)
        return
    processors = [_sqlite_processor(column, connection.dialect) for column in columns]
    marks = ", ".join("?" * len(columns))
    with closing(raw.cursor()) as cursor:
        cursor.executemany(
            f'INSERT INTO "{target}" ({names}) VALUES ({marks})', _converted(rows, processors)
        )


def _converted(
    rows: Iterable[Sequence[Any]], converters: list[Callable[[Any], Any] | None]
) -> Iterator[list[Any]]:
    """Copies of the rows with each value passed through its column's converter (None: as
    it is).

    A value that is the very object the row before had in that column (the import's
    timestamp, an enum member, None, True) reuses its converted form: most converted
    values are such repeats."""
    active = [(index, convert) for index, convert in enumerate(converters) if convert]
    last: list[Any] = [_NOTHING] * len(converters)
    done: list[Any] = [None] * len(converters)
    for row in rows:
        converted = list(row)
        for index, convert in active:
            value = converted[index]
            if value is not last[index]:
                last[index] = value
                done[index] = convert(value)
            converted[index] = done[index]
        yield converted


_NOTHING = object()


@cache
def _sqlite_processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The conversion SQLAlchemy applies to this column's values when binding them; for
    JSON and UTC times the same text, made at a third of the cost (about 2 and 1.8 µs a
    value, 4 µs of every event)."""
    if isinstance(column.type, JSON):
        return _json_text  # None too: SQLAlchemy writes it as JSON null, not SQL NULL
    if isinstance(column.type, UtcDateTime):
        return _sqlite_utc_text
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """A UtcDateTime as SQLAlchemy's SQLite DATETIME stores it: UTC, no offset,
    microseconds always written."""
    if value is None:
        return None
    if value.tzinfo is timezone.utc:  # parsed timestamps: cut the "+00:00" off
        return value.isoformat(" ", "microseconds")[:-6]
    return stored_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


@cache
def _copy_format(column: Column[Any]) -> tuple[str, Callable[[Any], Any] | None]:
    """The binary COPY type of a column and how to convert a value for it. JSON goes as
    the text SQLAlchemy would send (None as JSON null, as its JSON type writes it), enum
    members as their stored value."""
    for column_type, copy_type, convert in _COPY_FORMATS:
        if isinstance(column.type, column_type):
            return copy_type, convert
    raise TypeError(f"no COPY format for {column} ({column.type!r})")


def _enum_value(member: Enum | None) -> Any:
    return None if member is None else member.value


# json.dumps's own C encoder with json.dumps's defaults, built once: the same text at a
# third of the cost (json.dumps sets up an encoder per call). Without the cycle check:
# the values are parsed JSON, which cannot contain cycles.
_JSON_CHUNKS = c_make_encoder(
    None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def _json_text(value: Any) -> str:
    """json.dumps(value), for the acyclic values of an import."""
    return "".join(_JSON_CHUNKS(value, 0))


# (column type, binary COPY type, conversion), first match wins: an Enum is also a String.
_COPY_FORMATS: tuple[tuple[type, str, Callable[[Any], Any] | None], ...] = (
    (JSON, "text", _json_text),
    (SqlEnum, "text", _enum_value),
    (String, "text", None),
    (UtcDateTime, "timestamptz", None),
    (Date, "date", None),
    (Boolean, "bool", None),
    (BigInteger, "int8", None),
)


def _raw(session: Session) -> Any:
    """The driver's connection under the session's (same transaction)."""
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    return raw


def _among(session: Session, column: Any, values: list[str]) -> ColumnElement[bool]:
    """column IN values; on PostgreSQL IN (SELECT unnest(array)): one parameter instead of
    one per value (costly to send and plan for thousands), and a join the planner can run
    by index. `= ANY(array)` was a filter testing every row against the whole array once
    the driver prepared the statement, a seq scan of the table per chunk."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, values, type_=postgresql.ARRAY(String()))
        return column.in_(select(func.unnest(array)).scalar_subquery())
    return column.in_(values)


def _lookup_chunks(session: Session, items: list[Any]) -> Iterable[list[Any]]:
    """Values for _among: on PostgreSQL all at once (one array parameter, whatever its
    size; a thousand at a time made the planner scan a growing table once per thousand),
    elsewhere STATEMENT_ROWS at a time."""
    if session.get_bind().dialect.name == "postgresql":
        return [items] if items else []
    return _chunks(items)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), STATEMENT_ROWS):
        yield items[start : start + STATEMENT_ROWS]
