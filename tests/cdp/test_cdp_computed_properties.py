"""Property: whatever the sequence of orders, status changes, line edits and events
(redeliveries included), the incrementally kept computed values equal a full recompute."""

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cdp.addresses import make_address
from cdp.computed.definitions import COMPUTED_ATTRIBUTES_ENV
from cdp.computed.service import computed_values, recompute_profile
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.orders.models import OrderIn, OrderLineIn, OrderStatus
from cdp.orders.service import get_order, record_order, set_order_status
from cdp.profiles.models import ProfileAttributes
from cdp.profiles.service import upsert_profile

# Every aggregate kind, filters on fields and event properties, windows and a weight.
DEFINITIONS = """
version: 1
attributes:
  orders_kept: {aggregate: count, of: orders}
  all_orders:
    aggregate: count
    of: orders
    where: {status: [placed, paid, shipped, delivered, cancelled, returned]}
  spend: {aggregate: sum, of: orders, field: total}
  average_spend: {aggregate: average, of: orders, field: total}
  first_order: {aggregate: min, of: orders, field: placed_at}
  last_order: {aggregate: max, of: orders, field: placed_at}
  cheapest_line: {aggregate: min, of: order_lines, field: unit_price}
  first_sku: {aggregate: first, of: order_lines, field: sku}
  last_city: {aggregate: last, of: orders, field: delivery_city}
  favourite: {aggregate: most_frequent, of: order_lines, field: name, weight: quantity}
  usual_city: {aggregate: most_frequent, of: orders, field: delivery_city}
  skus: {aggregate: unique_list, of: order_lines, field: sku}
  recent_orders: {aggregate: count, of: orders, window_days: 30}
  recent_spend: {aggregate: sum, of: orders, field: total, window_days: 90}
  recent_average: {aggregate: average, of: order_lines, field: line_total, window_days: 60}
  failures: {aggregate: count, of: events, where: {type: payment_failed}}
  failures_30d: {aggregate: count, of: events, where: {type: payment_failed}, window_days: 30}
  big_amounts:
    {aggregate: sum, of: events, field: properties.amount, where: {properties.currency: USD}}
  last_event: {aggregate: last, of: events, field: type}
  first_event: {aggregate: first, of: events, field: type}
  event_types: {aggregate: unique_list, of: events, field: type}
  busiest_channel: {aggregate: most_frequent, of: events, field: channel}
  max_amount: {aggregate: max, of: events, field: properties.amount}
  score:
    score:
      - {per: "orders_kept", points: 2}
      - {when: "failures_30d > 0", points: -5}
  days_quiet: {formula: "days_since(last_order)"}
"""

STATUSES = list(OrderStatus)
PRODUCTS = [("SKU-A", "Beans"), ("SKU-B", "Mug"), ("SKU-C", "Tea")]
CITIES = ["Lyon", "Austin", None]
NOW = datetime.now(timezone.utc)

line = st.tuples(
    st.sampled_from(PRODUCTS), st.integers(1, 3), st.sampled_from(["1.50", "2.00", "9.99"])
)
order_op = st.tuples(
    st.just("order"),
    st.integers(0, 3),  # order number: reusing one edits that order
    st.sampled_from(STATUSES),
    st.lists(line, min_size=1, max_size=3),
    st.integers(0, 120),  # days ago
    st.sampled_from(CITIES),
)
status_op = st.tuples(st.just("status"), st.integers(0, 3), st.sampled_from(STATUSES))
event_op = st.tuples(
    st.just("event"),
    st.integers(0, 5),  # event number: reusing one is a redelivery
    st.sampled_from(["payment_failed", "login", "order_shipped"]),
    st.integers(0, 60),
    st.sampled_from(["web", "messenger"]),
    st.sampled_from([{}, {"amount": 5, "currency": "USD"}, {"amount": 7.5, "currency": "EUR"}]),
)
operations = st.lists(st.one_of(order_op, status_op, event_op), min_size=1, max_size=14)
_customers = itertools.count(1)


@pytest.fixture
def definitions_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "computed.yml"
    path.write_text(DEFINITIONS, encoding="utf-8")
    monkeypatch.setenv(COMPUTED_ATTRIBUTES_ENV, str(path))
    yield path


def _run(session: Session, customer_id: str, ops: list[tuple[Any, ...]]) -> None:
    for op in ops:
        if op[0] == "order":
            _, number, status, lines, days_ago, city = op
            address = (
                make_address(line1="1 Main St", city=city, postal_code="1000", country="US")
                if city
                else None
            )
            record_order(
                session,
                OrderIn(
                    order_id=f"{customer_id}-O{number}",
                    customer_id=customer_id,
                    placed_at=NOW - timedelta(days=days_ago, minutes=number),
                    status=status,
                    channel="web",
                    currency="USD",
                    lines=tuple(
                        OrderLineIn(sku=sku, name=name, quantity=qty, unit_price=Decimal(price))
                        for (sku, name), qty, price in lines
                    ),
                    delivery_address=address,
                ),
            )
        elif op[0] == "status":
            _, number, status = op
            if get_order(session, customer_id, f"{customer_id}-O{number}") is not None:
                set_order_status(session, customer_id, f"{customer_id}-O{number}", status)
        else:
            _, number, kind, days_ago, channel, properties = op
            record_event(
                session,
                EventIn(
                    event_id=f"{customer_id}-E{number}",
                    customer_id=customer_id,
                    type=kind,
                    occurred_at=NOW - timedelta(days=days_ago, seconds=number),
                    channel=channel,
                    properties=properties,
                ),
            )


@pytest.mark.usefixtures("definitions_file")
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_incremental_values_equal_a_full_recompute(
    cdp_engine: Engine, ops: list[tuple[Any, ...]]
) -> None:
    customer_id = f"C-P{next(_customers)}"
    with Session(cdp_engine, expire_on_commit=False) as session:
        upsert_profile(session, customer_id, ProfileAttributes(first_name="Prop"))
        _run(session, customer_id, ops)
        session.commit()
        incremental = computed_values(session, customer_id)
        recompute_profile(session, customer_id)
        session.commit()
        assert computed_values(session, customer_id) == incremental
        assert incremental.stale == frozenset()
