"""A real CDP with the demo customers, a real console server, and a recording Rasa API.

The Rasa stand-in answers `POST /conversations/{id}/execute` by running the real handoff
actions' database work (what the action server does when Rasa runs them) and records what
the customer would have been sent; `fail_with` makes it answer an error instead. The real
Rasa is used by tests/e2e/test_handoff.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from sqlalchemy import Engine

from actions.handoff import ending_to_announce, relay_pending
from cdp.db import transaction
from cdp.handoff.models import AgentRole
from cdp.handoff.service import create_agent
from cdp.importer import import_file
from tools.paths import ACTIONS_PYTHON, REPO
from tools.stack import free_port

DEMO_FILE = REPO / "cdp" / "seed" / "demo_customers.jsonl"
RASA_TOKEN = "rasa-test-token"
INTERNAL_TOKEN = "internal-test-token"
PASSWORDS = {"ava": "ava-password", "leo": "leo-password", "sam": "sam-password"}


@dataclass
class RecordingRasa:
    engine: Engine
    calls: list[tuple[str, str]] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail_with: int | None = None
    url: str = ""

    def execute(self, conversation_id: str, action: str) -> int:
        self.calls.append((conversation_id, action))
        if self.fail_with is not None:
            return self.fail_with
        now = datetime.now(timezone.utc)
        with transaction(self.engine) as session:
            if action == "action_handoff_relay":
                texts = relay_pending(session, conversation_id, now)
            else:
                ended = ending_to_announce(session, conversation_id, now)
                texts = [f"<{ended.value}>"] if ended else []
        self.sent.extend((conversation_id, text) for text in texts)
        return 200


def _handler(rasa: RecordingRasa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urlparse(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            query = parse_qs(url.query)
            parts = url.path.split("/")
            ok = query.get("token") == [RASA_TOKEN] and query.get("output_channel") == ["latest"]
            status = rasa.execute(parts[2], body["name"]) if ok else 401
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_GET(self) -> None:  # the tracker, for reconciliation: no events
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"events": []}')

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def demo_engine(cdp_engine: Engine) -> Engine:
    with transaction(cdp_engine) as session:
        import_file(session, DEMO_FILE)
        now = datetime.now(timezone.utc)
        create_agent(
            session, "ava", "Ava", AgentRole.AGENT, ["general", "vip_care"], PASSWORDS["ava"], now
        )
        create_agent(session, "leo", "Leo", AgentRole.AGENT, ["support_fr"], PASSWORDS["leo"], now)
        create_agent(session, "sam", "Sam", AgentRole.SUPERVISOR, [], PASSWORDS["sam"], now)
    return cdp_engine


@pytest.fixture
def rasa_api(demo_engine: Engine) -> Iterator[RecordingRasa]:
    rasa = RecordingRasa(demo_engine)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rasa))
    rasa.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rasa
    server.shutdown()


@dataclass
class ConsoleServer:
    url: str
    process: subprocess.Popen[bytes]

    def login(self, username: str) -> requests.Session:
        client = requests.Session()
        reply = client.post(
            f"{self.url}/api/login",
            json={"username": username, "password": PASSWORDS[username]},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return client

    def internal(
        self, path: str, body: dict | None = None, token: str = INTERNAL_TOKEN
    ) -> requests.Response:
        return requests.post(
            f"{self.url}{path}", json=body or {}, headers={"X-Handoff-Token": token}, timeout=10
        )


@pytest.fixture
def console(cdp_url: str, rasa_api: RecordingRasa, tmp_path: Path) -> Iterator[ConsoleServer]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CDP_DATABASE_URL": cdp_url,
        "CONSOLE_SECRET": "console-test-secret",
        "CONSOLE_PORT": str(port),
        "RASA_URL": rasa_api.url,
        "RASA_API_TOKEN": RASA_TOKEN,
        "HANDOFF_CONSOLE_TOKEN": INTERNAL_TOKEN,
        "CONSOLE_SCAN_SECONDS": "0.2",
    }
    log = (tmp_path / "console.log").open("wb")
    process = subprocess.Popen(
        [str(ACTIONS_PYTHON), "-m", "console", "serve"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"console did not start: {(tmp_path / 'console.log').read_text()}")
    yield ConsoleServer(url, process)
    process.terminate()
    process.wait(10)
