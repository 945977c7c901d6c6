"""Human handoff end to end: web chat over socket.io, Rasa, the action server and the console.

The customer asks for a person; the handoff appears in the console queue with its context;
the agent's reply arrives on the customer's socket; while the agent owns the conversation the
bot says nothing and the agent sees every message; after the hand-back the bot answers again.
"""

from __future__ import annotations

import queue
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest
import requests
import socketio

from cdp.identity_token import mint_token
from tests.e2e.conftest import _databases
from tools.paths import ACTIONS_PYTHON, REPO
from tools.stack import (
    StackSettings,
    isolated_settings,
    seed_demo_cdp,
    start_action_server,
    start_console,
    start_rasa,
)
from tools.training import train

pytestmark = pytest.mark.e2e
T = TypeVar("T")
AGENT, PASSWORD = "ava", "ava-e2e-password"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackSettings]:
    model = train()
    tmp = tmp_path_factory.mktemp(f"handoff-{request.param}")
    with ExitStack() as exit_stack:
        cdp_url, tracker_url = _databases(request.param, exit_stack, tmp)
        settings = isolated_settings(model, cdp_url, tracker_url, tmp)
        seed_demo_cdp(settings, quiet=True)
        subprocess.run(
            [
                str(ACTIONS_PYTHON),
                "-m",
                "console",
                "create-agent",
                AGENT,
                "--name",
                "Ava Stone",
                "--teams",
                "general,vip_care",
                "--password-stdin",
            ],
            cwd=REPO,
            env=settings.environment(),
            input=f"{PASSWORD}\n",
            text=True,
            check=True,
            capture_output=True,
        )
        # Rasa may take minutes to load its model on a busy machine.
        for server in (start_action_server(settings), start_rasa(settings, timeout=600)):
            exit_stack.callback(server.stop)
        exit_stack.callback(start_console(settings).stop)
        yield settings


def eventually(check: Callable[[], T | None], timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not true after {timeout} s: {check}")


class Customer:
    """The web chat: a socket.io client with session persistence, as the widget does it."""

    def __init__(self, settings: StackSettings, customer_id: str) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.session_id = f"web-{secrets.token_hex(6)}"
        self.token = mint_token(customer_id, settings.identity_secret, 600)
        self.client = socketio.Client(reconnection=False)
        self.client.on("bot_uttered", self.received.put)
        self.client.connect(
            settings.rasa_url, socketio_path="/socket.io", transports=["websocket"], wait_timeout=10
        )
        self.client.emit("session_request", {"session_id": self.session_id})

    def say(self, text: str) -> None:
        self.client.emit(
            "user_uttered",
            {
                "message": text,
                "session_id": self.session_id,
                "metadata": {"customer_token": self.token},
            },
        )

    def next_text(self, timeout: float = 20) -> str:
        return self.received.get(timeout=timeout)["text"]

    def silent_for(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def test_customer_agent_and_bot_take_turns(stack: StackSettings) -> None:
    console = requests.Session()
    assert (
        console.post(
            f"{stack.console_url}/api/login",
            json={"username": AGENT, "password": PASSWORD},
            timeout=10,
        ).status_code
        == 200
    )
    customer = Customer(stack, "C-1001")
    try:
        customer.say("hello")
        assert "Hi Ana" in customer.next_text()
        customer.say("my parcel never arrived, can I talk to a person")
        assert "connecting you with a person" in customer.next_text()

        def waiting() -> list[dict]:
            items = console.get(f"{stack.console_url}/api/queue", timeout=10).json()["waiting"]
            return [i for i in items if i["conversation_id"] == customer.session_id]

        item = eventually(waiting)[0]
        assert item["team"] == "vip_care" and item["priority"] in ("high", "urgent")
        view = console.get(f"{stack.console_url}/api/handoffs/{item['id']}", timeout=10).json()
        package = view["package"]
        assert package["customer"]["customer_id"] == "C-1001"
        assert package["customer"]["email"] == "a***@example.com"  # an agent sees it masked
        assert package["customer"]["tier"] == "gold"
        assert package["conversation"] == {"id": customer.session_id, "channel": "socketio"}
        assert [line["text"] for line in package["transcript"] if line["author"] == "customer"] == [
            "hello",
            "my parcel never arrived, can I talk to a person",
        ]
        assert package["reason"]["code"] == "user_requested" and package["summary"]

        assert console.post(f"{stack.console_url}/api/handoffs/{item['id']}/claim", timeout=10).ok
        reply = console.post(
            f"{stack.console_url}/api/handoffs/{item['id']}/reply",
            json={"key": "e2e-reply-1", "text": "Hi Ana, Ava here. Let me check your parcel."},
            timeout=20,
        ).json()
        assert reply["delivery"] == "sent"
        assert customer.next_text() == "Hi Ana, Ava here. Let me check your parcel."

        customer.say("thank you, it was order O-5003")
        assert customer.silent_for(4)  # the bot says nothing while a person owns the chat

        def agent_sees() -> list[str]:
            messages = console.get(
                f"{stack.console_url}/api/handoffs/{item['id']}", timeout=10
            ).json()["messages"]
            return [m["text"] for m in messages if m["author"] == "customer"]

        assert eventually(agent_sees) == ["thank you, it was order O-5003"]

        handback = console.post(
            f"{stack.console_url}/api/handoffs/{item['id']}/handback", timeout=20
        )
        assert handback.json()["state"] == "returned"
        assert "back with the Northwind Corner assistant" in customer.next_text()
        customer.say("hi")
        assert "Hi Ana" in customer.next_text()  # the bot answers again
    finally:
        customer.client.disconnect()
