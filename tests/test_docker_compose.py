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

from tools.paths import RASA_BIN, REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PLACEHOLDER = re.compile(r"\$\{(\w+)")
SECRETS = {"RASA_API_TOKEN": "t0ken", "POSTGRES_PASSWORD": "pw", "CDP_IDENTITY_SECRET": "s3cret"}


def resolved(value: str) -> str:
    """A compose value with `${VAR:?message}` placeholders filled from SECRETS."""
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
    for name in ("CDP_DATABASE_URL", "CDP_IDENTITY_SECRET"):
        assert f'"{name}"' in code and env[name]
    assert environment("cdp-migrate")["CDP_DATABASE_URL"] == env["CDP_DATABASE_URL"]
    assert SERVICES["cdp-migrate"]["entrypoint"][-3:] == ["-m", "cdp", "init"]


def test_rasa_serves_the_mounted_files_with_the_api_behind_a_token() -> None:
    rasa = SERVICES["rasa"]
    command = [resolved(str(part)) for part in rasa["command"]]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in rasa["volumes"]}
    for flag in ("--credentials", "--endpoints", "--model"):
        target = command[command.index(flag) + 1]
        assert (REPO / mounts[target]).resolve().relative_to(REPO)
    assert command[command.index("--auth-token") + 1] == SECRETS["RASA_API_TOKEN"]
    assert "--enable-api" in command


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
