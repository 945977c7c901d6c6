"""`python -m console`: run the agent console, create agents, seed the demo agents.

python -m console serve
python -m console create-agent USERNAME --name "Ava Stone" --role agent --teams general,orders
python -m console seed-demo
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import datetime, timezone

from cdp.db import make_engine, transaction
from cdp.handoff.config import routing_file, routing_table
from cdp.handoff.models import AgentRole
from cdp.handoff.service import HandoffError, count_agents, create_agent

# Development only: printed by `make run`, never created outside `seed-demo`.
DEMO_AGENTS = (
    (
        "ava",
        "Ava Stone",
        AgentRole.AGENT,
        ["general", "orders", "vip_care", "billing"],
        "ava-demo-pass",
    ),
    ("leo", "Léo Martin", AgentRole.AGENT, ["support_fr", "fraud", "general"], "leo-demo-pass"),
    ("sam", "Sam Reyes", AgentRole.SUPERVISOR, [], "sam-demo-pass"),
)


def serve() -> int:
    from console.app import create_app
    from console.settings import settings_from_env

    settings = settings_from_env()
    app = create_app(settings)
    app.run(host=settings.host, port=settings.port, workers=1, access_log=False, motd=False)
    return 0


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("CONSOLE_AGENT_PASSWORD"):
        return os.environ["CONSOLE_AGENT_PASSWORD"]
    return getpass.getpass("password: ")


def add_agent(args: argparse.Namespace) -> int:
    teams = [t.strip() for t in args.teams.split(",") if t.strip()]
    known = routing_table().teams
    unknown = [team for team in teams if team not in known]
    if unknown:
        print(
            f"error: agent {args.username}: field teams: {unknown[0]!r} is not a team of "
            f"{routing_file()} ({', '.join(known)})",
            file=sys.stderr,
        )
        return 1
    password = read_password(args.password_stdin)
    engine = make_engine()
    try:
        with transaction(engine) as session:
            create_agent(
                session,
                args.username,
                args.name or args.username,
                AgentRole(args.role),
                teams,
                password,
                datetime.now(timezone.utc),
            )
    except HandoffError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"agent {args.username} created ({args.role}; teams: {', '.join(teams) or 'none'})")
    return 0


def seed_demo() -> int:
    """The demo agents, if the console has no agent yet; prints how to log in."""
    engine = make_engine()
    with transaction(engine) as session:
        if count_agents(session) == 0:
            for username, name, role, teams, password in DEMO_AGENTS:
                create_agent(
                    session, username, name, role, teams, password, datetime.now(timezone.utc)
                )
    for username, _name, role, teams, password in DEMO_AGENTS:
        scope = (
            "all teams, sees personal data" if role is AgentRole.SUPERVISOR else ", ".join(teams)
        )
        print(f"  {username:<4} / {password:<14} {role.value} ({scope})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the console (settings from the environment)")
    create = commands.add_parser("create-agent", help="create a console account")
    create.add_argument("username")
    create.add_argument("--name", help="display name (default: the username)")
    create.add_argument("--role", choices=[r.value for r in AgentRole], default="agent")
    create.add_argument("--teams", default="", help="comma-separated teams of routing.yml")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    commands.add_parser("seed-demo", help="create the demo agents if there is none")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    if args.command == "create-agent":
        return add_agent(args)
    return seed_demo()


if __name__ == "__main__":
    sys.exit(main())
