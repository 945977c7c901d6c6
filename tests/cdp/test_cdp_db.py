"""Migrations, engine settings, transactions and the portable column types."""

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session

import cdp.db as cdp_db
from cdp.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    run_in_transaction,
    transaction,
)
from cdp.identities.models import IdentitySource, IdentityType
from cdp.models import Base, Identity, Order, Profile
from cdp.orders.models import OrderStatus

TABLES = {"profiles", "identities", "orders", "order_lines", "events"}


def test_migrate_reaches_head_and_is_idempotent(cdp_url: str) -> None:
    engine = make_engine(cdp_url)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        migrate(engine)
        assert current_revision(engine) == head_revision() == "0006"
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_models_and_migrations_agree(cdp_engine: Engine) -> None:
    with cdp_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_upgrade_again(cdp_engine: Engine) -> None:
    with cdp_engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert not TABLES & set(inspect(cdp_engine).get_table_names())
    migrate(cdp_engine)
    assert current_revision(cdp_engine) == head_revision()


def test_sqlite_connections_enforce_foreign_keys_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(cdp_engine: Engine) -> None:
    with pytest.raises(IntegrityError), transaction(cdp_engine) as session:
        session.add(
            Identity(
                customer_id="C-404",
                type=IdentityType.EMAIL,
                value="x@example.com",
                source=IdentitySource.API,
            )
        )


def test_transaction_commits_on_success(cdp_engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with transaction(cdp_engine) as session:
        session.add(Profile(customer_id="C-1", created_at=now, updated_at=now))
    with Session(cdp_engine) as session:
        assert session.get(Profile, "C-1") is not None


def test_transaction_rolls_back_on_exception(cdp_engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with pytest.raises(RuntimeError, match="boom"), transaction(cdp_engine) as session:
        session.add(Profile(customer_id="C-1", created_at=now, updated_at=now))
        session.flush()
        raise RuntimeError("boom")
    with Session(cdp_engine) as session:
        assert session.get(Profile, "C-1") is None


def test_datetimes_come_back_as_aware_utc(cdp_engine: Engine) -> None:
    paris = timezone(timedelta(hours=2))
    placed = datetime(2026, 10, 2, 20, 30, 0, 123456, tzinfo=paris)
    with transaction(cdp_engine) as session:
        session.add(Profile(customer_id="C-1", created_at=placed, updated_at=placed))
    with Session(cdp_engine) as session:
        stored = session.scalars(select(Profile.created_at)).one()
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == placed


def test_naive_datetimes_are_refused(cdp_engine: Engine) -> None:
    naive = datetime(2026, 10, 2, 18, 30)
    with pytest.raises(StatementError, match="naive datetime"), transaction(cdp_engine) as s:
        s.add(Profile(customer_id="C-1", created_at=naive, updated_at=naive))


def test_money_round_trips_as_two_place_decimal(cdp_engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with transaction(cdp_engine) as session:
        session.add(Profile(customer_id="C-1", created_at=now, updated_at=now))
        session.flush()
        session.add(
            Order(
                order_id="O-1",
                customer_id="C-1",
                placed_at=now,
                status=OrderStatus.PAID,
                channel="web",
                currency="USD",
                total=Decimal("12345678.9"),
                created_at=now,
            )
        )
    with Session(cdp_engine) as session:
        total = session.scalars(select(Order.total)).one()
    assert isinstance(total, Decimal)
    assert str(total) == "12345678.90"


def test_money_refuses_floats(cdp_engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with (
        pytest.raises(StatementError, match="money must be Decimal"),
        transaction(cdp_engine) as session,
    ):
        session.add(Profile(customer_id="C-1", created_at=now, updated_at=now))
        session.flush()
        session.add(
            Order(
                order_id="O-1",
                customer_id="C-1",
                placed_at=now,
                status=OrderStatus.PAID,
                channel="web",
                currency="USD",
                total=1.5,
                created_at=now,
            )
        )


# Pooled PostgreSQL connections: pinged only after sitting idle; a dropped one is replaced -----


# conftest's `cdp_url` and `cdp_engine`, on PostgreSQL only.
on_postgresql = pytest.mark.parametrize(
    "cdp_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def admin(cdp_url: str) -> Iterator[Engine]:
    """Another pool on the same database, to end `cdp_engine`'s connections from."""
    engine = make_engine(cdp_url)
    yield engine
    engine.dispose()


def backend_pid(session: Session) -> int:
    return session.scalar(text("SELECT pg_backend_pid()"))


def drop_connection(admin: Engine, pid: int) -> None:
    """What a database restart does to a pooled connection: the server ends its backend."""
    with admin.connect() as connection:
        ended = connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid}, 5000)").scalar()
    assert ended


def profile_count(engine: Engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Profile))


def add_profile(session: Session, customer_id: str) -> None:
    session.add(Profile(customer_id=customer_id))
    session.flush()


@on_postgresql
def test_work_runs_again_on_a_new_connection_when_the_pooled_one_was_dropped(
    cdp_engine: Engine, admin: Engine
) -> None:
    first_pid = run_in_transaction(cdp_engine, backend_pid)
    drop_connection(admin, first_pid)
    pids: list[int] = []

    def work(session: Session) -> None:
        pids.append(backend_pid(session))  # the first try fails here, before any pid is seen
        add_profile(session, "C-1")

    run_in_transaction(cdp_engine, work)
    assert len(pids) == 1 and pids[0] != first_pid
    assert profile_count(cdp_engine) == 1


@on_postgresql
def test_a_connection_dropped_midway_leaves_nothing_of_the_first_try(
    cdp_engine: Engine, admin: Engine
) -> None:
    tries: list[int] = []

    def work(session: Session) -> None:
        tries.append(len(tries) + 1)
        add_profile(session, "C-1")
        if len(tries) == 1:
            drop_connection(admin, backend_pid(session))
        add_profile(session, "C-2")  # the first try fails here, after C-1 was inserted

    run_in_transaction(cdp_engine, work)
    # Had the first try's C-1 been kept, the second would have failed on its primary key.
    assert tries == [1, 2]
    assert profile_count(cdp_engine) == 2


@on_postgresql
def test_a_connection_dropped_while_committing_is_not_retried(
    cdp_engine: Engine, admin: Engine
) -> None:
    tries: list[int] = []

    def work(session: Session) -> None:
        tries.append(1)
        add_profile(session, "C-1")
        pid = backend_pid(session)
        event.listen(
            session.connection(), "commit", lambda _connection: drop_connection(admin, pid)
        )

    with pytest.raises(OperationalError):
        run_in_transaction(cdp_engine, work)
    assert tries == [1]  # whether the commit took effect is unknown: never done twice
    assert profile_count(cdp_engine) == 0


@on_postgresql
def test_only_connections_idle_for_a_while_are_pinged_and_a_dropped_one_replaced(
    cdp_engine: Engine, admin: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[int] = []
    ping = cdp_engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(len(pings) + 1)
        return ping(dbapi_connection)

    monkeypatch.setattr(cdp_engine.dialect, "do_ping", counted_ping)
    pids = {run_in_transaction(cdp_engine, backend_pid) for _ in range(3)}
    assert len(pids) == 1 and pings == []  # one connection, reused at once: no ping

    monkeypatch.setattr(cdp_db, "POSTGRES_PING_AFTER_IDLE_S", 0.0)
    (pid,) = pids
    drop_connection(admin, pid)
    # No retry here: the ping at checkout found the connection dead and the pool replaced it.
    with transaction(cdp_engine) as session:
        assert backend_pid(session) != pid
    assert pings == [1]
