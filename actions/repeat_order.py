"""Repeat the last order: propose it from the CDP, place it on yes, drop it on no.

Identity is verified on every step: the proposal and the order both belong to the customer
whose signed token came with the message, never to whoever holds the conversation id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions import formatting
from actions.anonymous import tell_anonymous
from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, named_customer_id, verified_customer_id
from actions.order_lookup import request_key
from cdp.addresses import Address, read_address_columns
from cdp.errors import CdpError
from cdp.orders.models import Order
from cdp.orders.service import profile_with_last_order_lines, reorder

logger = logging.getLogger(__name__)

PENDING_SLOT = "reorder_source_order_id"


@dataclass(frozen=True)
class OrderView:
    """What the bot says about an order, read while the CDP session is open."""

    order_id: str
    placed_on: str
    lines: str
    total: str
    delivery_address: str

    @classmethod
    def of_rows(cls, rows: list[Row[Any]], ship_to: Address | None = None) -> OrderView:
        """The order from `profile_with_last_order_lines` rows (every order has a line)."""
        order = rows[0]
        return cls(
            order_id=order.order_id,
            placed_on=formatting.day(order.placed_at),
            lines=formatting.order_lines(rows, order.currency),
            total=formatting.money(order.total, order.currency),
            delivery_address=formatting.address(ship_to or read_address_columns(order, "delivery_"))
            or "the address on your account",
        )

    @classmethod
    def of(cls, order: Order, ship_to: Address | None = None) -> OrderView:
        """The order as said to the customer, shipping to `ship_to` or where it went."""
        return cls(
            order_id=order.order_id,
            placed_on=formatting.day(order.placed_at),
            lines=formatting.order_lines(order.lines, order.currency),
            total=formatting.money(order.total, order.currency),
            delivery_address=formatting.address(ship_to or order.delivery_address)
            or "the address on your account",
        )


@dataclass(frozen=True)
class Proposal:
    """The outcome of looking up what to repeat: `anonymous`, `no_orders` or `ready`."""

    outcome: str
    first_name: str | None = None
    order: OrderView | None = None


def find_proposal(session: Session, customer_id: str | None) -> Proposal:
    """What to propose to the writer `verified_customer_id` returned: one query for a
    customer id (a token's `sub`), two for a channel identity (its link, then the order)."""
    customer_id = named_customer_id(session, customer_id)
    rows = profile_with_last_order_lines(session, customer_id) if customer_id else []
    if not rows:
        return Proposal("anonymous")
    first_name = rows[0].first_name
    if rows[0].order_id is None:
        return Proposal("no_orders", first_name=first_name)
    # A repeat goes to the current default address, as `reorder` will send it.
    view = OrderView.of_rows(rows, ship_to=read_address_columns(rows[0], "address_"))
    return Proposal("ready", first_name=first_name, order=view)


class ActionProposeRepeatOrder(Action):
    """Lists the last order's items and quantities and asks before writing anything."""

    def name(self) -> str:
        return "action_propose_repeat_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        proposal = await in_cdp_transaction(lambda session: find_proposal(session, customer_id))
        if proposal.order is None:
            if proposal.outcome == "no_orders":
                dispatcher.utter_message(
                    response="utter_repeat_order_no_orders", first_name=proposal.first_name
                )
            else:
                tell_anonymous(dispatcher)
            return [SlotSet(PENDING_SLOT, None)]
        order = proposal.order
        dispatcher.utter_message(
            response="utter_confirm_repeat_order",
            order_id=order.order_id,
            placed_on=order.placed_on,
            lines=order.lines,
            total=order.total,
            delivery_address=order.delivery_address,
        )
        return [SlotSet(PENDING_SLOT, order.order_id)]


@dataclass(frozen=True)
class Placement:
    """The outcome of placing a repeat: `anonymous` (the writer is not verified),
    `unavailable` (not theirs, or no longer orderable) or `placed`."""

    outcome: str
    order: OrderView | None = None


def place_repeat(
    session: Session,
    customer_id: str | None,
    source_order_id: str,
    channel: str | None,
    key: str | None = None,
) -> Placement:
    """The new order, if the writer is verified and the source is theirs.

    With `key` (the confirming message's, see actions.order_lookup.request_key) a retried
    confirmation returns the order already placed instead of placing a second one.
    """
    profile = identified_profile(session, customer_id)
    if profile is None:
        return Placement("anonymous")
    try:
        order = reorder(
            session,
            profile.customer_id,
            source_order_id,
            channel=channel or "chat",
            request_key=key,
        )
    except CdpError:  # not theirs, or no longer orderable (e.g. cancelled)
        return Placement("unavailable")
    return Placement("placed", OrderView.of(order))


class ActionPlaceRepeatOrder(Action):
    """Writes the confirmed repeat order to the CDP and confirms its new id."""

    def name(self) -> str:
        return "action_place_repeat_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        source_order_id = tracker.get_slot(PENDING_SLOT)
        customer_id = verified_customer_id(tracker)
        if not source_order_id or customer_id is None:
            tell_anonymous(dispatcher)
            return [SlotSet(PENDING_SLOT, None)]
        channel = tracker.get_latest_input_channel()
        key = request_key(tracker)
        try:
            placement = await in_cdp_transaction(
                lambda session: place_repeat(session, customer_id, source_order_id, channel, key)
            )
        except SQLAlchemyError:
            logger.exception("repeat order of %s failed for %s", source_order_id, customer_id)
            placement = Placement("unavailable")
        placed = placement.order
        if placement.outcome == "anonymous":
            # A channel identity no verified link backs: say so (and offer to verify).
            tell_anonymous(dispatcher)
        elif placed is None:
            dispatcher.utter_message(response="utter_repeat_order_unavailable")
        else:
            dispatcher.utter_message(
                response="utter_repeat_order_placed",
                new_order_id=placed.order_id,
                lines=placed.lines,
                total=placed.total,
                delivery_address=placed.delivery_address,
            )
        return [SlotSet(PENDING_SLOT, None)]


class ActionDeclineRepeatOrder(Action):
    """Drops the proposal without writing and asks what to change."""

    def name(self) -> str:
        return "action_decline_repeat_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_repeat_order_declined")
        return [SlotSet(PENDING_SLOT, None)]
