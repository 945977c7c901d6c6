"""`python -m console create-agent` and `seed-demo` as an operator runs them."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import Engine

from cdp.db import transaction
from cdp.handoff.models import Agent, AgentRole
from cdp.handoff.service import authenticate
from tools.paths import ACTIONS_PYTHON, REPO


def console_cli(cdp_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CDP_DATABASE_URL": cdp_url}
    return subprocess.run(
        [str(ACTIONS_PYTHON), "-m", "console", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("cdp_url", ["sqlite"], indirect=True)
def test_create_agent_and_its_errors(cdp_url: str, cdp_engine: Engine) -> None:
    made = console_cli(
        cdp_url,
        "create-agent",
        "nina",
        "--name",
        "Nina Berg",
        "--teams",
        "general,orders",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert (
        made.returncode == 0
        and made.stdout == "agent nina created (agent; teams: general, orders)\n"
    )
    with transaction(cdp_engine) as session:
        nina = session.get(Agent, "nina")
        assert (nina.display_name, nina.role, nina.teams) == (
            "Nina Berg",
            AgentRole.AGENT,
            ["general", "orders"],
        )
        assert authenticate(session, "nina", "a long password") is not None
    errors = {
        ("nina",): "error: agent nina: field username: already exists",
        ("bob", "--teams", "sales"): "error: agent bob: field teams: 'sales' is not a team of",
        ("bob",): "error: agent bob: field password: must be at least 8 characters",
        ("b b",): "error: agent 'b b': field username: letters, digits, _ - . only",
    }
    for args, message in errors.items():
        failed = console_cli(
            cdp_url,
            "create-agent",
            *args,
            "--password-stdin",
            stdin="short\n" if args == ("bob",) else "a long password\n",
        )
        assert failed.returncode == 1 and failed.stderr.startswith(message), failed.stderr


@pytest.mark.parametrize("cdp_url", ["sqlite"], indirect=True)
def test_seed_demo_creates_the_demo_agents_once(cdp_url: str, cdp_engine: Engine) -> None:
    for _ in range(2):
        seeded = console_cli(cdp_url, "seed-demo")
        assert seeded.returncode == 0 and "ava  / ava-demo-pass" in seeded.stdout
    with transaction(cdp_engine) as session:
        assert sorted(a.username for a in session.query(Agent)) == ["ava", "leo", "sam"]
        assert authenticate(session, "sam", "sam-demo-pass").role is AgentRole.SUPERVISOR
