"""After-sales: refunds (request and status), invoice copies, payment problems, complaints.

Answers come from the CDP where it knows (a refund issued, a failed payment with its
reason); requests are recorded as events once per message (cdp.orders.support). Payment
problems and complaints offer a person in the first answer, not after a detour.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import formatting
from actions.anonymous import tell_anonymous
from actions.cdp_access import in_cdp_transaction
from actions.delivery import deliver
from actions.identity import identified_profile, verified_customer_id
from actions.order_lookup import Answer, Found, look_up_order, request_key, typed_order_ref
from cdp.orders.models import Order, OrderStatus
from cdp.orders.service import CHANGEABLE_STATUSES
from cdp.orders.support import (
    REFUNDABLE_STATUSES,
    RefundStage,
    recent_failed_payments,
    record_complaint,
    refund_state,
    request_invoice_copy,
    request_refund,
)
from cdp.verification.models import TargetType
from cdp.verification.senders import CodeMessage


def _latest_with_status(statuses: tuple[OrderStatus, ...]):  # type: ignore[no-untyped-def]
    """A default-order finder: the customer's most recent order in one of `statuses`."""

    def latest(session: Session, customer_id: str) -> Order | None:
        return session.scalar(
            select(Order)
            .where(Order.customer_id == customer_id, Order.status.in_(statuses))
            .order_by(Order.placed_at.desc(), Order.order_id.desc())
            .limit(1)
        )

    return latest


def _not_found(found: Found, typed_ref: str | None, no_default: Answer) -> Answer:
    if found is Found.NOT_FOUND:
        return Answer(response="utter_order_not_found", variables={"order_ref": typed_ref})
    return no_default


def refund_answer(
    session: Session, customer_id: str | None, typed_ref: str | None, channel: str | None
) -> Answer | None:
    """Refund status of the order, opening a request for a delivered one that has none."""
    lookup = look_up_order(
        session, customer_id, typed_ref, _latest_with_status(REFUNDABLE_STATUSES)
    )
    if lookup.found is Found.ANONYMOUS:
        return None
    if lookup.order is None:
        return _not_found(lookup.found, typed_ref, Answer(response="utter_refund_no_order"))
    order = lookup.order
    variables: dict[str, Any] = {
        "order_id": order.order_id,
        "total": formatting.money(order.total, order.currency),
    }
    if order.status is OrderStatus.CANCELLED:
        return Answer(response="utter_refund_cancelled_order", variables=variables)
    if order.status in CHANGEABLE_STATUSES:
        return Answer(response="utter_refund_not_delivered_cancel", variables=variables)
    if order.status is OrderStatus.SHIPPED:
        return Answer(response="utter_refund_not_delivered_shipped", variables=variables)
    state = refund_state(session, order.customer_id, order.order_id)
    if state.stage is RefundStage.ISSUED and state.at is not None:
        amount = formatting.money(state.amount or order.total, state.currency or order.currency)
        return Answer(
            response="utter_refund_issued",
            variables={**variables, "refund": amount, "refunded_on": formatting.day(state.at)},
        )
    if state.stage is RefundStage.REQUESTED and state.at is not None:
        requested_on = formatting.day(state.at)
        return Answer(
            response="utter_refund_in_progress",
            variables={**variables, "requested_on": requested_on},
        )
    request_refund(session, order, channel)
    return Answer(response="utter_refund_requested", variables=variables)


def invoice_copy_text(order: Order) -> str:
    """The email body of an invoice copy: the order as it was invoiced."""
    lines = formatting.order_lines(order.lines, order.currency)
    total = formatting.money(order.total, order.currency)
    return (
        f"Copy of the invoice for order {order.order_id} of {formatting.day(order.placed_at)}\n"
        f"{lines}\nTotal {total}"
    )


@dataclass(frozen=True)
class InvoiceReply:
    """The answer, and the invoice email to send once the request is committed (None when
    there is nothing to send, or it was sent for this message already)."""

    answer: Answer | None
    email: CodeMessage | None = None


