"""The demo file holds the customers the assistant's demos and stories rely on."""

from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp.cli import SEED_FILE
from cdp.db import transaction
from cdp.events.models import Event
from cdp.identities.models import IdentityType
from cdp.identities.service import find_profile_by_identity
from cdp.importer import import_file
from cdp.orders.models import Order, OrderStatus
from cdp.orders.service import count_orders, last_order
from cdp.profiles.models import Profile


def test_demo_customers_cover_the_demo_scenarios(cdp_engine: Engine) -> None:
    with transaction(cdp_engine) as session:
        summary = import_file(session, SEED_FILE)
    assert summary.by_kind["profile"].created == 6

    with Session(cdp_engine) as session:
        ana = find_profile_by_identity(session, IdentityType.PHONE, "+15551230001")
        assert ana is not None
        assert (ana.customer_id, ana.first_name, ana.last_name) == ("C-1001", "Ana", "Diaz")
        ana_orders = session.scalars(select(Order).where(Order.customer_id == "C-1001")).all()
        assert len(ana_orders) >= 3
        assert all(order.status is OrderStatus.DELIVERED for order in ana_orders)
        latest = last_order(session, "C-1001")
        assert latest is not None and 2 <= len(latest.lines) <= 3
        assert all(line.quantity > 1 for line in latest.lines)

        profiles = session.scalars(select(Profile)).all()
        assert any(count_orders(session, p.customer_id) == 0 for p in profiles)
        assert any(p.address_country not in (None, "US") for p in profiles)
        event_types = set(session.scalars(select(Event.type)))
        assert {"payment_failed", "password_reset"} <= event_types
        assert find_profile_by_identity(session, "messenger_psid", "24117654321098765")
        currencies = set(session.scalars(select(Order.currency)))
        assert currencies == {"USD", "EUR"}
        order_ids = session.scalars(select(Order.order_id).order_by(Order.order_id)).all()
        assert order_ids[0] == "O-5001"
        totals = session.scalars(select(Order.total)).all()
        assert all(isinstance(total, Decimal) and total > 0 for total in totals)
