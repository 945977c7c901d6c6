"""Order history, the last order, repeating an order, and recording imported orders."""

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import Session, joinedload

from cdp.addresses import ADDRESS_PARTS, Address
from cdp.changes import Change
from cdp.clock import utcnow
from cdp.computed.facts import Fact, event_fact, order_facts
from cdp.computed.service import apply_order_change
from cdp.errors import OrderConflict, OrderNotFound, OrderNotReorderable, ProfileNotFound
from cdp.events.models import Event, EventIn
from cdp.events.service import record_event
from cdp.orders.errors import OrderTooLate
from cdp.orders.models import (
    CHANNEL_MAX_LENGTH,
    ORDER_ID_MAX_LENGTH,
    Order,
    OrderIn,
    OrderLine,
    OrderStatus,
)
from cdp.profiles.models import Profile
from cdp.validation import clean_text

ORDER_ID_PREFIX = "O-"
# Five random bytes are exactly eight base32 characters (A-Z, 2-7): 2**40 ids.
_ORDER_ID_RANDOM_BYTES = 5
_ORDER_ID_ATTEMPTS = 10
# What customers type for an order id: O-5001, o5001, #5001, 5001, O-K3ZQ7M2A.
_ORDER_REF = re.compile(r"#?\s*(?:O\s*-?\s*)?([A-Z0-9]+)")
# Orders not delivered, cancelled or returned yet: "where is my order" is about these.
OPEN_STATUSES = (OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.SHIPPED)
# Orders still in the warehouse: they can be cancelled or changed.
CHANGEABLE_STATUSES = (OrderStatus.PLACED, OrderStatus.PAID)
ORDER_REQUEST_EVENT = "order_requested"


def new_order_id() -> str:
    """A random order id like O-K3ZQ7M2A; see unused_order_id for uniqueness."""
    suffix = base64.b32encode(secrets.token_bytes(_ORDER_ID_RANDOM_BYTES)).decode("ascii")
    return ORDER_ID_PREFIX + suffix


def unused_order_id(session: Session) -> str:
    """A fresh order id no stored order has; the primary key still guards against a race."""
    for _ in range(_ORDER_ID_ATTEMPTS):
        candidate = new_order_id()
        if session.scalars(_order_id_statement(), {"order_id": candidate}).first() is None:
            return candidate
    raise RuntimeError(f"no free order id after {_ORDER_ID_ATTEMPTS} attempts")


@cache
def _order_id_statement() -> Select[tuple[str]]:
    return select(Order.order_id).where(Order.order_id == bindparam("order_id"))


def order_total(lines: Iterable[OrderLine]) -> Decimal:
    """Sum of quantity times unit price over the lines."""
    return sum((line.line_total for line in lines), Decimal("0.00"))


def get_order(session: Session, customer_id: str, order_id: str) -> Order | None:
    """The customer's order with this id; None if it doesn't exist or is someone else's."""
    order = session.get(Order, order_id)
    if order is None or order.customer_id != customer_id:
        return None
    return order


def normalise_order_ref(text: object) -> str | None:
    """The stored form (`O-5001`) of an order id as typed; None when it can't be one."""
    if not isinstance(text, str):
        return None
    match = _ORDER_REF.fullmatch(text.strip().upper())
    if match is None:
        return None
    order_id = ORDER_ID_PREFIX + match.group(1)
    return order_id if len(order_id) <= ORDER_ID_MAX_LENGTH else None


def find_customer_order(session: Session, customer_id: str, ref: object) -> Order | None:
    """The customer's order a typed reference names; None for a malformed, unknown or
    someone else's id alike, so a caller cannot tell them apart."""
    order_id = normalise_order_ref(ref)
    return get_order(session, customer_id, order_id) if order_id else None


def latest_open_order(session: Session, customer_id: str) -> Order | None:
    """The customer's most recent order still on its way (placed, paid or shipped)."""
    return session.scalar(
        select(Order)
        .where(Order.customer_id == customer_id, Order.status.in_(OPEN_STATUSES))
        .order_by(Order.placed_at.desc(), Order.created_at.desc(), Order.order_id.desc())
        .limit(1)
    )


def cancel_order(session: Session, customer_id: str, order_id: str) -> Change:
    """Cancel one of the customer's orders that has not shipped; cancelling twice is a no-op.

    OrderNotFound for an id that isn't theirs, OrderTooLate once it has shipped.
    """
    order = get_order(session, customer_id, order_id)
    if order is None:
        raise OrderNotFound(customer_id, order_id)
    if order.status is OrderStatus.CANCELLED:
        return Change.UNCHANGED
    if order.status not in CHANGEABLE_STATUSES:
        raise OrderTooLate(order.order_id, order.status.value, "cancel")
    return set_order_status(session, customer_id, order_id, OrderStatus.CANCELLED)


