"""Refunds, invoice copies, payment problems and complaints against the real demo CDP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from actions.support import ActionComplaint, ActionInvoice, ActionPaymentIssue, ActionRefund
from cdp.db import transaction
from cdp.events.models import Event
from cdp.verification import senders
from cdp.verification.models import TargetType
from cdp.verification.senders import outbox_messages
from tests.actions.order_messages import ANONYMOUS, run, said
from tests.mail_server import MailHandler, MailServer, serve_mail

pytestmark = pytest.mark.usefixtures("demo_cdp")

ANA, BEN, CHLOE, MARCUS, SOFIA = "C-1001", "C-1002", "C-1003", "C-1005", "C-1006"


def events_of(engine: Engine, customer_id: str, event_type: str) -> list[Event]:
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(Event).where(Event.customer_id == customer_id, Event.type == event_type)
            )
        )


async def test_a_refund_already_issued_is_reported_from_the_cdp() -> None:
    message, _ = await run(ActionRefund(), said("refund", SOFIA))  # her returned order
    assert message["response"] == "utter_refund_issued"
    assert (message["order_id"], message["refund"]) == ("O-5008", "€59.00")
    assert message["refunded_on"] == "16 Nov 2026"


async def test_a_delivered_order_gets_one_refund_request(demo_cdp: Engine) -> None:
    message, _ = await run(ActionRefund(), said("refund", ANA, {"order_id": "O-5004"}))
    assert (message["response"], message["total"]) == ("utter_refund_requested", "$56.00")
    message, _ = await run(
        ActionRefund(), said("refund", ANA, {"order_id": "5004"}, message_id="m-2")
    )
    assert message["response"] == "utter_refund_in_progress"
    requests = events_of(demo_cdp, ANA, "refund_requested")
    assert [event.properties["order_id"] for event in requests] == ["O-5004"]


@pytest.mark.parametrize(
    ("customer", "order_id", "response"),
    [
        (BEN, "O-5011", "utter_refund_not_delivered_cancel"),
        (MARCUS, "O-5009", "utter_refund_not_delivered_shipped"),
        (CHLOE, "O-5010", "utter_refund_cancelled_order"),
        (ANA, "O-5011", "utter_order_not_found"),
    ],
)
async def test_orders_not_to_refund_say_what_to_do_instead(
    demo_cdp: Engine, customer: str, order_id: str, response: str
) -> None:
    message, _ = await run(ActionRefund(), said("refund", customer, {"order_id": order_id}))
    assert message["response"] == response
    assert events_of(demo_cdp, customer, "refund_requested") == []


async def test_no_delivered_order_to_refund() -> None:
    message, _ = await run(ActionRefund(), said("refund", "C-1004"))
    assert message["response"] == "utter_refund_no_order"


async def test_an_invoice_copy_goes_to_the_account_email_once_per_request(
    demo_cdp: Engine,
) -> None:
    for _ in range(2):  # the same message redelivered
        message, _ = await run(ActionInvoice(), said("invoice", ANA, {"order_id": "#5001"}))
        assert message["response"] == "utter_invoice_sent"
        assert (message["order_id"], message["email"]) == ("O-5001", "ana.diaz@example.com")
    assert len(events_of(demo_cdp, ANA, "invoice_copy_requested")) == 1
    with transaction(demo_cdp) as session:
        [email] = outbox_messages(session, "ana.diaz@example.com")
        assert email.target_type is TargetType.EMAIL
        assert email.body.startswith("Copy of the invoice for order O-5001 of ")
        assert "Total $" in email.body
    message, _ = await run(ActionInvoice(), said("invoice", CHLOE, {"order_id": "O-5010"}))
    assert message["response"] == "utter_invoice_cancelled_order"
    message, _ = await run(ActionInvoice(), said("invoice", ANA, {"order_id": "O-5010"}))
    assert message["response"] == "utter_order_not_found"


@pytest.fixture
def smtp_relay(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailServer]:
    """Emails go through SMTP to a real local SMTP server, as in production."""
    for server in serve_mail(MailHandler()):
        for name, value in {
            "VERIFICATION_EMAIL_SENDER": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(server.port),
            "SMTP_SECURITY": "none",
            "SMTP_FROM": "Northwind Corner <orders@northwind.example>",
        }.items():
            monkeypatch.setenv(name, value)
        yield server


async def test_an_invoice_copy_is_emailed_through_smtp_once_per_request(
    demo_cdp: Engine, smtp_relay: MailServer
) -> None:
    for _ in range(2):  # the same message redelivered
        message, _ = await run(ActionInvoice(), said("invoice", ANA, {"order_id": "O-5001"}))
        assert message["response"] == "utter_invoice_sent"
    [(sender, recipients, email)] = smtp_relay.handler.delivered
    assert (sender, recipients) == ("orders@northwind.example", ["ana.diaz@example.com"])
    assert email["Subject"] == "Copy of the invoice for order O-5001"
    assert re.fullmatch(r"<invoice-O-5001-[0-9a-f]{16}@northwind\.example>", email["Message-ID"])
    assert "Total $" in email.get_payload(decode=True).decode()
    with transaction(demo_cdp) as session:
        assert outbox_messages(session) == []  # SMTP, not the development outbox


async def test_an_invoice_copy_that_cannot_be_sent_says_so(
    demo_cdp: Engine, smtp_relay: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(senders, "RETRY_DELAYS_S", (0.01, 0.02))
    smtp_relay.handler.refused = {"ana.diaz@example.com": "550 5.1.1 no such mailbox"}
    message, _ = await run(ActionInvoice(), said("invoice", ANA, {"order_id": "O-5001"}))
    assert (message["response"], message["order_id"]) == ("utter_invoice_not_sent", "O-5001")
    assert len(events_of(demo_cdp, ANA, "invoice_copy_requested")) == 1
    smtp_relay.handler.refused = {}
    message, _ = await run(
        ActionInvoice(), said("invoice", ANA, {"order_id": "O-5001"}, message_id="m-again")
    )
    assert message["response"] == "utter_invoice_sent"  # asked again: a new request, sent
    assert len(smtp_relay.handler.delivered) == 1


async def test_a_failed_payment_is_explained_and_a_person_offered() -> None:
    message, _ = await run(ActionPaymentIssue(), said("payment_issue", BEN))
    assert message["response"] == "utter_payment_issue_failed"
    assert (message["order_id"], message["amount"]) == ("O-5011", "$61.75")
    assert (message["card_last4"], message["reason"]) == ("4242", "card declined")
    message, _ = await run(ActionPaymentIssue(), said("payment_issue", ANA))
    assert message["response"] == "utter_payment_issue_none_found"


async def test_a_complaint_is_noted_once_and_a_person_offered(demo_cdp: Engine) -> None:
    for _ in range(2):
        message, _ = await run(ActionComplaint(), said("complaint", ANA, {"order_id": "O-5007"}))
        assert message["response"] == "utter_complaint_offer_person"
    complaints = events_of(demo_cdp, ANA, "complaint_received")
    assert [event.properties for event in complaints] == [{"order_id": "O-5007"}]
    await run(ActionComplaint(), said("complaint", ANA, {"order_id": "O-5011"}, message_id="m-2"))
    foreign = events_of(demo_cdp, ANA, "complaint_received")[-1]
    assert foreign.properties == {}  # someone else's order id is not recorded


@pytest.mark.parametrize("action", [ActionRefund(), ActionInvoice(), ActionPaymentIssue()])
async def test_anonymous_visitors_get_the_shared_answer(action: object) -> None:
    message, _ = await run(action, said("refund", None, {"order_id": "O-5008"}))
    assert message["response"] == ANONYMOUS
    assert "order_id" not in message


async def test_an_anonymous_complaint_still_gets_a_person(demo_cdp: Engine) -> None:
    message, _ = await run(ActionComplaint(), said("complaint", None))
    assert message["response"] == "utter_complaint_offer_person"
    with transaction(demo_cdp) as session:
        assert session.scalars(select(Event).where(Event.type == "complaint_received")).all() == []
