"""Placing an order by product name and quantity, cancelling one, and changing one.

Placing: `place_order_form` asks for the product (the customer's favourite is offered, from
the computed attribute `favorite_product`) and the quantity, `address_form`
(actions.address) confirms or changes the delivery address, then `action_propose_order`
shows the order and asks; nothing is written before the customer's yes. The order is
placed with the confirming message's idempotency key, so a redelivered "yes" places it once.

Cancelling and changing: only an order that has not shipped; after that the customer is
told why it is too late and what can be done instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions import formatting
from actions.address import ADDRESS_SLOTS, address_from_slots, save_profile_address
from actions.anonymous import tell_anonymous
from actions.cdp_access import in_cdp_transaction
from actions.forms import CdpFormValidationAction, FormContext
from actions.identity import identified_profile, verified_customer_id
from actions.order_lookup import Answer, Found, look_up_order, request_key, typed_order_ref
from actions.repeat_order import OrderView
from cdp.catalogue.errors import AmbiguousProduct, ProductNotFound
from cdp.catalogue.models import Product
from cdp.catalogue.service import find_product, place_order_for_product
from cdp.computed.service import computed_values
from cdp.errors import CdpError, InvalidValue, OrderNotFound
from cdp.orders.errors import OrderTooLate
from cdp.orders.models import OrderStatus
from cdp.orders.service import CHANGEABLE_STATUSES, cancel_order, latest_open_order
from cdp.profiles.models import Profile

logger = logging.getLogger(__name__)

ORDER_PENDING_SLOT = "order_pending"
CANCEL_PENDING_SLOT = "cancel_order_id"
PRODUCT_SLOT, QUANTITY_SLOT = "product", "quantity"
# A chat order is for a household, not a warehouse: larger quantities go through a person.
MAX_QUANTITY = 20
# What customers say for the product they buy most (the computed `favorite_product`).
FAVOURITE_WORDS = frozenset({"favourite", "favorite", "usual", "the usual", "my usual"})
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "a couple of": 2, "a couple": 2, "a dozen": 12, "dozen": 12,
}  # fmt: skip
# The quantity at the start of an answer: "2", "2 bags", "two", "a couple of bags".
_LEADING_QUANTITY = re.compile(
    r"(\d+|" + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True)) + r")\b"
)


def favourite_product(session: Session, customer_id: str) -> str | None:
    """The customer's most purchased product by quantity (computed in the CDP)."""
    return computed_values(session, customer_id).values.get("favorite_product")


def parse_quantity(value: object) -> int:
    """A quantity from 1 to MAX_QUANTITY, from digits ("2", "2 bags") or words ("two")."""
    text = str(value).strip().lower() if value is not None else ""
    match = _LEADING_QUANTITY.match(text)
    if match is None:
        raise InvalidValue(f"{value!r} is not a number of items")
    found = match.group(1)
    number = int(found) if found.isdigit() else NUMBER_WORDS[found]
    if not 1 <= number <= MAX_QUANTITY:
        raise InvalidValue(f"I can take orders of 1 to {MAX_QUANTITY} items, not {number}")
    return number


@dataclass(frozen=True)
class ProductCheck:
    """What the typed product turned out to be: one product, several, or none."""

    product: str | None = None
    available: bool = True
    candidates: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    typed: str = ""


@dataclass(frozen=True)
class OrderFormContext(FormContext):
    """The product check for the typed product, if one was typed in this message."""

    product_check: ProductCheck | None = None


def check_product(session: Session, profile: Profile, typed: str) -> ProductCheck:
    """Resolve the typed name (or "my usual") against the catalogue."""
    ref = typed
    if typed.strip().lower() in FAVOURITE_WORDS:
        favourite = favourite_product(session, profile.customer_id)
        if favourite is None:
            return ProductCheck(typed=typed)
        ref = favourite
    try:
        product = find_product(session, ref).product
    except AmbiguousProduct as error:
        return ProductCheck(candidates=tuple(error.candidates), typed=typed)
    except ProductNotFound as error:
        return ProductCheck(suggestions=tuple(error.suggestions), typed=typed)
    except InvalidValue:
        return ProductCheck(typed=typed)
    return ProductCheck(product=product.name, available=product.available, typed=typed)