def change_delivery_address(
    session: Session, customer_id: str, order_id: str, address: Address
) -> Change:
    """Send one of the customer's unshipped orders to `address` (computed values follow)."""
    order = get_order(session, customer_id, order_id)
    if order is None:
        raise OrderNotFound(customer_id, order_id)
    if order.status not in CHANGEABLE_STATUSES:
        raise OrderTooLate(order.order_id, order.status.value, "change")
    if order.delivery_address == address:
        return Change.UNCHANGED
    before = order_facts(order)
    order.delivery_address = address
    session.flush()
    apply_order_change(session, customer_id, before, order_facts(order))
    return Change.UPDATED


@dataclass(frozen=True)
class OrderClaim:
    """A request's claim: the order an earlier delivery placed (nothing more to do), or
    the facts of the claim just recorded, which the caller applies with its new order's
    (one aggregate update for both)."""

    earlier: Order | None
    facts: list[Fact]


def claim_order_request(
    session: Session, customer_id: str, request_key: str, order_id: str, channel: str | None
) -> OrderClaim:
    """Reserve `order_id` for the request, or find the order an earlier delivery placed.

    The claim is an `order_requested` event whose id is the request key, inserted with ON
    CONFLICT DO NOTHING in the caller's transaction: a redelivered or concurrent request
    finds the first one's order instead of placing a second.
    """
    claim = EventIn(
        event_id=f"order-request:{request_key}",
        customer_id=customer_id,
        type=ORDER_REQUEST_EVENT,
        occurred_at=utcnow(),
        channel=channel,
        properties={"order_id": order_id},
    )
    if record_event(session, claim, update_aggregates=False):
        return OrderClaim(None, [event_fact(claim)])
    earlier = session.scalar(select(Event).where(Event.event_id == f"order-request:{request_key}"))
    if earlier is None or earlier.customer_id != customer_id:
        raise OrderConflict(order_id, earlier.customer_id if earlier else "?", customer_id)
    placed = get_order(session, customer_id, earlier.properties["order_id"])
    if placed is None:  # the earlier order was deleted since: nothing to return, refuse
        raise OrderNotFound(customer_id, earlier.properties["order_id"])
    return OrderClaim(placed, [])


def _last_repeatable_order_id() -> Any:
    """The id of the most recent order of `:customer_id` that went through (see `last_order`)."""
    return (
        select(Order.order_id)
        .where(
            Order.customer_id == bindparam("customer_id"),
            Order.status != OrderStatus.CANCELLED,
        )
        .order_by(Order.placed_at.desc(), Order.created_at.desc(), Order.order_id.desc())
        .limit(1)
        .scalar_subquery()
    )


@cache
def _last_order_statement() -> Select[Any]:
    return select(Order).where(Order.order_id == _last_repeatable_order_id())


def last_order(session: Session, customer_id: str) -> Order | None:
    """The customer's most recent order that can be repeated, None if there is none.

    Most recent by placed_at, ties broken by created_at (then order id, for a stable answer).
    Cancelled orders are skipped: "order my last order again" means the last one that went
    through, and a cancelled order can't be reordered anyway (see reorder).
    """
    return session.scalar(_last_order_statement(), {"customer_id": customer_id})


@cache
def _profile_with_last_order_lines_statement() -> Select[Any]:
    """Built once: SQLAlchemy then reuses its cache key and compiled SQL on every call.

    Building the statement per call (and hashing it into a cache key) cost more than
    running it on SQLite.
    """
    return (
        select(
            Profile.customer_id,
            Profile.first_name,
            *(getattr(Profile, "address_" + part) for part in ADDRESS_PARTS),
            Order.order_id,
            Order.placed_at,
            Order.currency,
            Order.total,
            *(getattr(Order, "delivery_" + part) for part in ADDRESS_PARTS),
            OrderLine.name,
            OrderLine.quantity,
            OrderLine.unit_price,
        )
        .select_from(Profile)
        .outerjoin(Order, Order.order_id == _last_repeatable_order_id())
        .outerjoin(OrderLine, OrderLine.order_id == Order.order_id)
        .where(Profile.customer_id == bindparam("customer_id"))
        .order_by(OrderLine.line_no)
    )


def profile_with_last_order_lines(session: Session, customer_id: str) -> list[Row[Any]]:
    """The profile's name and address beside each line of its `last_order`, in line order.

    No rows when there is no such profile; one row with the order's columns None when it
    has no order to repeat. One query on the session's connection, no ORM objects: the bot
    reads this on every "same as last time", where the profile and the order as ORM loads
    (two queries) were most of the action server's time.
    """
    return list(
        session.connection().execute(
            _profile_with_last_order_lines_statement(), {"customer_id": customer_id}
        )
    )


def count_orders(session: Session, customer_id: str) -> int:
    """How many orders the customer has, whatever their status."""
    return (
        session.scalar(
            select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
        )
        or 0
    )


