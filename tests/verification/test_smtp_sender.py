"""The SMTP email sender against a real SMTP server (aiosmtpd) on a local port: plain,
STARTTLS and implicit TLS with a certificate made for the test, login, transient and
permanent refusals, and the settings read from the environment."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine, create_engine

from cdp.db import transaction
from cdp.verification import senders
from cdp.verification.models import TargetType
from cdp.verification.senders import (
    CodeMessage,
    DeliveryFailed,
    OutboxSender,
    SenderMisconfigured,
    SmtpEmailSender,
    sender_for,
)
from cdp.verification.service import Requester, VerificationSettings, issue_code
from tests.mail_server import MailHandler, MailServer, serve_mail
from tools.stack import free_port

MESSAGE = CodeMessage(42, TargetType.EMAIL, "ana.diaz@example.com", "Your code is 123456.")
FROM = "Northwind Corner <no-reply@northwind.example>"
USER, PASSWORD = "mailer", "s3cret-pass"


def check_login(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers a failed login with 535 itself.
    return AuthResult(success=good, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), standing in for a private CA."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture
def plain_server() -> Iterator[MailServer]:
    """No TLS, login offered without it (auth_require_tls off): a relay on a private network."""
    yield from serve_mail(
        MailHandler(),
        authenticator=check_login,
        auth_require_tls=False,
    )


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[MailServer]:
    yield from serve_mail(
        MailHandler(),
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=check_login,
    )


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(senders, "RETRY_DELAYS_S", (0.01, 0.02))


def test_the_code_email_reaches_the_server_with_its_headers(plain_server: MailServer) -> None:
    sender = SmtpEmailSender("127.0.0.1", plain_server.port, FROM, security="none")
    sender.send(MESSAGE)
    [(mail_from, recipients, email)] = plain_server.handler.delivered
    assert mail_from == "no-reply@northwind.example"
    assert recipients == ["ana.diaz@example.com"]
    assert email["Subject"] == "Your verification code"
    assert email["To"] == "ana.diaz@example.com"
    assert email["Message-ID"] == "<verification-code-42@northwind.example>"
    assert email.get_payload(decode=True).decode().strip() == "Your code is 123456."


def _starttls_sender(
    server: MailServer, certificate: tuple[Path, Path], password: str
) -> SmtpEmailSender:
    return SmtpEmailSender(
        "127.0.0.1",
        server.port,
        FROM,
        username=USER,
        password=password,
        ca_file=str(certificate[0]),
    )


def test_starttls_with_a_private_ca_and_a_login(
    starttls_server: MailServer, certificate: tuple[Path, Path]
) -> None:
    _starttls_sender(starttls_server, certificate, PASSWORD).send(MESSAGE)
    assert len(starttls_server.handler.delivered) == 1


def test_a_wrong_password_is_refused_at_once(
    starttls_server: MailServer, certificate: tuple[Path, Path]
) -> None:
    with pytest.raises(DeliveryFailed, match="535"):
        _starttls_sender(starttls_server, certificate, "wrong").send(MESSAGE)
    assert starttls_server.handler.delivered == []


def test_a_certificate_that_does_not_verify_stops_the_send(starttls_server: MailServer) -> None:
    """Without SMTP_CA_FILE the self-signed certificate is not trusted: nothing is sent in
    clear instead, and it is not retried."""
    sender = SmtpEmailSender("127.0.0.1", starttls_server.port, FROM)
    with pytest.raises(DeliveryFailed, match="TLS with the SMTP server"):
        sender.send(MESSAGE)
    assert starttls_server.handler.delivered == []


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    handler = MailHandler()
    for server in serve_mail(handler, ssl_context=_server_context(certificate)):
        sender = SmtpEmailSender(
            "127.0.0.1", server.port, FROM, security="ssl", ca_file=str(certificate[0])
        )
        sender.send(MESSAGE)
    assert len(handler.delivered) == 1


@pytest.mark.usefixtures("fast_retries")
def test_a_busy_server_is_tried_again_and_the_email_is_delivered_once(
    plain_server: MailServer,
) -> None:
    plain_server.handler.data_replies = ["451 4.3.0 try again later", "250 OK", "250 OK"]
    SmtpEmailSender("127.0.0.1", plain_server.port, FROM, security="none").send(MESSAGE)
    assert plain_server.handler.data_attempts == 2
    assert len(plain_server.handler.delivered) == 1


@pytest.mark.usefixtures("fast_retries")
def test_refusals_and_an_unreachable_server_are_delivery_failures(
    plain_server: MailServer,
) -> None:
    sender = SmtpEmailSender("127.0.0.1", plain_server.port, FROM, security="none")
    plain_server.handler.refused = {MESSAGE.recipient: "550 5.1.1 no such mailbox"}
    refused = r"refused the recipient of verification-code-42: \[550\]"
    with pytest.raises(DeliveryFailed, match=refused):
        sender.send(MESSAGE)
    plain_server.handler.refused = {}
    plain_server.handler.data_replies = ["554 5.7.1 rejected as spam"]
    with pytest.raises(DeliveryFailed, match=r"554 5\.7\.1 rejected as spam"):
        sender.send(MESSAGE)
    assert plain_server.handler.data_attempts == 1  # permanent: not retried
    plain_server.handler.data_replies = ["421 4.7.0 too busy"]
    with pytest.raises(DeliveryFailed, match="421"):
        sender.send(MESSAGE)
    assert plain_server.handler.data_attempts == 4  # three attempts, then given up
    closed = SmtpEmailSender("127.0.0.1", free_port(), FROM, security="none")
    with pytest.raises(DeliveryFailed, match="could not be reached"):
        closed.send(MESSAGE)
    assert plain_server.handler.delivered == []


def test_an_issued_code_is_emailed(
    demo: Engine,
    settings: VerificationSettings,
    plain_server: MailServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "VERIFICATION_EMAIL_SENDER": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(plain_server.port),
        "SMTP_SECURITY": "none",
        "SMTP_FROM": FROM,
        "VERIFICATION_EMAIL_SUBJECT": "Your Northwind Corner code",
    }.items():
        monkeypatch.setenv(name, value)
    with transaction(demo) as session:
        issued = issue_code(
            session, Requester.of("rest_sender", "dev-7"), "email", "Ana.Diaz@Example.com", settings
        )
    sender = sender_for(TargetType.EMAIL, demo)
    assert isinstance(sender, SmtpEmailSender)
    sender.send(issued.message)
    [(_, recipients, email)] = plain_server.handler.delivered
    assert recipients == ["ana.diaz@example.com"]
    assert email["Subject"] == "Your Northwind Corner code"
    body = email.get_payload(decode=True).decode()
    assert body.strip() == issued.message.body
    assert any(word.strip(".").isdigit() and len(word.strip(".")) == 6 for word in body.split())


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"SMTP_HOST": ""}, "needs SMTP_HOST"),
        ({"SMTP_FROM": ""}, "needs SMTP_FROM"),
        ({"SMTP_SECURITY": "tls1.0"}, "starttls, ssl or none, got 'tls1.0'"),
        ({"SMTP_PORT": "smtp"}, "port number, got 'smtp'"),
        ({"SMTP_PORT": "70000"}, "port number, got '70000'"),
        ({"SMTP_USERNAME": "mailer"}, "go together"),
        ({"SMTP_CA_FILE": "/no/such/ca.pem"}, "'/no/such/ca.pem' is not a readable file"),
    ],
)
def test_bad_smtp_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], problem: str
) -> None:
    base = {"VERIFICATION_EMAIL_SENDER": "smtp", "SMTP_HOST": "mail.example", "SMTP_FROM": FROM}
    for name in ("SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**base, **settings}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SenderMisconfigured, match=problem):
        sender_for(TargetType.EMAIL, create_engine("sqlite://"))


def test_the_email_sender_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine("sqlite://")
    for name in ("SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VERIFICATION_EMAIL_SENDER", "smtp")
    monkeypatch.setenv("SMTP_HOST", "mail.example")
    monkeypatch.setenv("SMTP_FROM", FROM)
    sender = sender_for(TargetType.EMAIL, engine)
    assert isinstance(sender, SmtpEmailSender)
    assert (sender.port, sender.security) == (587, "starttls")
    monkeypatch.setenv("SMTP_SECURITY", "ssl")
    assert sender_for(TargetType.EMAIL, engine).port == 465  # type: ignore[union-attr]
    monkeypatch.delenv("VERIFICATION_EMAIL_SENDER")
    assert isinstance(sender_for(TargetType.EMAIL, engine), OutboxSender)
    monkeypatch.setenv("VERIFICATION_EMAIL_SENDER", "carrier-pigeon")
    with pytest.raises(SenderMisconfigured, match="outbox or smtp, got 'carrier-pigeon'"):
        sender_for(TargetType.EMAIL, engine)
