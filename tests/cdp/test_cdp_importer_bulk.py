"""The bulk import path writes exactly what the one-record path writes, on both databases.

Each test imports the same files twice, into two fresh databases: once record by record,
once with bulk=True (chunks made tiny so every case crosses chunk boundaries), then
compares every table row by row (ids and write times aside) and every computed value.
"""

import gc
import json
import random
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import cdp.bulk
import cdp.importer
from cdp.computed.service import computed_values
from cdp.db import make_engine, migrate, transaction
from cdp.errors import ImportRecordError
from cdp.importer import ImportSummary, import_file
from cdp.models import Base
from cdp.profiles.models import Profile
from tests.postgres import postgres_database_or_skip

# Written by the database or the clock at write time: differ between any two imports.
VOLATILE_COLUMNS = frozenset({"id", "created_at", "updated_at", "set_at", "registered_at"})
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def twin_engines(cdp_url: str, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two fresh migrated databases of the same backend: one per import path."""
    engines = [make_engine(cdp_url)]
    if cdp_url.startswith("sqlite"):
        engines.append(make_engine(f"sqlite:///{tmp_path / 'bulk.sqlite3'}"))
        for engine in engines:
            migrate(engine)
        yield engines[0], engines[1]
    else:
        with postgres_database_or_skip() as other:
            engines.append(make_engine(other))
            for engine in engines:
                migrate(engine)
            yield engines[0], engines[1]
    for engine in engines:
        engine.dispose()


@pytest.fixture(autouse=True, params=["aggregates-in-memory", "aggregates-written-out"])
def tiny_chunks(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Chunks of a few lines, so records and their customers land in different chunks; and
    new profiles' aggregates either kept in memory to the end or written out whenever two
    are held, as for a file of more than FRESH_AGGREGATES_LIMIT profiles."""
    monkeypatch.setattr(cdp.importer, "BULK_CHUNK", 7)
    monkeypatch.setattr(cdp.bulk, "STATEMENT_ROWS", 3)
    if request.param == "aggregates-written-out":
        monkeypatch.setattr(cdp.importer, "FRESH_AGGREGATES_LIMIT", 2)


def write(path: Path, records: list[dict[str, Any] | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def profile(number: int, rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "profile",
        "customer_id": f"C-{number:05d}",
        "first_name": rng.choice(["Ana", "Ben", "Chloé", "Dev"]),
        "email": f"person{number}@example.com",
        "phone": f"+1555{number:07d}",
        "email_verified": rng.random() < 0.3,
    }
    if rng.random() < 0.5:
        record["address"] = {
            "line1": f"{number} Elm St",
            "city": rng.choice(["Austin", "Lyon"]),
            "postal_code": "78701",
            "country": "US",
        }
    if rng.random() < 0.6:
        record["custom"] = {
            "membership_tier": rng.choice(["basic", "plus", "premium"]),
            "store_card_holder": rng.random() < 0.5,
            "favourite_roast": "dark",
        }
    if number % 7 == 0:  # characters PostgreSQL's COPY text format must escape
        record["last_name"] = "Back\\slash"
        record["custom"] = {"note": "tab\there\nnew line \\ done", "tier": None}
        record["verified"] = rng.random() < 0.5
    return record


def event(number: int, customer: int, rng: random.Random) -> dict[str, Any]:
    return {
        "kind": "event",
        "customer_id": f"C-{customer:05d}",
        "type": rng.choice(["payment_failed", "login", "page_view"]),
        "at": at(rng.uniform(0, 60)),
        "event_id": f"E-{number}",
        "channel": rng.choice(["web", "sms"]),
        "properties": {"amount": rng.randint(1, 90)},
    }


def order(number: int, customer: int) -> dict[str, Any]:
    return {
        "kind": "order",
        "customer_id": f"C-{customer:05d}",
        "order_id": f"O-{number}",
        "placed_at": at(number % 40),
        "status": "delivered",
        "channel": "web",
        "currency": "USD",
        "items": [{"sku": "SKU-1", "name": "Flat white beans", "qty": 2, "unit_price": 3.5}],
    }


def mixed_file(
    seed: int, first: int, profiles: int, events: int, verified: bool = False
) -> list[dict[str, Any]]:
    """Profiles interleaved with their events, a few orders and identities, redeliveries.

    verified: every profile line is verified, so it may replace what an earlier file set.
    """
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    numbers = list(range(first, first + profiles))
    for number in numbers:
        records.append(profile(number, rng))
        if verified:
            records[-1]["verified"] = True
        if number % 5 == 0:
            records.append(order(number, number))
    for event_number in range(events):
        records.append(event(seed * 100_000 + event_number, rng.choice(numbers), rng))
        if event_number % 9 == 0:
            records.append(records[-1])  # redelivered in the same file
    records.append(
        {
            "kind": "identity",
            "customer_id": f"C-{first:05d}",
            "type": "member_id",
            "value": f"M-{seed}",
        }
    )
    return records


def run(engine: Engine, path: Path, *, bulk: bool, skip_invalid: bool = False) -> ImportSummary:
    with transaction(engine) as session:
        return import_file(session, path, bulk=bulk, skip_invalid=skip_invalid)


def table_rows(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table without its volatile columns, sorted, as comparable text."""
    dump = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
            rows = connection.execute(select(*columns)).all()
            dump[table.name] = sorted(repr(tuple(row)) for row in rows)
    return dump


def all_computed(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        return {
            customer_id: computed_values(session, customer_id, now=NOW)
            for customer_id in session.scalars(select(Profile.customer_id))
        }


def summary_counts(summary: ImportSummary) -> dict[str, tuple[int, int, int, int]]:
    return {k: (c.read, c.created, c.updated, c.unchanged) for k, c in summary.by_kind.items()}


def assert_same_databases(one_by_one: Engine, bulk: Engine) -> None:
    expected, got = table_rows(one_by_one), table_rows(bulk)
    assert expected["events"], "the comparison must cover events"
    assert expected["computed_state"], "the comparison must cover computed state"
    for table in expected:
        assert got[table] == expected[table], table
    assert all_computed(bulk) == all_computed(one_by_one)


def test_bulk_import_writes_what_the_one_record_path_writes(
    twin_engines: tuple[Engine, Engine], tmp_path: Path
) -> None:
    normal, bulk = twin_engines
    first = write(tmp_path / "first.jsonl", mixed_file(seed=1, first=1, profiles=30, events=120))
    # The second file updates stored profiles, adds new ones and events for both.
    second_records = mixed_file(seed=2, first=20, profiles=25, events=90, verified=True)
    second = write(tmp_path / "second.jsonl", second_records)

    for path in (first, second):
        expected = run(normal, path, bulk=False)
        got = run(bulk, path, bulk=True)
        assert summary_counts(got) == summary_counts(expected)
    assert_same_databases(normal, bulk)

    # Idempotent: the same file again changes nothing on either path.
    before = table_rows(bulk)
    again = run(bulk, second, bulk=True)
    assert again.written == 0
    assert again.by_kind["event"].unchanged == again.by_kind["event"].read
    assert table_rows(bulk) == before


def test_bulk_updates_stale_computed_state_like_the_one_record_path(
    twin_engines: tuple[Engine, Engine], tmp_path: Path
) -> None:
    """A profile whose stored state was built by an older definition is rebuilt on write."""
    normal, bulk = twin_engines
    first = write(tmp_path / "first.jsonl", mixed_file(seed=3, first=1, profiles=8, events=30))
    second = write(
        tmp_path / "second.jsonl", mixed_file(seed=4, first=1, profiles=8, events=30, verified=True)
    )
    for engine, use_bulk in ((normal, False), (bulk, True)):
        run(engine, first, bulk=use_bulk)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "UPDATE computed_state SET spec_hash = 'old' WHERE name = 'last_event'"
            )
        run(engine, second, bulk=use_bulk)
    assert_same_databases(normal, bulk)
    with bulk.connect() as connection:
        hashes = connection.exec_driver_sql(
            "SELECT DISTINCT spec_hash FROM computed_state WHERE name = 'last_event'"
        ).scalars()
        assert "old" not in set(hashes)


BAD_LINES: list[dict[str, Any] | str] = [
    "{not json",
    {"kind": "event", "customer_id": "C-99999", "type": "x", "at": at(1), "event_id": "E-bad"},
    {"kind": "profile", "customer_id": "C-80000", "email": "person1@example.com"},
    {"kind": "profile", "customer_id": "C-80001", "custom": {"membership_tier": "gold"}},
    {"kind": "event", "customer_id": "C-80001", "type": "login", "at": at(1), "event_id": "E-x"},
    {"kind": "profile", "customer_id": "C-80002", "phone": "0000000"},
]


def with_bad_lines(records: list[dict[str, Any]]) -> list[dict[str, Any] | str]:
    mixed: list[dict[str, Any] | str] = list(records)
    for offset, bad in enumerate(BAD_LINES):
        mixed.insert(10 + offset * 11, bad)
    return mixed


@pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "bulk"])
def test_skip_invalid_imports_the_good_lines_and_reports_the_rest(
    cdp_engine: Engine, tmp_path: Path, bulk: bool
) -> None:
    records = with_bad_lines(mixed_file(seed=5, first=1, profiles=20, events=40))
    path = write(tmp_path / "mixed.jsonl", records)
    bad_lines = [number for number, record in enumerate(records, 1) if record in BAD_LINES]

    summary = run(cdp_engine, path, bulk=bulk, skip_invalid=True)

    assert [error.line_no for error in summary.skipped] == bad_lines
    assert [error.field for error in summary.skipped] == [
        "$",
        "customer_id",
        "email",
        "custom.membership_tier",
        "customer_id",
        "phone",
    ]
    assert "already belongs to C-00001" in summary.skipped[2].reason
    assert summary.read == len(records)
    assert summary.records == len(records) - len(BAD_LINES)
    with Session(cdp_engine) as session:
        stored = set(session.scalars(select(Profile.customer_id)))
    assert len(stored) == 20
    assert not {"C-80000", "C-80001", "C-80002"} & stored


def test_skip_invalid_bulk_equals_skip_invalid_one_by_one(
    twin_engines: tuple[Engine, Engine], tmp_path: Path
) -> None:
    normal, bulk = twin_engines
    records = with_bad_lines(mixed_file(seed=6, first=1, profiles=25, events=60))
    path = write(tmp_path / "mixed.jsonl", records)
    expected = run(normal, path, bulk=False, skip_invalid=True)
    got = run(bulk, path, bulk=True, skip_invalid=True)
    assert summary_counts(got) == summary_counts(expected)
    assert [(e.line_no, e.field, e.reason) for e in got.skipped] == [
        (e.line_no, e.field, e.reason) for e in expected.skipped
    ]
    assert_same_databases(normal, bulk)


@pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "bulk"])
def test_without_skip_invalid_the_first_bad_line_stops_everything(
    cdp_engine: Engine, tmp_path: Path, bulk: bool
) -> None:
    records = with_bad_lines(mixed_file(seed=7, first=1, profiles=20, events=40))
    # The first bad line found only at write time (an unknown customer) comes before a
    # line that is not even JSON: the error must still name the earlier line.
    records.insert(3, BAD_LINES[1])
    path = write(tmp_path / "mixed.jsonl", records)
    with pytest.raises(ImportRecordError) as raised:
        run(cdp_engine, path, bulk=bulk)
    assert (raised.value.line_no, raised.value.field) == (4, "customer_id")
    assert "unknown customer C-99999" in raised.value.reason
    with Session(cdp_engine) as session:
        assert session.scalar(select(Profile.customer_id)) is None


@pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "bulk"])
def test_an_event_may_not_use_a_customer_defined_on_a_later_line(
    cdp_engine: Engine, tmp_path: Path, bulk: bool
) -> None:
    records: list[dict[str, Any] | str] = [
        {"kind": "event", "customer_id": "C-1", "type": "x", "at": at(1), "event_id": "E-1"},
        {"kind": "profile", "customer_id": "C-1"},
    ]
    path = write(tmp_path / "order.jsonl", records)
    summary = run(cdp_engine, path, bulk=bulk, skip_invalid=True)
    assert [(e.line_no, e.field) for e in summary.skipped] == [(1, "customer_id")]
    assert summary.by_kind["profile"].created == 1


def test_a_failed_bulk_import_leaves_no_writer_thread_and_the_collector_as_it_was(
    cdp_engine: Engine, tmp_path: Path
) -> None:
    """On PostgreSQL chunks are written by a background thread: whatever happens, none
    may outlive the import, and the garbage collector gets its thresholds back."""
    thresholds = gc.get_threshold()
    bad = write(tmp_path / "bad.jsonl", with_bad_lines(mixed_file(7, 1, 20, 40)))
    good = write(tmp_path / "good.jsonl", mixed_file(8, 100, 20, 40))
    with pytest.raises(ImportRecordError):
        run(cdp_engine, bad, bulk=True)
    assert run(cdp_engine, good, bulk=True).by_kind["profile"].created == 20
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0  # what the import froze is the collector's again
    assert not [t for t in threading.enumerate() if t.name == "cdp-bulk-writer"]


def test_objects_frozen_before_a_bulk_import_stay_frozen(
    cdp_engine: Engine, tmp_path: Path
) -> None:
    """The import freezes what is alive at chunk boundaries and unfreezes it at the end,
    unless the process had frozen objects of its own: those it must not unfreeze."""
    good = write(tmp_path / "good.jsonl", mixed_file(9, 1, 20, 40))
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert run(cdp_engine, good, bulk=True).by_kind["profile"].created == 20
        # Still frozen (some may have been freed meanwhile), and nothing more.
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("column_type", ["json", "utc_datetime"])
def test_sqlite_values_are_written_as_sqlalchemy_binds_them(column_type: str) -> None:
    """The bulk path's own JSON and time conversions for SQLite give SQLAlchemy's text."""
    from sqlalchemy import JSON, create_engine

    from cdp.column_types import UtcDateTime

    dialect = create_engine("sqlite://").dialect
    values: list[Any]
    if column_type == "json":
        wanted: type = JSON
        values = [None, {"page": 40, "text": 'é\u2028"\\', "none": None}, [1, [2.5, 1e300]]]
        values += ["text", True, False, 10**20, ["s", "page_view"]]
    else:
        wanted = UtcDateTime
        values = [None, NOW, NOW.replace(microsecond=7)]
        values += [datetime(1999, 12, 31, 23, 59, 59, 999999, timezone(timedelta(hours=-3)))]
    columns = [
        column
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, wanted)
    ]
    assert columns
    for column in columns:
        expected = column.type.dialect_impl(dialect).bind_processor(dialect)
        convert = cdp.bulk._sqlite_processor(column, dialect)
        assert expected is not None and convert is not None
        assert [convert(value) for value in values] == [expected(value) for value in values]


class _Node:
    """An object that can refer to itself."""

    me: "_Node | None" = None


def _garbage_cycle() -> "weakref.ref[_Node]":
    node = _Node()
    node.me = node
    return weakref.ref(node)


def test_garbage_cycles_are_collected_before_a_bulk_import_freezes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cyclic garbage left at a chunk boundary is collected before the survivors are
    frozen: frozen, it would never be freed, and the import's memory would grow with every
    chunk. Each chunk written leaves a cycle; none may be alive when objects are frozen.
    (On SQLite: no writer thread, so nothing is being made while the import freezes.)"""
    cycles: list[weakref.ref[_Node]] = []
    alive_at_freeze: list[int] = []
    insert_events = cdp.importer.insert_events
    freeze = gc.freeze

    def insert_leaving_a_cycle(*args: Any, **kwargs: Any) -> Any:
        cycles.append(_garbage_cycle())
        return insert_events(*args, **kwargs)

    def counting_freeze() -> None:
        alive_at_freeze.append(sum(cycle() is not None for cycle in cycles))
        freeze()

    monkeypatch.setattr(cdp.importer, "insert_events", insert_leaving_a_cycle)
    monkeypatch.setattr(gc, "freeze", counting_freeze)
    engine = make_engine(f"sqlite:///{tmp_path / 'cycles.sqlite3'}")
    migrate(engine)
    good = write(tmp_path / "good.jsonl", mixed_file(10, 1, 20, 40))
    assert run(engine, good, bulk=True).by_kind["profile"].created == 20
    engine.dispose()
    assert len(alive_at_freeze) >= 3 and len(cycles) >= 3
    assert alive_at_freeze == [0] * len(alive_at_freeze)


@contextmanager
def plain_role(url: str) -> Iterator[str]:
    """The URL of `url`'s database for a new role that is not a superuser and has only
    the table rights the CDP needs (as an operator might set it up); dropped after."""
    role = f"cdp_plain_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            connection.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            connection.exec_driver_sql(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        yield make_url(url).set(username=role, password=None).render_as_string(False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def setting_while_writing(monkeypatch: pytest.MonkeyPatch, query: str) -> dict[str, set[Any]]:
    """What `query` (a SHOW or PRAGMA) answers at each bulk write, by target table."""
    seen: dict[str, set[Any]] = {}
    write_rows = cdp.bulk._write

    def recording(session: Session, target: str, *args: Any) -> None:
        setting = session.connection().exec_driver_sql(query).scalar_one()
        seen.setdefault(target, set()).add(setting)
        write_rows(session, target, *args)

    monkeypatch.setattr(cdp.bulk, "_write", recording)
    return seen


@pytest.mark.postgres
def test_foreign_key_checks_are_left_out_only_where_the_role_may_and_nowhere_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A superuser's bulk writes skip the per-row foreign-key triggers; the setting is
    back to origin after them (the one-record path keeps its checks). A role without the
    right keeps every check and gets the same rows."""
    path = write(tmp_path / "mixed.jsonl", mixed_file(seed=11, first=1, profiles=12, events=40))
    seen = setting_while_writing(monkeypatch, "SHOW session_replication_role")
    with postgres_database_or_skip() as privileged_url, postgres_database_or_skip() as other:
        privileged, plain_admin = make_engine(privileged_url), make_engine(other)
        for engine in (privileged, plain_admin):
            migrate(engine)
        with transaction(privileged) as session:
            import_file(session, path, bulk=True)
            after = session.connection().exec_driver_sql("SHOW session_replication_role")
            assert after.scalar_one() == "origin"
        assert seen["profiles"] == seen["attribute_values"] == {"replica"}
        assert seen["computed_state"] == {"replica"}
        assert seen["cdp_bulk_events"] == {"origin"}  # a scratch table, before the insert

        seen.clear()
        with plain_role(other) as plain_url:
            plain = make_engine(plain_url)
            try:
                run(plain, path, bulk=True)
            finally:
                plain.dispose()
        assert set().union(*seen.values()) == {"origin"}
        assert table_rows(plain_admin) == table_rows(privileged)
        for engine in (privileged, plain_admin):
            engine.dispose()


@pytest.mark.postgres
def test_a_stored_profile_the_bulk_events_refer_to_cannot_be_deleted_before_the_commit(
    tmp_path: Path,
) -> None:
    """What the skipped foreign-key check would have guaranteed, the import's own lock
    does: another transaction deleting the profile waits for the import's commit."""
    profiles = write(tmp_path / "profiles.jsonl", [profile(1, random.Random(3))])
    events = write(
        tmp_path / "events.jsonl", [event(number, 1, random.Random(number)) for number in range(5)]
    )
    with postgres_database_or_skip() as url:
        engine = make_engine(url)
        migrate(engine)
        run(engine, profiles, bulk=True)
        with transaction(engine) as session:
            assert import_file(session, events, bulk=True).by_kind["event"].created == 5
            with engine.connect() as other, pytest.raises(OperationalError, match="lock"):
                other.exec_driver_sql("SET lock_timeout = '300ms'")
                other.exec_driver_sql("DELETE FROM profiles WHERE customer_id = 'C-00001'")
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT count(*) FROM events").scalar_one()
        assert stored == 5
        engine.dispose()


def test_sqlite_imports_with_a_larger_page_cache_then_puts_the_connections_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "mixed.jsonl", mixed_file(seed=12, first=1, profiles=8, events=20))
    pragma = "PRAGMA cache_size"
    seen = setting_while_writing(monkeypatch, pragma)
    engine = make_engine(f"sqlite:///{tmp_path / 'cache.sqlite3'}")
    migrate(engine)
    with transaction(engine) as session:
        before = session.connection().exec_driver_sql(pragma).scalar_one()
        import_file(session, path, bulk=True)
        assert session.connection().exec_driver_sql(pragma).scalar_one() == before
    assert {"profiles", "events"} <= seen.keys()
    assert set().union(*seen.values()) == {-cdp.bulk.SQLITE_BULK_CACHE_KIB}
    engine.dispose()