def reorder(
    session: Session,
    customer_id: str,
    source_order_id: str,
    channel: str,
    *,
    request_key: str | None = None,
) -> Order:
    """Place a new order repeating one of the customer's previous orders.

    The new order copies every line (sku, name, quantity, unit price, options) at the
    original prices and currency, gets a fresh id, status placed, placed now, and
    reorder_of pointing at the source. It ships to the profile's current default address,
    or to where the source order went when the profile has none. Raises OrderNotFound if
    the source isn't this customer's, OrderNotReorderable if it was cancelled. With a
    `request_key` (e.g. conversation and message id) the same request places one order,
    however often it is delivered (see claim_order_request).
    """
    source = session.scalars(_order_with_lines_statement(), {"order_id": source_order_id}).first()
    if source is None or source.customer_id != customer_id:
        raise OrderNotFound(customer_id, source_order_id)
    if source.status is OrderStatus.CANCELLED:
        raise OrderNotReorderable(source.order_id, source.status.value)
    profile = session.get(Profile, customer_id)
    if profile is None:
        raise ProfileNotFound(customer_id)
    new_id = unused_order_id(session)
    claimed: list[Fact] = []
    if request_key is not None:
        claim = claim_order_request(session, customer_id, request_key, new_id, channel)
        if claim.earlier is not None:
            return claim.earlier
        claimed = claim.facts
    lines = [
        OrderLine(
            line_no=line.line_no,
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_price=line.unit_price,
            options=dict(line.options),
        )
        for line in source.lines
    ]
    now = utcnow()
    order = Order(
        order_id=new_id,
        customer_id=customer_id,
        placed_at=now,
        status=OrderStatus.PLACED,
        channel=clean_text(channel, max_length=CHANNEL_MAX_LENGTH),
        currency=source.currency,
        total=order_total(lines),
        reorder_of=source.order_id,
        created_at=now,
        lines=lines,
    )
    order.delivery_address = profile.address or source.delivery_address
    session.add(order)
    session.flush()
    apply_order_change(session, customer_id, [], [*claimed, *order_facts(order)])
    return order


@cache
def _order_with_lines_statement() -> Select[tuple[Order]]:
    """An order and its lines in one query (the relationship's own loading takes two)."""
    return (
        select(Order)
        .options(joinedload(Order.lines))
        .where(Order.order_id == bindparam("order_id"))
    )


def record_order(session: Session, incoming: OrderIn) -> Change:
    """Store an order as the source system has it; recording the same content is a no-op.

    An order already stored for the same customer is brought in line with `incoming`
    (status, channel, currency, address and lines matched by line number). An order id
    that belongs to another customer raises OrderConflict.
    """
    if session.get(Profile, incoming.customer_id) is None:
        raise ProfileNotFound(incoming.customer_id)
    order = session.get(Order, incoming.order_id)
    if order is None:
        order = Order(order_id=incoming.order_id, customer_id=incoming.customer_id)
        _apply_order(order, incoming)
        session.add(order)
        session.flush()
        apply_order_change(session, order.customer_id, [], order_facts(order))
        return Change.CREATED
    if order.customer_id != incoming.customer_id:
        raise OrderConflict(order.order_id, order.customer_id, incoming.customer_id)
    before = order_facts(order)
    if not _apply_order(order, incoming):
        return Change.UNCHANGED
    session.flush()
    apply_order_change(session, order.customer_id, before, order_facts(order))
    return Change.UPDATED


def set_order_status(
    session: Session, customer_id: str, order_id: str, status: OrderStatus
) -> Change:
    """Move one of the customer's orders to `status`; computed attributes follow in the same
    transaction (a cancelled order leaves lifetime_value, order_count...)."""
    order = get_order(session, customer_id, order_id)
    if order is None:
        raise OrderNotFound(customer_id, order_id)
    if order.status is status:
        return Change.UNCHANGED
    before = order_facts(order)
    order.status = status
    session.flush()
    apply_order_change(session, customer_id, before, order_facts(order))
    return Change.UPDATED


def _apply_order(order: Order, incoming: OrderIn) -> bool:
    """Copy `incoming` onto `order`, touching only what differs; True if anything did."""
    changed = False
    header = {
        "placed_at": incoming.placed_at,
        "status": incoming.status,
        "channel": incoming.channel,
        "currency": incoming.currency,
    }
    for name, value in header.items():
        if getattr(order, name) != value:
            setattr(order, name, value)
            changed = True
    if order.delivery_address != incoming.delivery_address:
        order.delivery_address = incoming.delivery_address
        changed = True
    changed = _apply_lines(order, incoming) or changed
    total = order_total(order.lines)
    if order.total != total:
        order.total = total
        changed = True
    return changed


def _apply_lines(order: Order, incoming: OrderIn) -> bool:
    """Update lines in place by line number (1-based), add missing ones, drop extra ones.

    In place rather than replace-all: deleting and re-adding the same (order, line_no) in
    one flush would trip the unique constraint.
    """
    changed = False
    existing = {line.line_no: line for line in order.lines}
    for line_no, wanted in enumerate(incoming.lines, start=1):
        line = existing.get(line_no)
        if line is None:
            line = OrderLine(line_no=line_no)
            order.lines.append(line)
            changed = True
        values = {
            "sku": wanted.sku,
            "name": wanted.name,
            "quantity": wanted.quantity,
            "unit_price": wanted.unit_price,
            "options": dict(wanted.options),
        }
        for name, value in values.items():
            if getattr(line, name) != value:
                setattr(line, name, value)
                changed = True
    for line in [line for line in order.lines if line.line_no > len(incoming.lines)]:
        order.lines.remove(line)
        changed = True
    return changed
