"""The code senders: Twilio's Messages API as a local HTTP server sees it, the sender chosen
by the environment, and the outbox read through `python -m cdp outbox`."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import Engine

from cdp.cli import main
from cdp.db import transaction
from cdp.verification import senders
from cdp.verification.models import TargetType
from cdp.verification.senders import (
    CodeMessage,
    DeliveryFailed,
    OutboxSender,
    SenderMisconfigured,
    TwilioSmsSender,
    sender_for,
)
from cdp.verification.service import (
    Requester,
    VerificationMisconfigured,
    VerificationSettings,
    issue_code,
)

MESSAGE = CodeMessage(7, TargetType.PHONE, "+15551230001", "Your code is 123456.")


class TwilioApi:
    """A local HTTP server answering like Twilio's Messages API, with a status to choose."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        # One status per request, the last one repeated.
        self.statuses = [201]
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                api.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "form": parse_qs(body.decode()),
                    }
                )
                reply = json.dumps({"sid": "SM1", "status": "queued"}).encode()
                self.send_response(api.statuses[min(len(api.requests), len(api.statuses)) - 1])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def twilio_api() -> Iterator[TwilioApi]:
    api = TwilioApi()
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def test_the_twilio_sender_posts_the_sms_with_the_account_credentials(
    twilio_api: TwilioApi,
) -> None:
    sender = TwilioSmsSender("AC123", "secret-token", "+15550100000", api_url=twilio_api.url)
    sender.send(MESSAGE)
    [request] = twilio_api.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["form"] == {
        "To": ["+15551230001"],
        "From": ["+15550100000"],
        "Body": ["Your code is 123456."],
    }
    expected = base64.b64encode(b"AC123:secret-token").decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(senders, "RETRY_DELAYS_S", (0.01, 0.02))


@pytest.mark.usefixtures("fast_retries")
def test_a_twilio_error_or_an_unreachable_api_is_a_delivery_failure(twilio_api: TwilioApi) -> None:
    twilio_api.statuses = [400]
    sender = TwilioSmsSender("AC123", "secret-token", "+15550100000", api_url=twilio_api.url)
    with pytest.raises(DeliveryFailed, match="HTTP 400"):
        sender.send(MESSAGE)
    assert len(twilio_api.requests) == 1  # refused: not retried
    twilio_api.statuses = [503]
    with pytest.raises(DeliveryFailed, match="HTTP 503"):
        sender.send(MESSAGE)
    assert len(twilio_api.requests) == 4  # three attempts, then given up
    twilio_api.server.shutdown()
    twilio_api.server.server_close()
    with pytest.raises(DeliveryFailed, match="could not be reached"):
        sender.send(MESSAGE)


@pytest.mark.usefixtures("fast_retries")
def test_a_transient_twilio_failure_is_retried_once_delivered_never_again(
    twilio_api: TwilioApi,
) -> None:
    twilio_api.statuses = [500, 429, 201, 201]
    sender = TwilioSmsSender("AC123", "secret-token", "+15550100000", api_url=twilio_api.url)
    sender.send(MESSAGE)
    assert len(twilio_api.requests) == 3
    assert {r["form"]["Body"][0] for r in twilio_api.requests} == {MESSAGE.body}


def test_the_sender_is_chosen_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, demo: Engine, twilio_api: TwilioApi
) -> None:
    monkeypatch.delenv("VERIFICATION_SMS_SENDER", raising=False)
    assert isinstance(sender_for(TargetType.PHONE, demo), OutboxSender)
    assert isinstance(sender_for(TargetType.EMAIL, demo), OutboxSender)
    monkeypatch.setenv("VERIFICATION_SMS_SENDER", "twilio")
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_NUMBER"):
        monkeypatch.setenv(name, "")
    with pytest.raises(SenderMisconfigured, match="TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"):
        sender_for(TargetType.PHONE, demo)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC9")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("TWILIO_SMS_NUMBER", "+15550100000")
    monkeypatch.setenv("TWILIO_API_URL", twilio_api.url + "/")
    sender = sender_for(TargetType.PHONE, demo)
    assert isinstance(sender, TwilioSmsSender) and sender.api_url == twilio_api.url
    monkeypatch.setenv("VERIFICATION_SMS_SENDER", "pigeon")
    with pytest.raises(SenderMisconfigured, match="outbox or twilio"):
        sender_for(TargetType.PHONE, demo)


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("VERIFICATION_CODE_TTL_SECONDS", "0", "positive whole number"),
        ("VERIFICATION_MAX_ATTEMPTS", "five", "positive whole number"),
        ("VERIFICATION_MAX_CODES_PER_HOUR", "-1", "positive whole number"),
        ("VERIFICATION_CODE_KEY", "short", "at least 16"),
        ("VERIFICATION_MESSAGE", "no placeholder", "{code}"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, why: str
) -> None:
    monkeypatch.setenv("CDP_IDENTITY_SECRET", "a-secret-of-a-decent-length-here")
    monkeypatch.setenv(name, value)
    with pytest.raises(VerificationMisconfigured, match=name) as raised:
        VerificationSettings.from_env()
    assert why in str(raised.value)


def test_settings_default_and_need_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VERIFICATION_CODE_KEY", "CDP_IDENTITY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(VerificationMisconfigured, match="CDP_IDENTITY_SECRET"):
        VerificationSettings.from_env()
    monkeypatch.setenv("CDP_IDENTITY_SECRET", "a-secret-of-a-decent-length-here")
    settings = VerificationSettings.from_env()
    assert (settings.ttl.total_seconds(), settings.max_attempts, settings.max_codes_per_hour) == (
        600,
        5,
        3,
    )


def test_the_outbox_command_shows_the_codes_sent_to_a_value(
    demo: Engine,
    cdp_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CDP_DATABASE_URL", cdp_url)
    settings = VerificationSettings(key=b"verification-tests-key-0123456789")
    for target, kind in (("+15551230001", TargetType.PHONE), ("ana.diaz@example.com", "email")):
        with transaction(demo) as session:
            issued = issue_code(
                session, Requester.of("rest_sender", "dev-1"), kind, target, settings
            )
        OutboxSender(demo).send(issued.message)
    assert main(["outbox", "--to", "+1 (555) 123-0001", "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert row["to"] == "+15551230001" and row["type"] == "phone"
    assert "expires in 10 minutes" in row["body"]
    assert main(["outbox"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["outbox", "--to", "someone@example.org"]) == 0
    assert "empty for someone@example.org" in capsys.readouterr().out
    assert main(["outbox", "--to", "not a phone"]) == 1
    assert "--to: phone 'not a phone'" in capsys.readouterr().err
