"""After-sales facts and requests kept as events: shipments, refunds, invoice copies,
failed payments and complaints of one customer's orders.

Every request is an event whose id is its idempotency key, so a retried action or a
redelivered message records it once (cdp.events.service.record_event).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.clock import utcnow
from cdp.events.models import Event, EventIn
from cdp.events.service import record_event
from cdp.orders.models import Order, OrderStatus

SHIPPED_EVENT = "order_shipped"
REFUND_REQUESTED_EVENT = "refund_requested"
REFUND_ISSUED_EVENT = "refund_issued"
INVOICE_REQUESTED_EVENT = "invoice_copy_requested"
PAYMENT_FAILED_EVENT = "payment_failed"
COMPLAINT_EVENT = "complaint_received"
# Delivered or returned orders can be refunded; earlier ones are cancelled instead.
REFUNDABLE_STATUSES = (OrderStatus.DELIVERED, OrderStatus.RETURNED)
PAYMENT_ISSUE_WINDOW = timedelta(days=30)


def _events(session: Session, customer_id: str, types: tuple[str, ...]) -> list[Event]:
    """The customer's events of these types, newest first (an indexed read per customer)."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.customer_id == customer_id, Event.type.in_(types))
            .order_by(Event.occurred_at.desc(), Event.id.desc())
        )
    )


def _about(event: Event, order_id: str) -> bool:
    return isinstance(event.properties, dict) and event.properties.get("order_id") == order_id


def shipment_of(session: Session, customer_id: str, order_id: str) -> dict[str, Any] | None:
    """Carrier and tracking number of the order's latest shipment event, if it has one."""
    for event in _events(session, customer_id, (SHIPPED_EVENT,)):
        if _about(event, order_id):
            return dict(event.properties)
    return None


class RefundStage(str, Enum):
    """Where a refund of one order stands."""

    NONE = "none"
    REQUESTED = "requested"
    ISSUED = "issued"


@dataclass(frozen=True)
class RefundState:
    """The refund of one order: its stage, and when and how much if it was issued."""

    stage: RefundStage
    at: datetime | None = None
    amount: str | None = None
    currency: str | None = None


def refund_state(session: Session, customer_id: str, order_id: str) -> RefundState:
    """The latest refund news about the order: issued beats requested."""
    events = [
        event
        for event in _events(session, customer_id, (REFUND_ISSUED_EVENT, REFUND_REQUESTED_EVENT))
        if _about(event, order_id)
    ]
    issued = next((e for e in events if e.type == REFUND_ISSUED_EVENT), None)
    if issued is not None:
        return RefundState(
            RefundStage.ISSUED,
            issued.occurred_at,
            issued.properties.get("amount"),
            issued.properties.get("currency"),
        )
    if events:
        return RefundState(RefundStage.REQUESTED, events[0].occurred_at)
    return RefundState(RefundStage.NONE)


def _request(
    session: Session,
    customer_id: str,
    event_id: str,
    event_type: str,
    channel: str | None,
    properties: dict[str, Any],
) -> bool:
    return record_event(
        session,
        EventIn(
            event_id=event_id,
            customer_id=customer_id,
            type=event_type,
            occurred_at=utcnow(),
            channel=channel,
            properties=properties,
        ),
    )


def request_refund(session: Session, order: Order, channel: str | None) -> bool:
    """Open a refund request for a delivered or returned order; False if one was open.

    One request per order (its id is the key), however many times the customer asks.
    """
    return _request(
        session,
        order.customer_id,
        f"refund-request:{order.order_id}",
        REFUND_REQUESTED_EVENT,
        channel,
        {"order_id": order.order_id, "amount": str(order.total), "currency": order.currency},
    )


def request_invoice_copy(
    session: Session, order: Order, request_key: str, channel: str | None
) -> bool:
    """Ask the back office to email a copy of the order's invoice; once per request."""
    return _request(
        session,
        order.customer_id,
        f"invoice-request:{request_key}",
        INVOICE_REQUESTED_EVENT,
        channel,
        {"order_id": order.order_id},
    )


def record_complaint(
    session: Session,
    customer_id: str,
    request_key: str,
    order_id: str | None,
    channel: str | None,
) -> bool:
    """Note a complaint (about an order, or in general) for the service reports; once per
    request."""
    return _request(
        session,
        customer_id,
        f"complaint:{request_key}",
        COMPLAINT_EVENT,
        channel,
        {"order_id": order_id} if order_id else {},
    )


def recent_failed_payments(
    session: Session, customer_id: str, now: datetime | None = None
) -> list[Event]:
    """The customer's failed payments of the last 30 days, newest first."""
    since = (now or utcnow()) - PAYMENT_ISSUE_WINDOW
    return [
        event
        for event in _events(session, customer_id, (PAYMENT_FAILED_EVENT,))
        if event.occurred_at >= since
    ]