class ValidatePlaceOrderForm(CdpFormValidationAction[OrderFormContext]):
    """Checks the product against the catalogue and the quantity against the limits."""

    def name(self) -> str:
        return "validate_place_order_form"

    def load(
        self,
        session: Session,
        profile: Profile | None,
        candidates: dict[str, Any],
        tracker: Tracker,
    ) -> OrderFormContext:
        if profile is None:
            return OrderFormContext(None)
        typed = candidates.get(PRODUCT_SLOT)
        check = check_product(session, profile, typed) if isinstance(typed, str) else None
        return OrderFormContext(profile.customer_id, check)

    def validate_product(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        check = self.context.product_check
        if check is None:
            return self.reject(
                dispatcher, PRODUCT_SLOT, response="utter_product_not_found", typed=value
            )
        if check.product is not None and check.available:
            return {PRODUCT_SLOT: check.product}
        if check.product is not None:
            return self.reject(
                dispatcher,
                PRODUCT_SLOT,
                response="utter_product_unavailable",
                product=check.product,
            )
        if check.candidates:
            return self.reject(
                dispatcher,
                PRODUCT_SLOT,
                response="utter_product_ambiguous",
                typed=check.typed,
                candidates="\n".join(f"- {name}" for name in check.candidates),
            )
        if check.suggestions:
            return self.reject(
                dispatcher,
                PRODUCT_SLOT,
                response="utter_product_not_found_suggestions",
                typed=check.typed,
                suggestions=" or ".join(check.suggestions),
            )
        return self.reject(
            dispatcher, PRODUCT_SLOT, response="utter_product_not_found", typed=check.typed
        )

    def validate_quantity(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            return {QUANTITY_SLOT: str(parse_quantity(value))}
        except InvalidValue as error:
            return self.reject(
                dispatcher, QUANTITY_SLOT, response="utter_quantity_invalid", problem=str(error)
            )


class ActionAskProduct(Action):
    """Asks what to order, offering the customer's favourite product as a button."""

    def name(self) -> str:
        return "action_ask_product"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)

        def read(session: Session) -> str | None:
            profile = identified_profile(session, customer_id)
            return favourite_product(session, profile.customer_id) if profile else None

        favourite = await in_cdp_transaction(read)
        if favourite is None:
            dispatcher.utter_message(response="utter_what_product")
        else:
            dispatcher.utter_message(
                response="utter_what_product_with_favourite", favourite=favourite
            )
        return []


@dataclass(frozen=True)
class OrderProposal:
    """The order as it will be placed, for the customer to confirm."""

    sku: str
    product: str
    quantity: int
    unit_price: str
    total: str
    delivery_address: str


@dataclass(frozen=True)
class ProposalOutcome:
    """What proposing found: `anonymous` (the writer is not verified), `unavailable` (an
    unusable answer) or `ready` with the proposal."""

    outcome: str
    proposal: OrderProposal | None = None


def propose_order(
    session: Session, customer_id: str | None, slots: dict[str, Any]
) -> ProposalOutcome:
    """The order the form's answers describe, for the writer `verified_customer_id` named;
    the profile is looked up here, in the same transaction as the product."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return ProposalOutcome("anonymous")
    if not slots.get(PRODUCT_SLOT) or not slots.get(QUANTITY_SLOT):
        return ProposalOutcome("unavailable")
    try:
        product: Product = find_product(session, slots[PRODUCT_SLOT]).product
        quantity = parse_quantity(slots[QUANTITY_SLOT])
    except CdpError:
        return ProposalOutcome("unavailable")
    ship_to = address_from_slots(slots) or profile.address
    return ProposalOutcome(
        "ready",
        OrderProposal(
            sku=product.sku,
            product=product.name,
            quantity=quantity,
            unit_price=formatting.money(product.price, product.currency),
            total=formatting.money(product.price * Decimal(quantity), product.currency),
            delivery_address=formatting.address(ship_to) or "the address on your account",
        ),
    )


def _clear_order_slots(keep_pending: str | None = None) -> list[EventType]:
    events = [SlotSet(slot, None) for slot in (PRODUCT_SLOT, QUANTITY_SLOT, *ADDRESS_SLOTS)]
    return [*events, SlotSet(ORDER_PENDING_SLOT, keep_pending)]


class ActionProposeOrder(Action):
    """Shows product, quantity, price and address, and asks before writing anything."""

    def name(self) -> str:
        return "action_propose_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        slots = dict(tracker.slots)
        found = await in_cdp_transaction(lambda session: propose_order(session, customer_id, slots))
        proposal = found.proposal
        if proposal is None:
            if found.outcome == "anonymous":
                tell_anonymous(dispatcher)
            else:
                dispatcher.utter_message(response="utter_order_unavailable")
            return _clear_order_slots()
        dispatcher.utter_message(
            response="utter_confirm_order",
            product=proposal.product,
            quantity=proposal.quantity,
            unit_price=proposal.unit_price,
            total=proposal.total,
            delivery_address=proposal.delivery_address,
        )
        return [SlotSet(ORDER_PENDING_SLOT, proposal.sku)]


@dataclass(frozen=True)
class OrderPlacement:
    """What placing did: `anonymous` (the writer is not verified), `unavailable` (nothing
    confirmed to place) or `placed` with the new order."""

    outcome: str
    order: OrderView | None = None


def place_confirmed_order(
    session: Session,
    customer_id: str | None,
    slots: dict[str, Any],
    channel: str,
    key: str,
) -> OrderPlacement:
    """Check the writer, write the confirmed address (if changed) and the order, in one
    transaction."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return OrderPlacement("anonymous")
    sku, quantity = slots.get(ORDER_PENDING_SLOT), slots.get(QUANTITY_SLOT)
    if not sku or not quantity:
        return OrderPlacement("unavailable")
    new_address = address_from_slots(slots)
    if new_address is not None:
        save_profile_address(session, profile.customer_id, new_address)
    order = place_order_for_product(
        session, profile.customer_id, sku, parse_quantity(quantity), channel, request_key=key
    )
    return OrderPlacement("placed", OrderView.of(order))


class ActionPlaceOrder(Action):
    """Places the confirmed order (once per confirming message) and gives its id."""

    def name(self) -> str:
        return "action_place_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        if customer_id is None:
            tell_anonymous(dispatcher)
            return _clear_order_slots()
        slots = dict(tracker.slots)
        channel = tracker.get_latest_input_channel() or "chat"
        key = request_key(tracker)
        try:
            placement = await in_cdp_transaction(
                lambda session: place_confirmed_order(session, customer_id, slots, channel, key)
            )
        except (CdpError, SQLAlchemyError):
            logger.exception("placing %s for %s failed", slots.get(ORDER_PENDING_SLOT), customer_id)
            placement = OrderPlacement("unavailable")
        placed = placement.order
        if placement.outcome == "anonymous":
            # A channel identity no verified link backs: say so (and offer to verify).
            tell_anonymous(dispatcher)
        elif placed is None:
            dispatcher.utter_message(response="utter_order_unavailable")
        else:
            dispatcher.utter_message(
                response="utter_order_placed",
                new_order_id=placed.order_id,
                lines=placed.lines,
                total=placed.total,
                delivery_address=placed.delivery_address,
            )
        return _clear_order_slots()


class ActionDeclineOrder(Action):
    """Drops the proposed order without writing anything."""

    def name(self) -> str:
        return "action_decline_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_order_declined")
        return _clear_order_slots()


