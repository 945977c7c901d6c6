"""The orders and order_lines tables, and the shape of an order to record."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cdp.addresses import (
    CITY_MAX_LENGTH,
    LINE_MAX_LENGTH,
    POSTAL_CODE_MAX_LENGTH,
    REGION_MAX_LENGTH,
    Address,
    read_address_columns,
    write_address_columns,
)
from cdp.clock import utcnow
from cdp.column_types import BIG_ID, string_enum
from cdp.db import Base
from cdp.profiles.models import Profile

ORDER_ID_MAX_LENGTH = 64
CHANNEL_MAX_LENGTH = 32
SKU_MAX_LENGTH = 64
PRODUCT_NAME_MAX_LENGTH = 200


class OrderStatus(str, Enum):
    """Where an order is in its life."""

    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class Order(Base):
    """One order of one customer; `total` is always the sum of its lines."""

    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "customer_id", "placed_at"),
        CheckConstraint("total >= 0", name="total_not_negative"),
    )

    order_id: Mapped[str] = mapped_column(String(ORDER_ID_MAX_LENGTH), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey(Profile.customer_id, ondelete="CASCADE"))
    placed_at: Mapped[datetime]
    status: Mapped[OrderStatus] = mapped_column(string_enum(OrderStatus, "order_status"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX_LENGTH))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    delivery_line1: Mapped[str | None] = mapped_column(String(LINE_MAX_LENGTH))
    delivery_line2: Mapped[str | None] = mapped_column(String(LINE_MAX_LENGTH))
    delivery_city: Mapped[str | None] = mapped_column(String(CITY_MAX_LENGTH))
    delivery_region: Mapped[str | None] = mapped_column(String(REGION_MAX_LENGTH))
    delivery_postal_code: Mapped[str | None] = mapped_column(String(POSTAL_CODE_MAX_LENGTH))
    delivery_country: Mapped[str | None] = mapped_column(String(2))
    reorder_of: Mapped[str | None] = mapped_column(
        ForeignKey("orders.order_id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Loaded with the order: callers read lines after their transaction has closed.
    lines: Mapped[list["OrderLine"]] = relationship(
        order_by="OrderLine.line_no",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )

    @property
    def delivery_address(self) -> Address | None:
        """Where the order goes, None when unknown."""
        return read_address_columns(self, "delivery_")

    @delivery_address.setter
    def delivery_address(self, address: Address | None) -> None:
        write_address_columns(self, "delivery_", address)


class OrderLine(Base):
    """One product on an order, numbered from 1 within it."""

    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("line_no > 0", name="line_no_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey(Order.order_id, ondelete="CASCADE"))
    line_no: Mapped[int]
    sku: Mapped[str] = mapped_column(String(SKU_MAX_LENGTH))
    name: Mapped[str] = mapped_column(String(PRODUCT_NAME_MAX_LENGTH))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)

    @property
    def line_total(self) -> Decimal:
        """Quantity times unit price."""
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class OrderLineIn:
    """One line of an order to record; values already validated."""

    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderIn:
    """An order to record as it is in the source system (e.g. an import line)."""

    order_id: str
    customer_id: str
    placed_at: datetime
    status: OrderStatus
    channel: str
    currency: str
    lines: tuple[OrderLineIn, ...]
    delivery_address: Address | None = None