def invoice_answer(
    session: Session, customer_id: str | None, typed_ref: str | None, key: str, channel: str | None
) -> InvoiceReply:
    """Record a request for a copy of the order's invoice, once per request, and make the
    email of it for the account's email address."""
    lookup = look_up_order(
        session,
        customer_id,
        typed_ref,
        _latest_with_status(tuple(s for s in OrderStatus if s is not OrderStatus.CANCELLED)),
    )
    if lookup.found is Found.ANONYMOUS:
        return InvoiceReply(None)
    if lookup.order is None or lookup.profile is None:
        return InvoiceReply(
            _not_found(lookup.found, typed_ref, Answer(response="utter_invoice_no_order"))
        )
    order = lookup.order
    if order.status is OrderStatus.CANCELLED:
        return InvoiceReply(
            Answer(response="utter_invoice_cancelled_order", variables={"order_id": order.order_id})
        )
    email = lookup.profile.email
    if not email:
        return InvoiceReply(
            Answer(response="utter_invoice_no_email", variables={"order_id": order.order_id})
        )
    sent = Answer(
        response="utter_invoice_sent", variables={"order_id": order.order_id, "email": email}
    )
    if not request_invoice_copy(session, order, key, channel):
        return InvoiceReply(sent)  # this message was answered before: sent then
    # One Message-ID per request, so a mail system can tell a repeated email.
    request = hashlib.sha256(key.encode()).hexdigest()[:16]
    message = CodeMessage(
        code_id=None,
        target_type=TargetType.EMAIL,
        recipient=email,
        body=invoice_copy_text(order),
        subject=f"Copy of the invoice for order {order.order_id}",
        reference=f"invoice-{order.order_id}-{request}",
    )
    return InvoiceReply(sent, message)


def payment_issue_answer(session: Session, customer_id: str | None) -> Answer | None:
    """The latest failed payment of the last 30 days, with its order and reason."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    failed = recent_failed_payments(session, profile.customer_id)
    if not failed:
        return Answer(response="utter_payment_issue_none_found")
    latest = failed[0].properties
    amount, currency = latest.get("amount"), latest.get("currency")
    return Answer(
        response="utter_payment_issue_failed",
        variables={
            "order_id": latest.get("order_id") or "your order",
            "amount": formatting.money(amount, currency) if amount and currency else "the amount",
            "reason": str(latest.get("reason") or "declined").replace("_", " "),
            "card_last4": latest.get("card_last4") or "on file",
            "failed_on": formatting.day(failed[0].occurred_at),
        },
    )


def complaint_answer(
    session: Session, customer_id: str | None, typed_ref: str | None, key: str, channel: str | None
) -> Answer:
    """Note the complaint for a verified customer; everyone is offered a person at once."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return Answer(response="utter_complaint_offer_person")
    order_ref = None
    if typed_ref is not None:
        lookup = look_up_order(session, customer_id, typed_ref, lambda *_: None)
        order_ref = lookup.order.order_id if lookup.order else None
    record_complaint(session, profile.customer_id, key, order_ref, channel)
    return Answer(response="utter_complaint_offer_person")


def say(dispatcher: CollectingDispatcher, answer: Answer | None) -> list[EventType]:
    """Say the answer, or the anonymous answer for None; these actions set no slots."""
    if answer is None:
        tell_anonymous(dispatcher)
    else:
        dispatcher.utter_message(response=answer.response, **answer.variables)
    return []


class ActionRefund(Action):
    """Where the refund of an order stands, or a new refund request for a delivered one."""

    def name(self) -> str:
        return "action_refund"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id, typed_ref = verified_customer_id(tracker), typed_order_ref(tracker)
        channel = tracker.get_latest_input_channel()
        answer = await in_cdp_transaction(
            lambda session: refund_answer(session, customer_id, typed_ref, channel)
        )
        return say(dispatcher, answer)


class ActionInvoice(Action):
    """Sends a copy of an order's invoice to the email on the account."""

    def name(self) -> str:
        return "action_invoice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id, typed_ref = verified_customer_id(tracker), typed_order_ref(tracker)
        key, channel = request_key(tracker), tracker.get_latest_input_channel()
        reply = await in_cdp_transaction(
            lambda session: invoice_answer(session, customer_id, typed_ref, key, channel)
        )
        answer = reply.answer
        if reply.email is not None and answer is not None and not await deliver(reply.email):
            answer = Answer(
                response="utter_invoice_not_sent",
                variables={"order_id": answer.variables["order_id"]},
            )
        return say(dispatcher, answer)


class ActionPaymentIssue(Action):
    """Explains a recent failed payment from the CDP and offers a person straight away."""

    def name(self) -> str:
        return "action_payment_issue"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        answer = await in_cdp_transaction(
            lambda session: payment_issue_answer(session, customer_id)
        )
        return say(dispatcher, answer)


class ActionComplaint(Action):
    """Records the complaint (verified customers) and offers a person in the first answer."""

    def name(self) -> str:
        return "action_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id, typed_ref = verified_customer_id(tracker), typed_order_ref(tracker)
        key, channel = request_key(tracker), tracker.get_latest_input_channel()
        answer = await in_cdp_transaction(
            lambda session: complaint_answer(session, customer_id, typed_ref, key, channel)
        )
        return say(dispatcher, answer)
