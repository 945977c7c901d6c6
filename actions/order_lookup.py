"""Which order a message is about, looked up only among the verified customer's own orders.

An order id in the message (O-5001, o5001, #5001, 5001) is normalised and searched in the
customer's orders only: an unknown id and someone else's id give the same `not_found`, so
the answer reveals nothing. Without an id, each flow says which order it means by default
(the latest open one for "where is my order", the last delivered one for a refund...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rasa_sdk import Tracker
from sqlalchemy.orm import Session

from actions.identity import identified_profile
from cdp.orders.models import Order
from cdp.orders.service import find_customer_order
from cdp.profiles.models import Profile

ORDER_ID_ENTITY = "order_id"


@dataclass(frozen=True)
class Answer:
    """A response of domain.yml and the variables to render it with."""

    response: str
    variables: dict[str, Any] = field(default_factory=dict)

    def with_variables(self, **variables: Any) -> Answer:
        return Answer(self.response, {**self.variables, **variables})


class Found(str, Enum):
    """How the lookup ended."""

    ANONYMOUS = "anonymous"  # nobody verified: nothing may be read
    NOT_FOUND = "not_found"  # the id given is not one of the customer's orders
    NO_DEFAULT = "no_default"  # no id given and no order fits the flow's default
    ORDER = "order"


@dataclass(frozen=True)
class Lookup:
    """The outcome, the profile (when verified) and the order (when found)."""

    found: Found
    profile: Profile | None = None
    order: Order | None = None
    typed_ref: str | None = None


def typed_order_ref(tracker: Tracker) -> str | None:
    """The order id entity of the latest message, as the customer wrote it."""
    return next(tracker.get_latest_entity_values(ORDER_ID_ENTITY), None)


def request_key(tracker: Tracker) -> str:
    """Idempotency key of the latest message: the same message retried gives the same key."""
    message_id = (tracker.latest_message or {}).get("message_id") or ""
    digest = hashlib.sha256(f"{tracker.sender_id}\n{message_id}".encode()).hexdigest()
    return digest[:40]


def look_up_order(
    session: Session,
    customer_id: str | None,
    typed_ref: str | None,
    default: Callable[[Session, str], Order | None],
) -> Lookup:
    """The order `typed_ref` names among the customer's, or `default(session, customer_id)`."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return Lookup(Found.ANONYMOUS, typed_ref=typed_ref)
    if typed_ref is not None:
        order = find_customer_order(session, profile.customer_id, typed_ref)
        found = Found.ORDER if order is not None else Found.NOT_FOUND
        return Lookup(found, profile, order, typed_ref)
    order = default(session, profile.customer_id)
    return Lookup(Found.ORDER if order else Found.NO_DEFAULT, profile, order)
