"""`make bench` (second part): how fast a handoff reaches an agent and a reply reaches the customer.

The real stack (action server, Rasa, agent console) on SQLite; customers on socket.io as the
web chat. Two latencies, p50 and p95 over `--rounds` handoffs:

- request -> visible: from the customer's "can I talk to a person" leaving the socket to the
  package being readable in the console (queue polled every 10 ms, then the conversation view);
- reply -> socket: from the agent's POST /reply to the text arriving on the customer's socket.

Results go to results/bench_handoff.md and results/bench_handoff.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
import socketio

from cdp.identity_token import mint_token
from tools.bench import git_commit, percentile
from tools.paths import ACTIONS_PYTHON, REPO, RESULTS
from tools.settings import DEMO_CUSTOMER_ID
from tools.stack import (
    StackSettings,
    isolated_settings,
    seed_demo_cdp,
    start_action_server,
    start_console,
    start_rasa,
)
from tools.training import train

AGENT, PASSWORD = "bench", "bench-agent-password"
POLL_SECONDS = 0.01


def create_agent(settings: StackSettings) -> None:
    subprocess.run(
        [
            str(ACTIONS_PYTHON),
            "-m",
            "console",
            "create-agent",
            AGENT,
            "--role",
            "supervisor",
            "--password-stdin",
        ],
        cwd=REPO,
        env=settings.environment(),
        input=f"{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
    )


def one_round(settings: StackSettings, console: requests.Session) -> tuple[float, float]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("bot_uttered", received.put)
    client.connect(settings.rasa_url, socketio_path="/socket.io", transports=["websocket"])
    session_id = f"bench-{secrets.token_hex(6)}"
    token = mint_token(DEMO_CUSTOMER_ID, settings.identity_secret, 600)

    def say(text: str) -> None:
        client.emit(
            "user_uttered",
            {"message": text, "session_id": session_id, "metadata": {"customer_token": token}},
        )

    try:
        client.emit("session_request", {"session_id": session_id})
        say("hello")
        received.get(timeout=60)
        started = time.perf_counter()
        say("can I talk to a person")
        handoff_id = None
        while handoff_id is None:
            if time.perf_counter() - started > 60:
                raise RuntimeError("the handoff never reached the console queue")
            waiting = console.get(f"{settings.console_url}/api/queue", timeout=10).json()["waiting"]
            handoff_id = next(
                (i["id"] for i in waiting if i["conversation_id"] == session_id), None
            )
            if handoff_id is None:
                time.sleep(POLL_SECONDS)
        view = console.get(f"{settings.console_url}/api/handoffs/{handoff_id}", timeout=10).json()
        visible = time.perf_counter() - started
        assert view["package"]["summary"]
        received.get(timeout=30)  # "connecting you with a person"
        console.post(f"{settings.console_url}/api/handoffs/{handoff_id}/claim", timeout=10)
        text = f"Hello from the desk {secrets.token_hex(3)}"
        started = time.perf_counter()
        console.post(
            f"{settings.console_url}/api/handoffs/{handoff_id}/reply",
            json={"key": secrets.token_hex(8), "text": text},
            timeout=30,
        )
        while received.get(timeout=30).get("text") != text:
            pass
        arrived = time.perf_counter() - started
        console.post(f"{settings.console_url}/api/handoffs/{handoff_id}/resolve", timeout=30)
        return visible * 1000, arrived * 1000
    finally:
        client.disconnect()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "n": len(values),
    }


def row(path: str, figures: dict[str, float]) -> str:
    return f"| {path} | {figures['p50_ms']} | {figures['p95_ms']} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    model = train()
    visible: list[float] = []
    delivered: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as tmp:
        work = Path(tmp)
        settings = isolated_settings(
            model,
            f"sqlite:///{work / 'cdp.sqlite3'}",
            f"sqlite:///{work / 'tracker.sqlite3'}",
            work,
        )
        seed_demo_cdp(settings, quiet=True)
        create_agent(settings)
        with ExitStack() as servers:
            # Rasa may need minutes to load its model on a busy machine.
            for server in (start_action_server(settings), start_rasa(settings, timeout=900)):
                servers.callback(server.stop)
            servers.callback(start_console(settings).stop)
            console = requests.Session()
            console.post(
                f"{settings.console_url}/api/login",
                json={"username": AGENT, "password": PASSWORD},
                timeout=10,
            ).raise_for_status()
            one_round(settings, console)  # warm-up, not counted
            for _ in range(args.rounds):
                shown, arrived = one_round(settings, console)
                visible.append(shown)
                delivered.append(arrived)
    visible_ms, delivered_ms = summary(visible), summary(delivered)
    results = {"request_to_visible": visible_ms, "reply_to_socket": delivered_ms}
    meta = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "commit": git_commit(),
        "backend": "sqlite",
        "rounds": args.rounds,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_handoff.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2)
    )
    text = "\n".join(
        [
            "# Handoff latency",
            "",
            f"{meta['when']} · {meta['machine']} · commit {meta['commit']} · SQLite · "
            f"{args.rounds} handoffs (`python -m tools.bench_handoff`)",
            "",
            "| path | p50 ms | p95 ms |",
            "|---|---|---|",
            row("customer asks for a person -> package readable in the console", visible_ms),
            row("agent's reply posted -> text on the customer's socket", delivered_ms),
            "",
        ]
    )
    (RESULTS / "bench_handoff.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
