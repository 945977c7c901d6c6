"""docker-compose.yml can't run here (no Docker engine), so it is checked by reading it against
endpoints.yml, credentials.yml, the Dockerfile and the settings the code reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.rasa_venv import run_in_rasa_venv
from tools.paths import RASA_BIN, REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PLACEHOLDER = re.compile(r"\$\{(\w+)")
SECRETS = {
    "RASA_API_TOKEN": "-t0ken",  # a leading dash, as one random token in 64 has
    "POSTGRES_PASSWORD": "pw",
    "CDP_IDENTITY_SECRET": "s3cret",
    "CDP_ERASURE_KEY": "3rasure-key-0123456789",
    "CHANNELS_PUBLIC_URL": "https://chat.example.com",
    "CONSOLE_SECRET": "c0nsole",
    "HANDOFF_CONSOLE_TOKEN": "h4ndoff",
}


def resolved(value: str) -> str:
    """A compose value with `${VAR:?message}` filled from SECRETS, `${VAR:-default}` defaulted."""
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), value)
    return re.sub(r"\$\{(\w+)(:\?[^}]*)?\}", lambda m: SECRETS[m.group(1)], value)


def environment(service: str) -> dict[str, str]:
    return {k: resolved(str(v)) for k, v in SERVICES[service]["environment"].items()}


def test_the_production_services_and_images() -> None:
    assert set(SERVICES) >= {"rasa", "action-server", "postgres", "redis"}
    assert SERVICES["rasa"]["image"] == "rasa/rasa:3.6.21-full"
    dockerfile = REPO / SERVICES["action-server"]["build"]["dockerfile"]
    instructions = [line for line in dockerfile.read_text().splitlines() if line[:1].isupper()]
    assert instructions[0] == "FROM rasa/rasa-sdk:3.6.2"


def test_every_endpoint_variable_is_set_for_rasa() -> None:
    wanted = set(PLACEHOLDER.findall((REPO / "endpoints.yml").read_text()))
    assert wanted <= set(environment("rasa")), wanted - set(environment("rasa"))


def test_rasa_reaches_the_action_server_where_it_listens() -> None:
    url = urlsplit(environment("rasa")["ACTION_ENDPOINT_URL"])
    action_server = SERVICES["action-server"]
    assert url.hostname == "action-server"
    port = action_server["command"][action_server["command"].index("--port") + 1]
    assert url.port == int(port) and str(port) in action_server["expose"]
    assert url.path == "/webhook"


def test_stores_point_at_the_compose_postgres_and_redis() -> None:
    rasa = environment("rasa")
    tracker = urlsplit(rasa["RASA_TRACKER_STORE_URL"])
    cdp = urlsplit(environment("action-server")["CDP_DATABASE_URL"])
    postgres = SERVICES["postgres"]["environment"]
    init_sql = (REPO / "deploy" / "postgres-init.sql").read_text()
    assert tracker.scheme == "postgresql"  # Rasa's SQLAlchemy 1.4 uses psycopg2
    assert cdp.scheme == "postgresql+psycopg"  # the CDP's SQLAlchemy 2 uses psycopg 3
    for url in (tracker, cdp):
        assert (url.hostname, url.port, url.username) == (
            "postgres",
            5432,
            postgres["POSTGRES_USER"],
        )
    assert cdp.path == f"/{postgres['POSTGRES_DB']}"
    assert f"CREATE DATABASE {tracker.path[1:]} " in init_sql
    assert tracker.path != cdp.path  # Rasa's `events` table must not land in the CDP
    assert rasa["RASA_LOCK_STORE_TYPE"] == "redis" and rasa["RASA_REDIS_HOST"] == "redis"
    assert rasa["RASA_REDIS_PORT"] == "6379"


def test_the_action_server_gets_the_settings_the_code_reads() -> None:
    env = environment("action-server")
    code = "\n".join(p.read_text() for p in (REPO / "cdp").rglob("*.py"))
    for name in ("CDP_DATABASE_URL", "CDP_IDENTITY_SECRET", "CDP_ERASURE_KEY"):
        assert f'"{name}"' in code and env[name]
    assert environment("cdp-migrate")["CDP_DATABASE_URL"] == env["CDP_DATABASE_URL"]
    assert SERVICES["cdp-migrate"]["entrypoint"][-3:] == ["-m", "cdp", "init"]


def test_the_action_server_can_send_verification_codes() -> None:
    """Every variable the code senders read reaches the action server, outbox by default."""
    env = environment("action-server")
    senders = (REPO / "cdp" / "verification" / "senders.py").read_text()
    read = set(re.findall(r'"((?:SMTP|TWILIO|VERIFICATION)_[A-Z_]+)"', senders)) - {
        "TWILIO_API_URL"  # Twilio's own URL unless a test points it elsewhere
    }
    assert read <= set(env), read - set(env)
    assert env["VERIFICATION_SMS_SENDER"] == env["VERIFICATION_EMAIL_SENDER"] == "outbox"


@pytest.fixture(scope="module")
def rasa_arguments() -> dict[str, Any]:
    """The rasa service's command as Rasa's own argument parser reads it."""
    command = [resolved(str(part)) for part in SERVICES["rasa"]["command"]]
    return run_in_rasa_venv(REPO / "tests" / "check_rasa_arguments.py", *command)


def test_rasa_serves_the_mounted_files_with_the_api_behind_a_token(
    rasa_arguments: dict[str, Any],
) -> None:
    mounts = {m.split(":")[1]: m.split(":")[0] for m in SERVICES["rasa"]["volumes"]}
    for name in ("credentials", "endpoints", "model"):
        assert (REPO / mounts[rasa_arguments[name]]).resolve().relative_to(REPO)
    assert rasa_arguments["auth_token"] == SECRETS["RASA_API_TOKEN"]
    assert rasa_arguments["enable_api"] is True
    assert rasa_arguments["port"] == 5005


def test_rasa_runs_with_the_project_patches() -> None:
    rasa = SERVICES["rasa"]
    assert rasa["entrypoint"] == ["python", "-m", "rasa_ext"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in rasa["volumes"]}
    assert (REPO / mounts["/app/rasa_ext"] / "__main__.py").is_file()
    assert environment("rasa")["PYTHONPATH"] == "/app"


def test_the_action_image_installs_the_pinned_actions_requirements() -> None:
    text = (REPO / "deploy" / "action-server.Dockerfile").read_text()
    assert "requirements/actions.txt" in text
    for package in ("cdp", "actions"):
        assert f"COPY {package} /app/{package}" in text


@pytest.mark.skipif(not RASA_BIN.exists(), reason="the Rasa venv is not installed")
def test_rasa_reads_endpoints_with_the_compose_environment() -> None:
    """Rasa itself expands endpoints.yml with the compose values into the stores it builds."""
    script = (
        "from rasa.core.utils import AvailableEndpoints as E;"
        "e = E.read_endpoints('endpoints.yml');"
        "print(e.tracker_store.type, e.tracker_store.url, e.lock_store.type, e.lock_store.url,"
        " e.action.url)"
    )
    python = Path(RASA_BIN).with_name("python")
    result = subprocess.run(
        [str(python), "-c", script],
        cwd=REPO,
        env={**environment("rasa"), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    rasa = environment("rasa")
    assert result.stdout.split() == [
        "SQL",
        rasa["RASA_TRACKER_STORE_URL"],
        "redis",
        "redis",
        rasa["ACTION_ENDPOINT_URL"],
    ]


def _mounted_credentials() -> Path:
    rasa = SERVICES["rasa"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in rasa["volumes"]}
    (credentials,) = [p.split("=", 1)[1] for p in rasa["command"] if p.startswith("--credentials=")]
    return REPO / mounts[credentials]


def test_production_runs_every_channel_but_rest() -> None:
    production = yaml.safe_load(_mounted_credentials().read_text())
    development = yaml.safe_load((REPO / "credentials.yml").read_text())
    assert _mounted_credentials() == REPO / "deploy" / "credentials.production.yml"
    assert not any("rest" in name.lower() for name in production)
    assert set(development) - set(production) == {"rasa_ext.channels.web.DevRestInput"}
    assert all(production[name] == development[name] for name in production)
    wanted = set(PLACEHOLDER.findall(_mounted_credentials().read_text()))
    assert wanted <= set(environment("rasa")), wanted - set(environment("rasa"))
    assert environment("rasa")["CHANNELS_PUBLIC_URL"].startswith("https://")


def test_the_web_chat_files_are_mounted_where_the_connector_reads_them() -> None:
    mounts = {m.split(":")[1]: m.split(":")[0] for m in SERVICES["rasa"]["volumes"]}
    assert (REPO / mounts["/app/web"] / "widget.js").is_file()
    assert mounts["/app/node_modules/socket.io-client"] == "./node_modules/socket.io-client"
    assert "socket.io-client" in (REPO / "package-lock.json").read_text()


@pytest.mark.skipif(not RASA_BIN.exists(), reason="the Rasa venv is not installed")
def test_rasa_builds_the_production_channels_with_the_compose_environment() -> None:
    """Rasa itself reads the production credentials and builds our connectors from them."""
    script = (
        "import sys; from rasa.core.run import create_http_input_channels as c;"
        "print(' '.join(f'{type(i).__name__}:{i.name()}' for i in c(None, sys.argv[1])))"
    )
    python = Path(RASA_BIN).with_name("python")
    result = subprocess.run(
        [str(python), "-c", script, str(_mounted_credentials())],
        cwd=REPO,
        env={**environment("rasa"), "PATH": "/usr/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == [
        "WebChatInput:socketio",
        "MessengerInput:facebook",
        "TwilioSmsInput:twilio",
        "TwilioWhatsAppInput:whatsapp",
    ]


def test_the_agent_console_service() -> None:
    """Every variable the console requires is set, and Rasa and the actions find it."""
    console = environment("console")
    settings_code = (REPO / "console" / "settings.py").read_text()
    required = set(re.findall(r'_required\("(\w+)"\)', settings_code)) - {
        "CHATWOOT_ACCOUNT_ID",
        "CHATWOOT_BOT_TOKEN",
        "CHATWOOT_WEBHOOK_TOKEN",
    }
    assert required <= set(console), required - set(console)
    port = console["CONSOLE_PORT"]
    assert SERVICES["console"]["ports"] == [f"{port}:{port}"]
    assert console["CONSOLE_HOST"] == "0.0.0.0"
    assert console["RASA_URL"] == "http://rasa:5005"
    (rasa_token,) = [p for p in SERVICES["rasa"]["command"] if p.startswith("--auth-token=")]
    assert console["RASA_API_TOKEN"] == resolved(rasa_token.split("=", 1)[1])
    for caller in ("rasa", "action-server"):
        assert environment(caller)["HANDOFF_CONSOLE_URL"] == f"http://console:{port}"
        assert environment(caller)["HANDOFF_CONSOLE_TOKEN"] == console["HANDOFF_CONSOLE_TOKEN"]
    assert console["CDP_DATABASE_URL"] == environment("action-server")["CDP_DATABASE_URL"]
    dockerfile = (REPO / SERVICES["console"]["build"]["dockerfile"]).read_text()
    assert "COPY console /app/console" in dockerfile and "COPY handoff /app/handoff" in dockerfile
