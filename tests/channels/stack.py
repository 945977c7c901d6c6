"""The real assistant with every channel configured, and a recorder standing in for the
Graph API and Twilio's REST API (it only receives what the connectors send, and answers 200).

Signatures are made the way Messenger and Twilio make them: HMAC-SHA256 of the raw body with
the app secret, and Twilio's own `RequestValidator` over the public URL and the form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.request_validator import RequestValidator

from cdp.identity_token import mint_token
from tools.stack import (
    RunningServer,
    StackSettings,
    isolated_settings,
    seed_demo_cdp,
    start_action_server,
    start_rasa,
)
from tools.training import train

PUBLIC_URL = "https://chat.northwind-corner.example"
SMS_NUMBER = "+15550100000"
WHATSAPP_NUMBER = "+15550100001"


@dataclass
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Recorder:
    """Every request the connectors made to the (fake-free) outside world, in arrival order."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def matching(self, predicate: Callable[[Recorded], bool]) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if predicate(r)]

    def wait_for(
        self, predicate: Callable[[Recorded], bool], count: int = 1, timeout: float = 40
    ) -> list[Recorded]:
        """The matching requests once there are at least `count`, then a pause for extras."""
        deadline = time.monotonic() + timeout
        while len(self.matching(predicate)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {len(self.matching(predicate))} of {count} requests after {timeout} s"
                )
            time.sleep(0.1)
        time.sleep(1.5)  # anything sent twice would arrive right behind the first
        return self.matching(predicate)


@contextmanager
def recorder_server() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            with recorder.lock:
                recorder.requests.append(
                    Recorded(
                        parts.path,
                        parse_qs(parts.query),
                        dict(self.headers),
                        self.rfile.read(length),
                    )
                )
            body = json.dumps({"message_id": "m.recorded", "sid": "SMrecorded"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class ChannelStack:
    settings: StackSettings
    servers: dict[str, RunningServer]
    recorder: Recorder

    @property
    def env(self) -> dict[str, str]:
        return self.settings.extra_env

    def token(self, customer_id: str) -> str:
        return mint_token(customer_id, self.settings.identity_secret, 600)

    # Messenger -----------------------------------------------------------------------------
    def messenger_post(
        self, body: bytes, secret: str | None = None, **headers: str
    ) -> requests.Response:
        key = (self.env["MESSENGER_APP_SECRET"] if secret is None else secret).encode()
        signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return requests.post(
            f"{self.settings.rasa_url}/webhooks/facebook/webhook",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signature,
                **headers,
            },
            timeout=10,
        )

    def graph_sends(self, psid: str) -> list[dict[str, Any]]:
        """The Send API messages that went to this PSID (typing indicators aside)."""
        sent = self.recorder.matching(lambda r: r.path.endswith("/me/messages"))
        return [r.json()["message"] for r in sent if r.json()["recipient"]["id"] == psid]

    def wait_graph(self, psid: str, count: int = 1) -> list[dict[str, Any]]:
        self.recorder.wait_for(
            lambda r: r.path.endswith("/me/messages") and r.json()["recipient"]["id"] == psid,
            count,
        )
        return self.graph_sends(psid)

    # Twilio --------------------------------------------------------------------------------
    def twilio_post(
        self,
        form: dict[str, str],
        channel: str = "twilio",
        *,
        auth_token: str | None = None,
        signed_url: str | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        path = f"/webhooks/{channel}/webhook"
        validator = RequestValidator(auth_token or self.env["TWILIO_AUTH_TOKEN"])
        if signature is None:
            signature = validator.compute_signature(signed_url or PUBLIC_URL + path, form)
        headers = {"X-Twilio-Signature": signature} if signature else {}
        return requests.post(
            f"{self.settings.rasa_url}{path}", data=form, headers=headers, timeout=10
        )

    def texts_to(self, phone: str) -> list[dict[str, str]]:
        sent = self.recorder.matching(lambda r: r.path.endswith("/Messages.json"))
        return [r.form() for r in sent if r.form().get("To") == phone]

    def wait_texts(self, phone: str, count: int = 1) -> list[dict[str, str]]:
        self.recorder.wait_for(
            lambda r: r.path.endswith("/Messages.json") and r.form().get("To") == phone, count
        )
        return self.texts_to(phone)


def channel_environment(recorder: Recorder) -> dict[str, str]:
    return {
        "MESSENGER_VERIFY_TOKEN": secrets.token_hex(8),
        "MESSENGER_APP_SECRET": secrets.token_hex(16),
        "MESSENGER_PAGE_ACCESS_TOKEN": "page-" + secrets.token_hex(8),
        "MESSENGER_GRAPH_API_URL": f"{recorder.url}/graph/v18.0",
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_SMS_NUMBER": SMS_NUMBER,
        "TWILIO_WHATSAPP_NUMBER": WHATSAPP_NUMBER,
        "TWILIO_API_URL": f"{recorder.url}/twilio",
        "CHANNELS_PUBLIC_URL": PUBLIC_URL,
        # Redelivery ids and offered choices in Redis, shared as they would be by replicas.
        "RASA_LOCK_STORE_TYPE": "redis",
    }


@contextmanager
def channel_stack(tmp: Path) -> Iterator[ChannelStack]:
    model = train()
    with ExitStack() as stack:
        recorder = stack.enter_context(recorder_server())
        settings = isolated_settings(
            model, f"sqlite:///{tmp / 'cdp.sqlite3'}", f"sqlite:///{tmp / 'tracker.sqlite3'}", tmp
        )
        settings = replace(settings, extra_env=channel_environment(recorder))
        seed_demo_cdp(settings, quiet=True)
        servers = {"action-server": start_action_server(settings)}
        stack.callback(lambda: [server.stop() for server in servers.values()])
        # A shared, busy machine can take minutes to load the model.
        servers["rasa"] = start_rasa(settings, timeout=600)
        yield ChannelStack(settings, servers, recorder)
