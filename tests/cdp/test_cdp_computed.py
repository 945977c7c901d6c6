"""Computed attributes on the demo data: read-your-writes, status changes, time at read."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from cdp.cli import SEED_FILE
from cdp.computed.definitions import COMPUTED_ATTRIBUTES_ENV, DEFAULT_COMPUTED_ATTRIBUTES
from cdp.computed.models import ComputedState
from cdp.computed.service import computed_values, recompute_profile
from cdp.db import transaction
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.importer import import_file
from cdp.orders.models import OrderStatus
from cdp.orders.service import reorder, set_order_status
from cdp.profiles.context import context_document, profile_context

NOV_26 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def demo(cdp_engine: Engine) -> Iterator[Session]:
    """A session on the demo customers (imported and committed)."""
    with transaction(cdp_engine) as session:
        import_file(session, SEED_FILE)
    with Session(cdp_engine, expire_on_commit=False) as session:
        yield session


def test_built_ins_on_the_demo_customers(demo: Session) -> None:
    ana = computed_values(demo, "C-1001", now=NOV_26).values
    assert ana["order_count"] == 3
    assert ana["lifetime_value"] == Decimal("163.85")
    assert ana["last_order_at"] == datetime(2026, 10, 2, 18, 30, tzinfo=timezone.utc)
    # House Blend: 1 + 2 bags; mugs 2; almonds 3 -> tie at 3, alphabetical first wins.
    assert ana["favorite_product"] == "Northwind House Blend coffee, 1 kg"
    assert ana["days_to_contract_end"] == 19
    assert ana["contract_renewal_due"] is True
    # premium 30 + store card 10 + 3 orders x 5 + an order in the last 90 days 20
    assert ana["lead_score"] == 75

    ben = computed_values(demo, "C-1002", now=NOV_26)
    assert ben.values["last_event"] == "payment_failed"
    assert ben.times["last_event"] == datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    assert ben.values["failed_payments_last_30_days"] == 1
    marcus = computed_values(demo, "C-1005", now=NOV_26).values
    assert marcus["most_frequent_delivery_city"] == "Portland"
    chloe = computed_values(demo, "C-1003", now=NOV_26).values
    assert (chloe["order_count"], chloe["cancelled_orders"]) == (2, 1)
    assert computed_values(demo, "C-1004", now=NOV_26).values["order_count"] == 0


def test_time_dependent_values_move_with_the_clock_without_any_write(demo: Session) -> None:
    later = NOV_26 + timedelta(days=40)
    ben_now = computed_values(demo, "C-1002", now=NOV_26).values
    ben_later = computed_values(demo, "C-1002", now=later).values
    assert ben_now["failed_payments_last_30_days"] == 1
    assert ben_later["failed_payments_last_30_days"] == 0
    assert ben_now["orders_last_90_days"] == 1
    ana_later = computed_values(demo, "C-1001", now=later).values
    assert ana_later["days_to_contract_end"] == -21
    assert ana_later["contract_renewal_due"] is False
    assert ana_later["orders_last_90_days"] == 0


def test_a_new_order_is_read_back_in_the_same_transaction(demo: Session) -> None:
    for _ in range(2):
        reorder(demo, "C-1001", "O-5004", "messenger")  # 1 House Blend + 2 mugs each
    ana = computed_values(demo, "C-1001").values
    assert ana["order_count"] == 5
    assert ana["favorite_product"] == "Stoneware mug, 12 oz"  # 2 + 2 + 2 mugs
    assert ana["lifetime_value"] == Decimal("163.85") + 2 * Decimal("56.00")


def test_cancelling_an_order_takes_it_out_and_rebuilds_extremes(demo: Session) -> None:
    set_order_status(demo, "C-1001", "O-5007", OrderStatus.CANCELLED)
    ana = computed_values(demo, "C-1001", now=NOV_26).values
    assert ana["order_count"] == 2
    assert ana["cancelled_orders"] == 1
    assert ana["lifetime_value"] == Decimal("70.50")
    assert ana["last_order_at"] == datetime(2026, 7, 19, 10, 5, tzinfo=timezone.utc)
    assert ana["favorite_product"] == "Stoneware mug, 12 oz"
    set_order_status(demo, "C-1001", "O-5007", OrderStatus.DELIVERED)
    assert computed_values(demo, "C-1001", now=NOV_26).values["lifetime_value"] == Decimal("163.85")


def test_events_count_once_per_event_id(demo: Session) -> None:
    payment_failed = EventIn(
        event_id="E-9", customer_id="C-1002", type="payment_failed", occurred_at=NOV_26
    )
    assert record_event(demo, payment_failed) is True
    assert record_event(demo, payment_failed) is False
    assert computed_values(demo, "C-1002", now=NOV_26).values["failed_payments_last_30_days"] == 2


def test_recompute_gives_the_incremental_values(demo: Session) -> None:
    reorder(demo, "C-1003", "O-5006", "web")
    set_order_status(demo, "C-1003", "O-5003", OrderStatus.RETURNED)
    before = computed_values(demo, "C-1003", now=NOV_26)
    recompute_profile(demo, "C-1003")
    assert computed_values(demo, "C-1003", now=NOV_26) == before


def test_state_from_an_older_definition_is_flagged_then_rebuilt(
    demo: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = tmp_path / "computed.yml"
    changed.write_text(
        DEFAULT_COMPUTED_ATTRIBUTES.read_text(encoding="utf-8").replace(
            "    where: {status: cancelled}", "    where: {status: [cancelled, returned]}"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(COMPUTED_ATTRIBUTES_ENV, str(changed))
    sofia = computed_values(demo, "C-1006", now=NOV_26)
    assert "cancelled_orders" in sofia.stale
    recompute_profile(demo, "C-1006")
    sofia = computed_values(demo, "C-1006", now=NOV_26)
    assert sofia.stale == frozenset()
    assert sofia.values["cancelled_orders"] == 1  # O-5008 was returned
    # A write also rebuilds stale state: make Chloé's look old, then record an order.
    demo.execute(
        update(ComputedState)
        .where(ComputedState.customer_id == "C-1003", ComputedState.name == "cancelled_orders")
        .values(spec_hash="0" * 16, count=99)
    )
    reorder(demo, "C-1003", "O-5006", "web")
    assert computed_values(demo, "C-1003").values["cancelled_orders"] == 1
    stored = demo.scalar(
        select(ComputedState.spec_hash).where(
            ComputedState.customer_id == "C-1003", ComputedState.name == "cancelled_orders"
        )
    )
    assert stored != "0" * 16


def test_profile_context_reads_everything_in_a_few_queries(
    demo: Session, cdp_engine: Engine
) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(cdp_engine, "before_cursor_execute", count)
    try:
        context = profile_context(demo, "phone:+15551230001", now=NOV_26)
    finally:
        event.remove(cdp_engine, "before_cursor_execute", count)
    assert context is not None
    assert len(statements) <= 6, statements
    assert context.customer_id == "C-1001"
    assert context.standard["first_name"].value == "Ana"
    provenance = context.standard["first_name"].provenance
    assert provenance is not None and provenance.verified
    assert context.custom["membership_tier"].value == "premium"
    assert context.computed["favorite_product"] == "Northwind House Blend coffee, 1 kg"
    assert {identity.type for identity in context.identities} >= {"phone", "web_customer_id"}
    document = context_document(context)
    assert document["computed"]["last_event"] is None  # Ana has no events
    ben = profile_context(demo, "C-1002", now=NOV_26)
    assert ben is not None
    assert context_document(ben)["computed"]["last_event"] == {
        "value": "payment_failed",
        "at": "2026-11-20T09:00:00Z",
    }
    assert document["computed"]["lifetime_value"] == 163.85
    assert document["custom_attributes"]["contract_end_date"]["value"] == "2026-12-15"
    assert document["custom_attributes"]["contract_end_date"]["source"] == "import"
    assert profile_context(demo, "C-404") is None


def test_a_reorder_locks_the_profile_once_and_updates_aggregates_once(
    demo: Session, cdp_engine: Engine
) -> None:
    """The request event and the order share one lock and one aggregate update; the next
    transaction takes the lock again."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    before = computed_values(demo, "C-1001", now=NOV_26).values["order_count"]
    demo.rollback()
    event.listen(cdp_engine, "before_cursor_execute", count)
    try:
        for key in ("first", "second"):
            with transaction(cdp_engine) as session:
                reorder(session, "C-1001", "O-5001", "web", request_key=key)
    finally:
        event.remove(cdp_engine, "before_cursor_execute", count)
    assert len([text for text in statements if "UNION ALL" in text]) == 2, statements
    if cdp_engine.dialect.name == "postgresql":
        assert len([text for text in statements if "FOR NO KEY UPDATE" in text]) == 2
    with transaction(cdp_engine) as session:
        after = computed_values(session, "C-1001", now=NOV_26)
        assert after.values["order_count"] == before + 2
        assert after.values["last_event"] == "order_requested"
        recompute_profile(session, "C-1001", now=NOV_26)
        assert computed_values(session, "C-1001", now=NOV_26).values == after.values


