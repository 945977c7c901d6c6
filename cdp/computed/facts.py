"""Rows of history as aggregates see them: one fact per order, order line and event."""

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from cdp.clock import isoformat_z, parse_timestamp
from cdp.computed.models import PART_KEY_MAX_LENGTH
from cdp.events.models import Event, EventIn
from cdp.orders.models import Order

PROPERTIES_PREFIX = "properties."


@dataclass(frozen=True)
class Fact:
    """One row of a source, its time, and its fields (numbers as Decimal)."""

    source: str
    at: datetime
    fields: dict[str, Any]

    def get(self, name: str) -> Any:
        return self.fields.get(name)

    @property
    def day(self) -> date:
        return self.at.astimezone(timezone.utc).date()


def _scalar(value: Any) -> Any:
    """An event property as a fact value: numbers as Decimal, objects and lists dropped."""
    # Tuples, not unions: isinstance is faster with them, and this runs for every property.
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    return None


def order_facts(order: Order) -> list[Fact]:
    """The order and each of its lines, as they are now (snapshot before changing it)."""
    status = order.status.value
    header = {
        "order_id": order.order_id,
        "total": order.total,
        "placed_at": order.placed_at,
        "status": status,
        "channel": order.channel,
        "currency": order.currency,
        "delivery_city": order.delivery_city,
        "delivery_country": order.delivery_country,
    }
    facts = [Fact("orders", order.placed_at, header)]
    for line in order.lines:
        facts.append(
            Fact(
                "order_lines",
                order.placed_at,
                {
                    "order_id": order.order_id,
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": Decimal(line.quantity),
                    "unit_price": line.unit_price,
                    "line_total": line.quantity * line.unit_price,
                    "status": status,
                    "channel": order.channel,
                    "currency": order.currency,
                    "placed_at": order.placed_at,
                },
            )
        )
    return facts


def event_fact(event: Event | EventIn) -> Fact:
    """An event with its properties flattened to properties.<key>."""
    fields: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "channel": event.channel,
        "occurred_at": event.occurred_at,
    }
    for key, value in (event.properties or {}).items():
        fields[PROPERTIES_PREFIX + key] = _scalar(value)
    return Fact("events", event.occurred_at, fields)


def encode(value: Any) -> list[Any]:
    """A fact value as tagged JSON, so min/max/first/last come back with their type."""
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, datetime):
        return ["t", isoformat_z(value)]
    return ["s", str(value)]


def decode(stored: Any) -> Any:
    if stored is None:
        return None
    tag, text = stored
    if tag == "d":
        return Decimal(text)
    if tag == "t":
        return parse_timestamp(text)
    return text


def order_key(value: Any) -> tuple[int, Any]:
    """A total order over mixed fact values (numbers, then times, then text, then booleans)."""
    if isinstance(value, bool):
        return (3, value)
    if isinstance(value, Decimal):
        return (0, value)
    if isinstance(value, datetime):
        return (1, value)
    return (2, str(value))


def part_key(value: Any) -> str:
    """A value as a tally key: the same value always gives the same text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return isoformat_z(value)
    return str(value)[:PART_KEY_MAX_LENGTH]