@dataclass(frozen=True)
class OrderCheck:
    """The answer about one order for a cancel or change request."""

    answer: Answer
    changeable_order_id: str | None = None


# Per kind of change: what to ask while the order can still change, and what to say after.
CHANGE_ANSWERS = {
    "cancel": (
        Answer(response="utter_confirm_cancel_order"),
        Answer(response="utter_order_too_late_to_cancel"),
    ),
    "change": (
        Answer(response="utter_confirm_change_order"),
        Answer(response="utter_order_too_late_to_change"),
    ),
}


def check_order_for(
    session: Session, customer_id: str | None, typed_ref: str | None, change: str
) -> OrderCheck | None:
    """Whether the order can still be cancelled or changed (`change`), and what to say."""
    lookup = look_up_order(session, customer_id, typed_ref, latest_open_order)
    if lookup.found is Found.ANONYMOUS:
        return None
    if lookup.found is Found.NOT_FOUND:
        return OrderCheck(
            Answer(response="utter_order_not_found", variables={"order_ref": typed_ref})
        )
    if lookup.order is None:
        return OrderCheck(Answer(response="utter_no_open_order"))
    order = lookup.order
    view = OrderView.of(order)
    variables = {"order_id": order.order_id, "lines": view.lines, "total": view.total}
    if order.status is OrderStatus.CANCELLED:
        return OrderCheck(Answer(response="utter_order_already_cancelled", variables=variables))
    still_possible, too_late = CHANGE_ANSWERS[change]
    if order.status not in CHANGEABLE_STATUSES:
        return OrderCheck(too_late.with_variables(**variables, status=order.status.value))
    return OrderCheck(still_possible.with_variables(**variables), order.order_id)


