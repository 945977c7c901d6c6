"""How a one-time code reaches the customer: the `CodeSender` interface and its senders.

Chosen per target type (docs/configuration.md): SMS by `VERIFICATION_SMS_SENDER` = `outbox`
(default) or `twilio`; email by `VERIFICATION_EMAIL_SENDER` = `outbox` (default) or `smtp`.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import requests
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cdp import clock
from cdp.db import transaction
from cdp.errors import CdpError
from cdp.verification.models import OutboxMessage, TargetType

SMS_SENDER_ENV = "VERIFICATION_SMS_SENDER"
EMAIL_SENDER_ENV = "VERIFICATION_EMAIL_SENDER"
DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
TWILIO_TIMEOUT_S = 10
SEND_ATTEMPTS = 3
RETRY_DELAYS_S = (0.5, 2.0)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
SMTP_TIMEOUT_S = 10
SMTP_SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_EMAIL_SUBJECT = "Your verification code"


class DeliveryFailed(CdpError):
    """The code could not be handed to the provider; the message says which and why."""


class SenderMisconfigured(CdpError):
    """A sender is chosen whose settings are missing or unknown."""


class _TransientFailure(Exception):
    """One attempt failed in a way that may pass (busy provider, lost connection)."""


def _deliver_with_retries(attempt: Callable[[], None]) -> None:
    """Run one delivery attempt, again after a transient failure, SEND_ATTEMPTS times in all,
    RETRY_DELAYS_S apart; DeliveryFailed after that. An attempt that raises DeliveryFailed (a
    refusal that won't pass) is not repeated, and a successful one never is: the provider
    accepted the message, so repeating it would deliver it twice."""
    problem = ""
    for number in range(1, SEND_ATTEMPTS + 1):
        try:
            attempt()
            return
        except _TransientFailure as failure:
            problem = str(failure)
        if number < SEND_ATTEMPTS:
            time.sleep(RETRY_DELAYS_S[number - 1])
    raise DeliveryFailed(problem)


@dataclass(frozen=True)
class CodeMessage:
    """One message to deliver: where, what to say, and what it is: a one-time code (its row,
    `code_id`) or another email of the assistant, named by `reference` (an invoice copy)."""

    code_id: int | None
    target_type: TargetType
    recipient: str
    body: str
    subject: str | None = None
    reference: str | None = None

    @property
    def label(self) -> str:
        """What the message is, for errors, logs and the email's Message-ID."""
        return self.reference or f"verification-code-{self.code_id}"


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
        """One SMS; HTTP 429 or 5xx, no connection or a timeout are transient failures."""
        url = f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        form = {"To": message.recipient, "From": self.from_number, "Body": message.body}

        def attempt() -> None:
            try:
                reply = requests.post(
                    url,
                    data=form,
                    auth=(self.account_sid, self.auth_token),
                    timeout=TWILIO_TIMEOUT_S,
                )
            except requests.RequestException as error:
                raise _TransientFailure(f"Twilio could not be reached: {error}") from error
            if reply.status_code < 300:
                return
            problem = (
                f"Twilio refused the SMS of code {message.code_id}: "
                f"HTTP {reply.status_code} {reply.text[:300]}"
            )
            if reply.status_code in TRANSIENT_STATUSES:
                raise _TransientFailure(problem)
            raise DeliveryFailed(problem)

        _deliver_with_retries(attempt)


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


@dataclass(frozen=True)
class SmtpEmailSender:
    """Sends an email through an SMTP relay (the company's mail server or a provider's)."""

    host: str
    port: int
    from_address: str
    security: str = "starttls"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    subject: str = DEFAULT_EMAIL_SUBJECT

    @classmethod
    def from_env(cls) -> SmtpEmailSender:
        """SMTP_HOST and SMTP_FROM (required); SMTP_SECURITY = starttls (default), ssl or none;
        SMTP_PORT (default 587, 465 or 25 to match); SMTP_USERNAME and SMTP_PASSWORD (both or
        neither); SMTP_CA_FILE for a relay whose certificate a private CA signed;
        VERIFICATION_EMAIL_SUBJECT."""
        missing = [name for name in ("SMTP_HOST", "SMTP_FROM") if not _env(name)]
        if missing:
            raise SenderMisconfigured(
                f"{EMAIL_SENDER_ENV}=smtp needs {', '.join(missing)} to be set"
            )
        security = _env("SMTP_SECURITY") or "starttls"
        if security not in SMTP_SECURITY_PORTS:
            raise SenderMisconfigured(
                f"SMTP_SECURITY must be starttls, ssl or none, got {security!r}"
            )
        port_text = _env("SMTP_PORT") or str(SMTP_SECURITY_PORTS[security])
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SenderMisconfigured(f"SMTP_PORT must be a port number, got {port_text!r}")
        username, password = _env("SMTP_USERNAME"), os.environ.get("SMTP_PASSWORD", "")
        if bool(username) != bool(password):
            raise SenderMisconfigured("SMTP_USERNAME and SMTP_PASSWORD go together: set both")
        ca_file = _env("SMTP_CA_FILE")
        if ca_file and not os.path.isfile(ca_file):
            raise SenderMisconfigured(f"SMTP_CA_FILE {ca_file!r} is not a readable file")
        return cls(
            host=_env("SMTP_HOST"),
            port=int(port_text),
            from_address=_env("SMTP_FROM"),
            security=security,
            username=username,
            password=password,
            ca_file=ca_file,
            subject=_env("VERIFICATION_EMAIL_SUBJECT") or DEFAULT_EMAIL_SUBJECT,
        )

    def email_for(self, message: CodeMessage) -> EmailMessage:
        """The email of one message. Its Message-ID names the code or the reference, so a mail
        system that sees the same email twice can tell."""
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.recipient
        email["Subject"] = message.subject or self.subject
        domain = self.from_address.rpartition("@")[2].strip("> ") or self.host
        email["Message-ID"] = f"<{message.label}@{domain}>"
        email.set_content(message.body)
        return email

    def _connect(self, context: ssl.SSLContext) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_S, context=context)
        return smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_S)

    def send(self, message: CodeMessage) -> None:
        """One email. A 4xx reply, a lost connection or a timeout is a transient failure; a
        5xx reply (refused sender or recipient, failed login) or a certificate that does not
        verify is not."""
        email = self.email_for(message)
        context = ssl.create_default_context(cafile=self.ca_file or None)
        where = f"the SMTP server {self.host}:{self.port}"

        def attempt() -> None:
            try:
                with self._connect(context) as client:
                    if self.security == "starttls":
                        client.starttls(context=context)
                    if self.username:
                        client.login(self.username, self.password)
                    client.send_message(email)
            except smtplib.SMTPRecipientsRefused as error:
                codes = [code for code, _ in error.recipients.values()]
                problem = f"{where} refused the recipient of {message.label}: {codes}"
                if all(400 <= code < 500 for code in codes):
                    raise _TransientFailure(problem) from error
                raise DeliveryFailed(problem) from error
            except smtplib.SMTPResponseException as error:
                reply = error.smtp_error
                text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
                problem = f"{where} refused the email of {message.label}: {error.smtp_code} {text}"
                if 400 <= error.smtp_code < 500:
                    raise _TransientFailure(problem) from error
                raise DeliveryFailed(problem) from error
            except smtplib.SMTPNotSupportedError as error:
                raise DeliveryFailed(f"{where} does not support {error}") from error
            except ssl.SSLError as error:
                raise DeliveryFailed(f"TLS with {where} failed: {error}") from error
            except (smtplib.SMTPServerDisconnected, OSError) as error:
                raise _TransientFailure(f"{where} could not be reached: {error}") from error

        _deliver_with_retries(attempt)


def sender_for(target_type: TargetType, engine: Engine) -> CodeSender:
    """The sender configured for this kind of target: the outbox unless a provider is chosen."""
    if target_type is TargetType.PHONE:
        variable, provider, make = SMS_SENDER_ENV, "twilio", TwilioSmsSender.from_env
    else:
        variable, provider, make = EMAIL_SENDER_ENV, "smtp", SmtpEmailSender.from_env
    choice = os.environ.get(variable, "").strip() or "outbox"
    if choice == provider:
        return make()
    if choice == "outbox":
        return OutboxSender(engine)
    raise SenderMisconfigured(f"{variable} must be outbox or {provider}, got {choice!r}")


def outbox_messages(session: Session, recipient: str | None = None) -> list[OutboxMessage]:
    """Outbox rows, oldest first, optionally only those to one recipient."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if recipient is not None:
        query = query.where(OutboxMessage.recipient == recipient)
    return list(session.scalars(query))
