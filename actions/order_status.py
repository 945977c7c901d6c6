"""Order status: the order named in the message, or the customer's latest open order.

The wording of each status is a response in domain.yml (`utter_order_status_<status>`); the
action only supplies the facts from the CDP (lines, total, address, carrier and tracking).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions import formatting
from actions.anonymous import tell_anonymous
from actions.cdp_access import in_cdp_transaction
from actions.identity import verified_customer_id
from actions.order_lookup import Answer, Found, look_up_order, typed_order_ref
from actions.repeat_order import OrderView
from cdp.orders.models import OrderStatus
from cdp.orders.service import latest_open_order
from cdp.orders.support import RefundStage, refund_state, shipment_of

STATUS_ANSWERS = {
    OrderStatus.PLACED: Answer(response="utter_order_status_placed"),
    OrderStatus.PAID: Answer(response="utter_order_status_paid"),
    OrderStatus.SHIPPED: Answer(response="utter_order_status_shipped"),
    OrderStatus.DELIVERED: Answer(response="utter_order_status_delivered"),
    OrderStatus.CANCELLED: Answer(response="utter_order_status_cancelled"),
    OrderStatus.RETURNED: Answer(response="utter_order_status_returned"),
}
SHIPPED_WITH_TRACKING = Answer(response="utter_order_status_shipped_tracked")
RETURNED_AND_REFUNDED = Answer(response="utter_order_status_returned_refunded")


def order_status_answer(
    session: Session, customer_id: str | None, typed_ref: str | None
) -> Answer | None:
    """What to say about the order; None for a visitor who is not verified."""
    lookup = look_up_order(session, customer_id, typed_ref, latest_open_order)
    if lookup.found is Found.ANONYMOUS:
        return None
    if lookup.found is Found.NOT_FOUND:
        return Answer(response="utter_order_not_found", variables={"order_ref": typed_ref})
    if lookup.order is None:
        return Answer(response="utter_no_open_order")
    order = lookup.order
    view = OrderView.of(order)
    answer = STATUS_ANSWERS[order.status].with_variables(
        order_id=view.order_id,
        placed_on=view.placed_on,
        lines=view.lines,
        total=view.total,
        delivery_address=view.delivery_address,
    )
    if order.status is OrderStatus.SHIPPED:
        shipment = shipment_of(session, order.customer_id, order.order_id)
        if shipment and shipment.get("tracking_number"):
            answer = SHIPPED_WITH_TRACKING.with_variables(
                **answer.variables,
                carrier=shipment.get("carrier") or "our carrier",
                tracking_number=shipment["tracking_number"],
            )
    if order.status is OrderStatus.RETURNED:
        refund = refund_state(session, order.customer_id, order.order_id)
        if refund.stage is RefundStage.ISSUED and refund.at is not None:
            answer = RETURNED_AND_REFUNDED.with_variables(
                **answer.variables,
                refunded_on=formatting.day(refund.at),
                refund=formatting.money(
                    refund.amount or order.total, refund.currency or order.currency
                ),
            )
    return answer


class ActionOrderStatus(Action):
    """Answers "where is my order", for the order named or the latest one on its way."""

    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        typed_ref = typed_order_ref(tracker)
        answer = await in_cdp_transaction(
            lambda session: order_status_answer(session, customer_id, typed_ref)
        )
        if answer is None:
            tell_anonymous(dispatcher)
        else:
            dispatcher.utter_message(response=answer.response, **answer.variables)
        return []