class ActionCheckCancelOrder(Action):
    """Looks up the order to cancel and asks to confirm, or says why it can't be."""

    def name(self) -> str:
        return "action_check_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        typed_ref = typed_order_ref(tracker)
        check = await in_cdp_transaction(
            lambda session: check_order_for(session, customer_id, typed_ref, "cancel")
        )
        if check is None:
            tell_anonymous(dispatcher)
            return [SlotSet(CANCEL_PENDING_SLOT, None)]
        dispatcher.utter_message(response=check.answer.response, **check.answer.variables)
        return [SlotSet(CANCEL_PENDING_SLOT, check.changeable_order_id)]


def cancel_confirmed(session: Session, customer_id: str | None, order_id: str) -> Answer | None:
    """Cancel, and say what to answer; None for a visitor (cancelling twice is harmless)."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    try:
        cancel_order(session, profile.customer_id, order_id)
    except OrderTooLate as error:  # it shipped between the question and the yes
        return Answer(
            response="utter_order_too_late_to_cancel",
            variables={"order_id": order_id, "status": error.status},
        )
    except OrderNotFound:
        return Answer(response="utter_order_not_found", variables={"order_ref": order_id})
    return Answer(response="utter_order_cancelled", variables={"order_id": order_id})


class ActionCancelOrder(Action):
    """Cancels the order the customer confirmed."""

    def name(self) -> str:
        return "action_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order_id = tracker.get_slot(CANCEL_PENDING_SLOT)
        customer_id = verified_customer_id(tracker)
        if not order_id or customer_id is None:
            tell_anonymous(dispatcher)
            return [SlotSet(CANCEL_PENDING_SLOT, None)]
        answer = await in_cdp_transaction(
            lambda session: cancel_confirmed(session, customer_id, order_id)
        )
        if answer is None:
            tell_anonymous(dispatcher)
        else:
            dispatcher.utter_message(response=answer.response, **answer.variables)
        return [SlotSet(CANCEL_PENDING_SLOT, None)]


class ActionKeepOrder(Action):
    """The customer changed their mind: the order stays as it is."""

    def name(self) -> str:
        return "action_keep_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(
            response="utter_order_kept", order_id=tracker.get_slot(CANCEL_PENDING_SLOT)
        )
        return [SlotSet(CANCEL_PENDING_SLOT, None)]


class ActionCheckChangeOrder(Action):
    """Offers what can change on an unshipped order, or says why it is too late."""

    def name(self) -> str:
        return "action_check_change_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        typed_ref = typed_order_ref(tracker)
        check = await in_cdp_transaction(
            lambda session: check_order_for(session, customer_id, typed_ref, "change")
        )
        if check is None:
            tell_anonymous(dispatcher)
            return []
        dispatcher.utter_message(response=check.answer.response, **check.answer.variables)
        return []
