"""Every CDP table in one import, so the metadata is complete for migrations and tests."""

from cdp.db import Base
from cdp.events.models import Event
from cdp.identities.models import Identity
from cdp.orders.models import Order, OrderLine
from cdp.profiles.models import Profile

__all__ = ["Base", "Event", "Identity", "Order", "OrderLine", "Profile"]
