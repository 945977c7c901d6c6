"""`make run`'s program as a user meets it: it seeds, starts, says what to try, and Ctrl-C
stops every process it started."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tools.paths import ACTIONS_PYTHON, REPO
from tools.stack import free_port
from tools.training import train

pytestmark = pytest.mark.e2e


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} after {timeout} s:\n{seen}"
        line = process.stdout.readline()
        assert line or process.poll() is None, f"exited with {process.returncode}:\n{seen}"
        seen += line
    return seen


def port_is_free(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    except requests.ConnectionError:
        return True
    return False


def test_run_seeds_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    train()
    rasa_port, action_port, console_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CDP_DATABASE_URL": f"sqlite:///{tmp_path / 'cdp.sqlite3'}",
        "RASA_TRACKER_STORE_URL": f"sqlite:///{tmp_path / 'tracker.sqlite3'}",
        "RASA_API_TOKEN": secrets.token_urlsafe(12),
        "CDP_IDENTITY_SECRET": secrets.token_urlsafe(32),
        "RASA_PORT": str(rasa_port),
        "ACTION_SERVER_PORT": str(action_port),
        "CONSOLE_PORT": str(console_port),
        "CONSOLE_SECRET": secrets.token_urlsafe(32),
        "HANDOFF_CONSOLE_TOKEN": secrets.token_urlsafe(16),
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.Popen(
        [str(ACTIONS_PYTHON), "-m", "tools.run"],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        welcome = read_until(run, '"customer_token": "', timeout=240)
        assert "make shell" in welcome and "C-1001" in welcome
        token = re.search(r'"customer_token": "([\w.-]+)"', welcome)
        reply = requests.post(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            json={"sender": "run-1", "message": "hi", "metadata": {"customer_token": token[1]}},
            timeout=30,
        ).json()
        assert "Hi Ana" in reply[0]["text"]  # seeded, and the printed token is valid
        # The agent console runs, with the demo agents whose logins were printed.
        assert f"http://127.0.0.1:{console_port}" in welcome and "ava-demo-pass" in welcome
        login = requests.post(
            f"http://127.0.0.1:{console_port}/api/login",
            json={"username": "ava", "password": "ava-demo-pass"},
            timeout=30,
        )
        assert login.status_code == 200
    finally:
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        run.wait(timeout=60)
    assert run.returncode == 0
    assert port_is_free(rasa_port) and port_is_free(action_port) and port_is_free(console_port)
