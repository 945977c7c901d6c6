"""How a one-time code reaches the customer: the `CodeSender` interface and its senders.

Chosen per target type (docs/configuration.md): SMS by `VERIFICATION_SMS_SENDER` = `outbox`
(default) or `twilio`; emails go to the outbox (no email provider is wired in yet), and so
do the other emails the assistant sends (invoice copies, `queue_email`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Protocol

import requests
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp import clock
from cdp.db import transaction
from cdp.errors import CdpError
from cdp.verification.models import OutboxMessage, TargetType

SMS_SENDER_ENV = "VERIFICATION_SMS_SENDER"
DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
TWILIO_TIMEOUT_S = 10
SEND_ATTEMPTS = 3
RETRY_DELAYS_S = (0.5, 2.0)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class DeliveryFailed(CdpError):
    """The code could not be handed to the provider; the message says which and why."""


class SenderMisconfigured(CdpError):
    """A sender is chosen whose settings are missing or unknown."""


@dataclass(frozen=True)
class CodeMessage:
    """One code to deliver: where, what to say, and which code row it belongs to."""

    code_id: int
    target_type: TargetType
    recipient: str
    body: str


class CodeSender(Protocol):
    """Delivers one message; raises DeliveryFailed when the provider refused or was down."""

    def send(self, message: CodeMessage) -> None: ...


class OutboxSender:
    """Development sender: the message becomes a row of verification_outbox."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, message: CodeMessage) -> None:
        with transaction(self.engine) as session:
            session.add(
                OutboxMessage(
                    code_id=message.code_id,
                    target_type=message.target_type,
                    recipient=message.recipient,
                    body=message.body,
                    created_at=clock.utcnow(),
                )
            )


@dataclass(frozen=True)
class TwilioSmsSender:
    """Sends an SMS through Twilio's Messages API with the account's credentials."""

    account_sid: str
    auth_token: str
    from_number: str
    api_url: str = DEFAULT_TWILIO_API_URL

    @classmethod
    def from_env(cls) -> TwilioSmsSender:
        """TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_NUMBER (all required) and
        TWILIO_API_URL (optional), the variables the SMS channel uses too."""
        names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_NUMBER")
        values = {name: os.environ.get(name, "").strip() for name in names}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise SenderMisconfigured(
                f"{SMS_SENDER_ENV}=twilio needs {', '.join(missing)} to be set"
            )
        api_url = os.environ.get("TWILIO_API_URL", "").strip() or DEFAULT_TWILIO_API_URL
        return cls(*values.values(), api_url=api_url.rstrip("/"))

    def send(self, message: CodeMessage) -> None:
        """One SMS; a transient failure (HTTP 429 or 5xx, no connection, a timeout) is tried
        again, SEND_ATTEMPTS times in all, RETRY_DELAYS_S apart; DeliveryFailed after that or
        at once for any other refusal."""
        url = f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        form = {"To": message.recipient, "From": self.from_number, "Body": message.body}
        problem = ""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                reply = requests.post(
                    url,
                    data=form,
                    auth=(self.account_sid, self.auth_token),
                    timeout=TWILIO_TIMEOUT_S,
                )
            except requests.RequestException as error:
                problem = f"Twilio could not be reached: {error}"
            else:
                if reply.status_code < 300:
                    return
                problem = (
                    f"Twilio refused the SMS of code {message.code_id}: "
                    f"HTTP {reply.status_code} {reply.text[:300]}"
                )
                if reply.status_code not in TRANSIENT_STATUSES:
                    break
            if attempt < SEND_ATTEMPTS:
                time.sleep(RETRY_DELAYS_S[attempt - 1])
        raise DeliveryFailed(problem)


def sender_for(target_type: TargetType, engine: Engine) -> CodeSender:
    """The sender configured for this kind of target."""
    if target_type is TargetType.PHONE:
        choice = os.environ.get(SMS_SENDER_ENV, "").strip() or "outbox"
        if choice == "twilio":
            return TwilioSmsSender.from_env()
        if choice == "outbox":
            return OutboxSender(engine)
        raise SenderMisconfigured(f"{SMS_SENDER_ENV} must be outbox or twilio, got {choice!r}")
    return OutboxSender(engine)


def queue_email(session: Session, recipient: str, body: str) -> None:
    """Put an email that belongs to a CDP write (an invoice copy) in the outbox, in the
    caller's transaction: it is sent exactly when the write commits."""
    session.add(
        OutboxMessage(
            code_id=None,
            target_type=TargetType.EMAIL,
            recipient=recipient,
            body=body,
            created_at=clock.utcnow(),
        )
    )


def outbox_messages(session: Session, recipient: str | None = None) -> list[OutboxMessage]:
    """Outbox rows, oldest first, optionally only those to one recipient."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if recipient is not None:
        query = query.where(OutboxMessage.recipient == recipient)
    return list(session.scalars(query))
