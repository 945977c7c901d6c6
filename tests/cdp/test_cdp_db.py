"""Migrations, engine settings, transactions and the portable column types."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from cdp.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
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