def test_concurrent_writers_lose_no_update(demo: Session, cdp_engine: Engine) -> None:
    def deliver(worker: int) -> None:
        for number in range(5):
            with transaction(cdp_engine) as session:
                record_event(
                    session,
                    EventIn(
                        event_id=f"E-{worker}-{number}",
                        customer_id="C-1004",
                        type="payment_failed",
                        occurred_at=NOV_26,
                    ),
                )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(deliver, range(4)))
    values = computed_values(demo, "C-1004", now=NOV_26).values
    assert values["failed_payments_last_30_days"] == 20


def test_an_aggregate_added_later_is_stale_until_rebuilt_by_a_write(
    demo: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = tmp_path / "computed.yml"
    added.write_text(
        DEFAULT_COMPUTED_ATTRIBUTES.read_text(encoding="utf-8")
        + "  mugs_bought:\n"
        + "    {aggregate: sum, of: order_lines, field: quantity, where: {sku: NWC-HOM-MUG-12}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(COMPUTED_ATTRIBUTES_ENV, str(added))
    ana = computed_values(demo, "C-1001", now=NOV_26)
    assert ana.stale == {"mugs_bought"}
    reorder(demo, "C-1001", "O-5004", "web")
    ana = computed_values(demo, "C-1001")
    assert (ana.values["mugs_bought"], ana.stale) == (4, frozenset())
    assert computed_values(demo, "C-1004").stale == frozenset()  # no orders: nothing missed
