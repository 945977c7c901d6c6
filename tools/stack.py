"""Start and stop the running assistant: the action server and the Rasa server.

Used by `make run`, the end-to-end tests and the benchmarks, so all of them exercise the same
processes with the same settings. Each server runs in its own process group and is stopped
with SIGINT, then SIGKILL if it does not exit in time.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tools.paths import ACTIONS_PYTHON, RASA_PYTHON, REPO, VAR
from tools.training import rasa_env

# endpoints.yml names these; one process needs no Redis, so the defaults keep locks in memory.
LOCK_STORE_DEFAULTS = {
    "RASA_LOCK_STORE_TYPE": "in_memory",
    "RASA_REDIS_HOST": "127.0.0.1",
    "RASA_REDIS_PORT": "6379",
    "RASA_REDIS_PASSWORD": "",
    "RASA_REDIS_DB": "1",
}

# credentials.yml names these; empty means "channel not configured" (its webhooks answer 403).
CHANNEL_VARIABLES = (
    "MESSENGER_VERIFY_TOKEN",
    "MESSENGER_APP_SECRET",
    "MESSENGER_PAGE_ACCESS_TOKEN",
    "MESSENGER_GRAPH_API_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_SMS_NUMBER",
    "TWILIO_WHATSAPP_NUMBER",
    "TWILIO_API_URL",
    "CHANNELS_PUBLIC_URL",
)


@dataclass(frozen=True)
class StackSettings:
    """Everything that differs between `make run`, a test and a benchmark run."""

    model: Path
    cdp_database_url: str
    tracker_store_url: str
    api_token: str
    identity_secret: str
    rasa_port: int = 5005
    action_port: int = 5055
    log_dir: Path = VAR / "log"
    # The agent console (console/, docs/handoff.md) and the secrets it shares with the servers.
    console_port: int = 5056
    console_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    handoff_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # Keys the HMACs of erased people's identifiers (cdp/privacy, docs/cdp.md).
    erasure_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def webchat_url(self) -> str:
        return f"{self.rasa_url}/webchat"

    def environment(self) -> dict[str, str]:
        return {
            **LOCK_STORE_DEFAULTS,
            **dict.fromkeys(CHANNEL_VARIABLES, ""),
            **rasa_env(),
            "CDP_DATABASE_URL": self.cdp_database_url,
            "CDP_IDENTITY_SECRET": self.identity_secret,
            "CDP_ERASURE_KEY": self.erasure_key,
            "RASA_TRACKER_STORE_URL": self.tracker_store_url,
            "ACTION_ENDPOINT_URL": f"{self.action_url}/webhook",
            "PYTHONPATH": str(REPO),
            "HANDOFF_CONSOLE_URL": self.console_url,
            "HANDOFF_CONSOLE_TOKEN": self.handoff_token,
            "CONSOLE_PORT": str(self.console_port),
            "CONSOLE_SECRET": self.console_secret,
            "RASA_URL": self.rasa_url,
            "RASA_API_TOKEN": self.api_token,
            **self.extra_env,
        }


def free_port() -> int:
    """A TCP port nobody listens on right now, for servers started by tests and benchmarks."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolated_settings(
    model: Path, cdp_database_url: str, tracker_store_url: str, work_dir: Path
) -> StackSettings:
    """Settings for a stack of its own (tests, benchmarks): fresh secrets, free ports."""
    return StackSettings(
        model=model,
        cdp_database_url=cdp_database_url,
        tracker_store_url=tracker_store_url,
        api_token=secrets.token_urlsafe(16),
        identity_secret=secrets.token_urlsafe(32),
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=work_dir / "log",
        console_port=free_port(),
    )


def seed_demo_cdp(settings: StackSettings, *, quiet: bool = False) -> None:
    """`python -m cdp seed`: create or upgrade the schema, import the demo customers if empty."""
    subprocess.run(
        [str(ACTIONS_PYTHON), "-m", "cdp", "seed"],
        cwd=REPO,
        env=settings.environment(),
        check=True,
        capture_output=quiet,
    )


def seed_demo_agents(settings: StackSettings) -> str:
    """`python -m console seed-demo`: the demo agents if there is none; returns their logins."""
    result = subprocess.run(
        [str(ACTIONS_PYTHON), "-m", "console", "seed-demo"],
        cwd=REPO,
        env=settings.environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.rstrip()


class StackError(RuntimeError):
    """A server did not start; the message names it and the log file to read."""


@dataclass
class RunningServer:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()


def _start(name: str, command: list[str], settings: StackSettings) -> RunningServer:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=settings.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return RunningServer(name, process, log_path)


def _wait_until_ready(server: RunningServer, url: str, timeout: float) -> None:
    """Return once `url` answers 200; otherwise stop the server and raise `StackError`."""
    try:
        _poll(server, url, timeout)
    except BaseException:
        server.stop()
        raise


def _poll(server: RunningServer, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise StackError(
                f"{server.name} exited with code {server.process.returncode}; see {server.log_path}"
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise StackError(f"{server.name} was not ready after {timeout:.0f} s; see {server.log_path}")


def start_action_server(settings: StackSettings, timeout: float = 60) -> RunningServer:
    server = _start(
        "action-server",
        [
            str(ACTIONS_PYTHON),
            "-m",
            "rasa_sdk",
            "--actions",
            "actions",
            "--port",
            str(settings.action_port),
        ],
        settings,
    )
    _wait_until_ready(server, f"{settings.action_url}/health", timeout)
    return server


def rasa_command(settings: StackSettings) -> list[str]:
    """`rasa run` for these settings. Values go as `--flag=value`: a random token may begin with
    "-", which argparse would otherwise read as the next flag (Rasa exits with code 2)."""
    # rasa_ext: Rasa's CLI with the fixes of rasa_ext/patches.py applied.
    return [
        str(RASA_PYTHON),
        "-m",
        "rasa_ext",
        "run",
        f"--model={settings.model}",
        "--enable-api",
        f"--auth-token={settings.api_token}",
        "--cors=*",
        f"--port={settings.rasa_port}",
        "--credentials=credentials.yml",
        "--endpoints=endpoints.yml",
    ]


def start_rasa(settings: StackSettings, timeout: float = 600) -> RunningServer:
    server = _start("rasa", rasa_command(settings), settings)
    _wait_until_ready(server, f"{settings.rasa_url}/status?token={settings.api_token}", timeout)
    return server


def start_console(settings: StackSettings, timeout: float = 60) -> RunningServer:
    """The agent console (python -m console serve), reading the same CDP database."""
    server = _start("console", [str(ACTIONS_PYTHON), "-m", "console", "serve"], settings)
    _wait_until_ready(server, f"{settings.console_url}/health", timeout)
    return server


@contextmanager
def running_stack(settings: StackSettings) -> Iterator[list[RunningServer]]:
    """The action server, Rasa and the agent console, ready; stopped on exit whatever happened."""
    servers: list[RunningServer] = []
    try:
        servers.append(start_action_server(settings))
        servers.append(start_rasa(settings))
        servers.append(start_console(settings))
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()
