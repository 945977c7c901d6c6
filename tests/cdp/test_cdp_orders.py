"""The last order, reading one order, repeating an order and recording imported orders."""

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import cdp.orders.service as orders_service
from cdp.addresses import make_address
from cdp.changes import Change
from cdp.clock import parse_timestamp
from cdp.errors import OrderConflict, OrderNotFound, OrderNotReorderable, ProfileNotFound
from cdp.orders.models import Order, OrderIn, OrderLine, OrderLineIn, OrderStatus
from cdp.orders.service import (
    get_order,
    last_order,
    profile_with_last_order_lines,
    record_order,
    reorder,
)
from cdp.profiles.models import Profile

LYON = make_address(line1="8 Rue de la République", city="Lyon", postal_code="69002", country="FR")
AUSTIN = make_address(
    line1="480 Congress Ave",
    line2="Apt 5B",
    city="Austin",
    region="TX",
    postal_code="78701",
    country="US",
)
THREE_LINES = [
    ("NWC-COF-HSE-1KG", "House Blend, 1 kg", 2, "32.00"),
    ("NWC-SNK-ALM-200", "Smoked almonds", 3, "5.25"),
    ("NWC-SNK-CKY-6PK", "Cookies", 2, "6.80"),
]


@pytest.fixture
def two_customers(make_profile: Callable[..., None]) -> None:
    make_profile("C-1", address=AUSTIN)
    make_profile("C-2")


