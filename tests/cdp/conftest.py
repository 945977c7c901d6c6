"""Fixtures for the CDP tests: sessions, sample data builders, row counts, import files."""

import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cdp.addresses import Address
from cdp.clock import parse_timestamp
from cdp.identities.models import IdentitySource
from cdp.models import Base
from cdp.orders.models import OrderIn, OrderLineIn, OrderStatus
from cdp.orders.service import record_order
from cdp.profiles.models import ProfileAttributes
from cdp.profiles.service import upsert_profile

LineSpec = tuple[str, str, int, str]
DEFAULT_LINES: tuple[LineSpec, ...] = (("SKU-1", "Flat white beans", 2, "3.50"),)


@pytest.fixture
def session(cdp_engine: Engine) -> Iterator[Session]:
    """A session on the migrated test database; uncommitted work is rolled back at the end."""
    with Session(cdp_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def make_profile(session: Session) -> Callable[..., None]:
    """Create a profile with upsert_profile: make_profile("C-1", email="a@example.com")."""

    def make(customer_id: str, **attributes: Any) -> None:
        upsert_profile(session, customer_id, ProfileAttributes(**attributes), IdentitySource.IMPORT)

    return make


@pytest.fixture
def make_order(session: Session) -> Callable[..., None]:
    """Record an order: make_order("C-1", "O-1", "2026-10-02T18:30:00Z", status=...)."""

    def make(
        customer_id: str,
        order_id: str,
        placed_at: str,
        status: OrderStatus = OrderStatus.DELIVERED,
        lines: Sequence[LineSpec] = DEFAULT_LINES,
        currency: str = "USD",
        delivery_address: Address | None = None,
    ) -> None:
        record_order(
            session,
            OrderIn(
                order_id=order_id,
                customer_id=customer_id,
                placed_at=parse_timestamp(placed_at),
                status=status,
                channel="web",
                currency=currency,
                lines=tuple(
                    OrderLineIn(sku=sku, name=name, quantity=quantity, unit_price=Decimal(price))
                    for sku, name, quantity, price in lines
                ),
                delivery_address=delivery_address,
            ),
        )

    return make


@pytest.fixture
def row_counts(cdp_engine: Engine) -> Callable[[], dict[str, int]]:
    """Rows per CDP table, read in a fresh connection (so only committed data counts)."""

    def count() -> dict[str, int]:
        with cdp_engine.connect() as connection:
            return {
                table.name: connection.scalar(select(func.count()).select_from(table)) or 0
                for table in Base.metadata.sorted_tables
            }

    return count


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Write records (dicts become JSON, strings are written as they are) to a .jsonl file."""

    def write(records: Sequence[dict[str, Any] | str], name: str = "records.jsonl") -> Path:
        path = tmp_path / name
        lines = [record if isinstance(record, str) else json.dumps(record) for record in records]
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path

    return write
