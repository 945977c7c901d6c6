"""Order lookups by typed id, cancelling and changing orders, idempotent placement, the
after-sales events and the postal-code rules, on SQLite and PostgreSQL."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cdp.addresses import make_address
from cdp.attributes.errors import DefinitionError
from cdp.catalogue.service import place_order_for_product
from cdp.changes import Change
from cdp.cli import SEED_FILE
from cdp.computed.service import computed_values
from cdp.db import transaction
from cdp.errors import InvalidValue, OrderNotFound
from cdp.events.models import Event
from cdp.importer import import_file
from cdp.orders.errors import OrderTooLate
from cdp.orders.models import Order, OrderStatus
from cdp.orders.service import (
    cancel_order,
    change_delivery_address,
    find_customer_order,
    latest_open_order,
    normalise_order_ref,
    reorder,
)
from cdp.orders.support import (
    RefundStage,
    recent_failed_payments,
    record_complaint,
    refund_state,
    request_invoice_copy,
    request_refund,
    shipment_of,
)
from cdp.postal_codes import clean_postal_code, delivery_country, postal_rules

NOV_26 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
SEATTLE = make_address(line1="1 Pine St", city="Seattle", postal_code="98101", country="US")


@pytest.fixture
def demo(cdp_engine: Engine) -> Session:
    """The demo customers, in a session rolled back at the end of the test."""
    with Session(cdp_engine, expire_on_commit=False) as session:
        import_file(session, SEED_FILE)
        yield session


def orders_of(session: Session, customer_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
    )


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("O-5001", "O-5001"),
        ("o5001", "O-5001"),
        ("#5001", "O-5001"),
        ("5001", "O-5001"),
        (" o-k3zq7m2a ", "O-K3ZQ7M2A"),
        ("O - 5001", "O-5001"),
        ("my order", None),
        ("", None),
        (None, None),
        ("5001; drop table", None),
    ],
)
def test_typed_order_ids_are_normalised(typed: object, stored: str | None) -> None:
    assert normalise_order_ref(typed) == stored


def test_an_unknown_and_a_foreign_order_id_look_the_same(demo: Session) -> None:
    assert find_customer_order(demo, "C-1002", "#5011").order_id == "O-5011"
    assert find_customer_order(demo, "C-1001", "O-5011") is None  # Ben's order
    assert find_customer_order(demo, "C-1001", "O-9999") is None  # nobody's
    assert find_customer_order(demo, "C-1001", "not an id") is None


def test_latest_open_order_skips_delivered_and_cancelled(demo: Session) -> None:
    assert latest_open_order(demo, "C-1002").order_id == "O-5011"  # placed
    assert latest_open_order(demo, "C-1005").order_id == "O-5009"  # shipped
    assert latest_open_order(demo, "C-1001") is None  # all delivered
    assert latest_open_order(demo, "C-1003") is None  # delivered and cancelled


def test_cancel_an_unshipped_order_once(demo: Session) -> None:
    assert cancel_order(demo, "C-1002", "O-5011") is Change.UPDATED
    assert demo.get(Order, "O-5011").status is OrderStatus.CANCELLED
    assert cancel_order(demo, "C-1002", "O-5011") is Change.UNCHANGED
    values = computed_values(demo, "C-1002", now=NOV_26).values
    assert values["cancelled_orders"] == 1


def test_too_late_to_cancel_or_change_a_shipped_order(demo: Session) -> None:
    with pytest.raises(OrderTooLate, match="O-5009 is shipped: too late to cancel"):
        cancel_order(demo, "C-1005", "O-5009")
    with pytest.raises(OrderTooLate, match="too late to change"):
        change_delivery_address(demo, "C-1005", "O-5009", SEATTLE)
    with pytest.raises(OrderNotFound):
        cancel_order(demo, "C-1001", "O-5011")  # someone else's
    assert demo.get(Order, "O-5011").status is OrderStatus.PLACED


def test_change_the_address_of_an_unshipped_order(demo: Session) -> None:
    assert change_delivery_address(demo, "C-1002", "O-5011", SEATTLE) is Change.UPDATED
    assert demo.get(Order, "O-5011").delivery_address == SEATTLE
    assert change_delivery_address(demo, "C-1002", "O-5011", SEATTLE) is Change.UNCHANGED
    city = computed_values(demo, "C-1002", now=NOV_26).values["most_frequent_delivery_city"]
    assert city in ("Seattle", None)  # placed orders count; the new city is the only one


def test_a_redelivered_request_places_one_order(demo: Session) -> None:
    before = orders_of(demo, "C-1001")
    first = place_order_for_product(demo, "C-1001", "house blend", 2, "web", request_key="k-1")
    again = place_order_for_product(demo, "C-1001", "house blend", 2, "web", request_key="k-1")
    assert again.order_id == first.order_id
    other = place_order_for_product(demo, "C-1001", "house blend", 2, "web", request_key="k-2")
    assert other.order_id != first.order_id
    assert orders_of(demo, "C-1001") == before + 2

    repeat = reorder(demo, "C-1001", "O-5007", "web", request_key="k-3")
    assert reorder(demo, "C-1001", "O-5007", "web", request_key="k-3").order_id == repeat.order_id
    assert orders_of(demo, "C-1001") == before + 3


def test_a_request_key_survives_a_second_transaction(cdp_engine: Engine) -> None:
    with transaction(cdp_engine) as session:
        import_file(session, SEED_FILE)
    placed = []
    for _ in range(2):
        with transaction(cdp_engine) as session:
            placed.append(
                place_order_for_product(session, "C-1002", "earl grey", 1, "sms", request_key="r")
            )
    assert placed[0].order_id == placed[1].order_id
    with transaction(cdp_engine) as session:
        assert orders_of(session, "C-1002") == 3


def test_shipment_and_refund_news_come_from_events(demo: Session) -> None:
    shipment = shipment_of(demo, "C-1005", "O-5009")
    assert (shipment["carrier"], shipment["tracking_number"]) == ("UPS", "1Z999AA10123456784")
    assert shipment_of(demo, "C-1005", "O-5005") is None
    issued = refund_state(demo, "C-1006", "O-5008")
    assert (issued.stage, issued.amount, issued.currency) == (RefundStage.ISSUED, "59.00", "EUR")
    assert refund_state(demo, "C-1001", "O-5007").stage is RefundStage.NONE


def test_requests_are_recorded_once(demo: Session) -> None:
    ana_last = demo.get(Order, "O-5007")
    assert request_refund(demo, ana_last, "web") is True
    assert request_refund(demo, ana_last, "sms") is False  # one request per order
    assert refund_state(demo, "C-1001", "O-5007").stage is RefundStage.REQUESTED
    assert request_invoice_copy(demo, ana_last, "m-1", "web") is True
    assert request_invoice_copy(demo, ana_last, "m-1", "web") is False
    assert record_complaint(demo, "C-1001", "m-2", "O-5007", "web") is True
    assert record_complaint(demo, "C-1001", "m-2", "O-5007", "web") is False
    types = demo.scalars(select(Event.type).where(Event.customer_id == "C-1001")).all()
    assert sorted(types) == ["complaint_received", "invoice_copy_requested", "refund_requested"]


def test_failed_payments_of_the_last_30_days(demo: Session) -> None:
    failed = recent_failed_payments(demo, "C-1002", now=NOV_26)
    assert [event.properties["order_id"] for event in failed] == ["O-5011"]
    later = datetime(2027, 1, 10, tzinfo=timezone.utc)
    assert recent_failed_payments(demo, "C-1002", now=later) == []


@pytest.mark.parametrize(
    ("typed", "code"), [("fr", "FR"), ("France", "FR"), ("u.s.a.", "US"), ("Österreich", "AT")]
)
def test_delivery_countries_by_code_or_name(typed: str, code: str) -> None:
    assert delivery_country(typed) == code


def test_an_unknown_country_lists_where_we_deliver() -> None:
    with pytest.raises(InvalidValue, match="'Narnia' is not a country we deliver to") as error:
        delivery_country("Narnia")
    assert error.value.field == "country"


@pytest.mark.parametrize(
    ("country", "typed", "stored"),
    [("US", "62701", "62701"), ("GB", "sw1a  1aa", "SW1A 1AA"), ("FR", " 69002 ", "69002")],
)
def test_postal_codes_in_the_country_format(country: str, typed: str, stored: str) -> None:
    assert clean_postal_code(country, typed) == stored


@pytest.mark.parametrize(("country", "typed"), [("US", "6270"), ("FR", "ABCDE"), ("GB", "12345")])
def test_postal_codes_out_of_format_say_what_is_expected(country: str, typed: str) -> None:
    with pytest.raises(InvalidValue, match="for example") as error:
        clean_postal_code(country, typed)
    assert error.value.field == "postal_code"


def test_broken_postal_rules_name_the_entry(tmp_path: Path) -> None:
    broken = tmp_path / "postal_codes.yml"
    broken.write_text("countries:\n  FR: {names: [france], pattern: '\\d{4}', example: '69002'}\n")
    with pytest.raises(DefinitionError, match=r"countries\.FR\.example"):
        postal_rules(broken)
    broken.write_text("countries:\n  ZZ: {names: [nowhere], pattern: '1', example: '1'}\n")
    with pytest.raises(DefinitionError, match=r"countries\.ZZ: not an ISO"):
        postal_rules(broken)
