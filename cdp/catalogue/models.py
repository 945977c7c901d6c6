"""The products table and the shape of a product to record."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from cdp.clock import utcnow
from cdp.db import Base
from cdp.orders.models import PRODUCT_NAME_MAX_LENGTH, SKU_MAX_LENGTH


class Product(Base):
    """One sellable product; `name_key` is the normalised name lookups compare against."""

    __tablename__ = "products"
    __table_args__ = (CheckConstraint("price >= 0", name="price_not_negative"),)

    sku: Mapped[str] = mapped_column(String(SKU_MAX_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(PRODUCT_NAME_MAX_LENGTH))
    name_key: Mapped[str] = mapped_column(String(PRODUCT_NAME_MAX_LENGTH), index=True)
    price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    available: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class ProductIn:
    """A product to record; values already validated."""

    sku: str
    name: str
    price: Decimal
    currency: str
    available: bool = True
