"""Replacement store cards: who holds a card, and the replacement request kept as an event.

The card itself lives with the issuing bank; the CDP knows whether a customer holds one (the
custom attribute `store_card_holder`) and records each replacement request as an event for
the card team, with the reason and the address the new card goes to. The event id is the
request's idempotency key, so a redelivered message records it once.
"""

from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.addresses import Address
from cdp.attributes.models import AttributeValue
from cdp.clock import utcnow
from cdp.events.models import EventIn
from cdp.events.service import record_event

HOLDER_ATTRIBUTE = "store_card_holder"
REPLACEMENT_EVENT = "card_replacement_requested"


class CardReason(str, Enum):
    """Why the customer needs a new card; a stolen card must also be blocked."""

    LOST = "lost"
    STOLEN = "stolen"
    DAMAGED = "damaged"


def holds_store_card(session: Session, customer_id: str) -> bool:
    """True if the profile says the customer has a store card (one indexed read)."""
    value = session.scalar(
        select(AttributeValue.value).where(
            AttributeValue.customer_id == customer_id,
            AttributeValue.name == HOLDER_ATTRIBUTE,
        )
    )
    return value is True


def request_card_replacement(
    session: Session,
    customer_id: str,
    request_key: str,
    reason: CardReason,
    address: Address,
    address_source: str,
    channel: str | None,
) -> bool:
    """Record the request for the card team; False if this request was already recorded."""
    return record_event(
        session,
        EventIn(
            event_id=f"card-replacement:{request_key}",
            customer_id=customer_id,
            type=REPLACEMENT_EVENT,
            occurred_at=utcnow(),
            channel=channel,
            properties={
                "reason": reason.value,
                "block_old_card": reason is CardReason.STOLEN,
                "address": address.as_dict(),
                "address_source": address_source,
            },
        ),
    )