@pytest.mark.usefixtures("two_customers")
def test_last_order_is_most_recent_by_placed_at(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-3", "2026-10-02T18:30:00Z")
    make_order("C-1", "O-1", "2026-11-01T09:00:00+01:00")
    make_order("C-1", "O-2", "2026-07-01T09:00:00Z")
    make_order("C-2", "O-9", "2026-12-01T09:00:00Z")
    order = last_order(session, "C-1")
    assert order is not None and order.order_id == "O-1"


@pytest.mark.usefixtures("two_customers")
def test_last_order_breaks_ties_by_created_at(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-B", "2026-10-02T18:30:00Z")
    make_order("C-1", "O-A", "2026-10-02T18:30:00Z")
    first = session.get_one(Order, "O-B")
    first.created_at = first.created_at - timedelta(minutes=1)
    session.flush()
    order = last_order(session, "C-1")
    assert order is not None and order.order_id == "O-A"


@pytest.mark.usefixtures("two_customers")
def test_last_order_skips_cancelled_orders(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-1", "2026-10-02T18:30:00Z", status=OrderStatus.RETURNED)
    make_order("C-1", "O-2", "2026-11-02T18:30:00Z", status=OrderStatus.CANCELLED)
    order = last_order(session, "C-1")
    assert order is not None and order.order_id == "O-1"
    make_order("C-2", "O-3", "2026-11-02T18:30:00Z", status=OrderStatus.CANCELLED)
    assert last_order(session, "C-2") is None


@pytest.mark.usefixtures("two_customers")
def test_profile_with_last_order_lines_is_the_profile_beside_each_line_of_last_order(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-1", "2026-10-02T18:30:00Z", lines=THREE_LINES, delivery_address=LYON)
    make_order("C-1", "O-2", "2026-11-02T18:30:00Z", status=OrderStatus.CANCELLED)
    make_order("C-2", "O-3", "2026-11-02T18:30:00Z", status=OrderStatus.CANCELLED)
    session.flush()  # the read goes to the connection: it does not flush the session first

    rows = profile_with_last_order_lines(session, "C-1")
    last = last_order(session, "C-1")
    assert last is not None
    assert [(r.order_id, r.name, r.quantity, r.unit_price) for r in rows] == [
        (last.order_id, line.name, line.quantity, line.unit_price) for line in last.lines
    ]
    assert {(r.customer_id, r.placed_at, r.currency, r.total) for r in rows} == {
        ("C-1", last.placed_at, last.currency, last.total)
    }
    # The profile's default address and the order's own delivery address, side by side.
    assert {r.address_line1 for r in rows} == {AUSTIN.line1}
    assert {(r.delivery_line1, r.delivery_city) for r in rows} == {(LYON.line1, LYON.city)}

    nothing_to_repeat = profile_with_last_order_lines(session, "C-2")
    assert [(r.customer_id, r.order_id, r.name) for r in nothing_to_repeat] == [("C-2", None, None)]
    assert profile_with_last_order_lines(session, "C-404") == []


@pytest.mark.usefixtures("two_customers")
def test_get_order_hides_other_customers_orders(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-1", "2026-10-02T18:30:00Z")
    order = get_order(session, "C-1", "O-1")
    assert order is not None and order.customer_id == "C-1"
    assert get_order(session, "C-2", "O-1") is None
    assert get_order(session, "C-1", "O-404") is None


@pytest.mark.usefixtures("two_customers")
def test_reorder_copies_lines_into_a_new_placed_order(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-5007", "2026-10-02T18:30:00Z", lines=THREE_LINES, delivery_address=LYON)
    source = session.get_one(Order, "O-5007")
    source.lines[0].options = {"grind": "espresso"}
    session.flush()
    before = datetime.now(timezone.utc)

    order = reorder(session, "C-1", "O-5007", channel="rest")

    assert re.fullmatch(r"O-[A-Z2-7]{8}", order.order_id)
    assert order.order_id != "O-5007"
    assert order.reorder_of == "O-5007"
    assert order.status is OrderStatus.PLACED
    assert order.channel == "rest"
    assert order.currency == "USD"
    assert order.placed_at >= before
    assert order.total == Decimal("93.35") == source.total
    assert order.delivery_address == AUSTIN, "ships to the profile's current default address"
    session.commit()
    session.expire_all()
    stored = session.get_one(Order, order.order_id)
    copied = [
        (line.line_no, line.sku, line.name, line.quantity, line.unit_price, line.options)
        for line in stored.lines
    ]
    original = [
        (line.line_no, line.sku, line.name, line.quantity, line.unit_price, line.options)
        for line in session.get_one(Order, "O-5007").lines
    ]
    assert copied == original
    assert copied[0][5] == {"grind": "espresso"}
    assert len(session.scalars(select(OrderLine)).all()) == 6


@pytest.mark.usefixtures("two_customers")
def test_reorder_falls_back_to_source_address(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-2", "O-1", "2026-10-02T18:30:00Z", delivery_address=LYON, currency="EUR")
    order = reorder(session, "C-2", "O-1", channel="web")
    assert order.delivery_address == LYON
    assert order.currency == "EUR"


@pytest.mark.usefixtures("two_customers")
def test_reorder_refuses_other_customers_unknown_and_cancelled_orders(
    session: Session, make_order: Callable[..., None]
) -> None:
    make_order("C-1", "O-1", "2026-10-02T18:30:00Z")
    make_order("C-1", "O-2", "2026-10-03T18:30:00Z", status=OrderStatus.CANCELLED)
    with pytest.raises(OrderNotFound, match="C-2 has no order 'O-1'"):
        reorder(session, "C-2", "O-1", channel="web")
    with pytest.raises(OrderNotFound):
        reorder(session, "C-1", "O-404", channel="web")
    with pytest.raises(OrderNotReorderable, match="cancelled"):
        reorder(session, "C-1", "O-2", channel="web")
    assert len(session.scalars(select(Order)).all()) == 2


@pytest.mark.usefixtures("two_customers")
def test_reorder_retries_when_a_generated_id_is_taken(
    session: Session, make_order: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_order("C-1", "O-AAAAAAAA", "2026-10-02T18:30:00Z")
    generated = iter(["O-AAAAAAAA", "O-BBBBBBBB"])
    monkeypatch.setattr(orders_service, "new_order_id", lambda: next(generated))
    assert reorder(session, "C-1", "O-AAAAAAAA", channel="web").order_id == "O-BBBBBBBB"


def test_generated_order_ids_are_unique_and_well_formed() -> None:
    ids = {orders_service.new_order_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"O-[A-Z2-7]{8}", order_id) for order_id in ids)


def _incoming(lines: list[OrderLineIn], status: OrderStatus = OrderStatus.PAID) -> OrderIn:
    return OrderIn(
        order_id="O-1",
        customer_id="C-1",
        placed_at=parse_timestamp("2026-10-02T18:30:00Z"),
        status=status,
        channel="web",
        currency="USD",
        lines=tuple(lines),
        delivery_address=AUSTIN,
    )


@pytest.mark.usefixtures("two_customers")
def test_record_order_is_idempotent_and_updates_changes(session: Session) -> None:
    beans = OrderLineIn("SKU-1", "Beans", 2, Decimal("3.50"), {"grind": "filter"})
    mug = OrderLineIn("SKU-2", "Mug", 1, Decimal("12.00"))
    assert record_order(session, _incoming([beans, mug])) is Change.CREATED
    assert session.get_one(Order, "O-1").total == Decimal("19.00")
    assert record_order(session, _incoming([beans, mug])) is Change.UNCHANGED

    shipped = _incoming([beans], status=OrderStatus.SHIPPED)
    assert record_order(session, shipped) is Change.UPDATED
    session.commit()
    session.expire_all()
    order = session.get_one(Order, "O-1")
    assert order.status is OrderStatus.SHIPPED
    assert [line.sku for line in order.lines] == ["SKU-1"]
    assert order.total == Decimal("7.00")


@pytest.mark.usefixtures("two_customers")
def test_record_order_refuses_order_id_of_another_customer(session: Session) -> None:
    record_order(session, _incoming([OrderLineIn("SKU-1", "Beans", 1, Decimal("3.50"))]))
    stolen = OrderIn(
        order_id="O-1",
        customer_id="C-2",
        placed_at=parse_timestamp("2026-10-02T18:30:00Z"),
        status=OrderStatus.PAID,
        channel="web",
        currency="USD",
        lines=(OrderLineIn("SKU-1", "Beans", 1, Decimal("3.50")),),
    )
    with pytest.raises(OrderConflict, match="O-1 already belongs to C-1"):
        record_order(session, stolen)


def test_record_order_needs_an_existing_profile(session: Session) -> None:
    with pytest.raises(ProfileNotFound):
        record_order(session, _incoming([OrderLineIn("SKU-1", "Beans", 1, Decimal("1"))]))
    assert session.scalars(select(Profile)).all() == []
