"""The real assistant for end-to-end tests: action server + Rasa over HTTP, one per backend.

Each backend gets fresh databases for the CDP and the tracker store, seeded with the demo
customers through the CDP CLI, as `make run` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.e2e.harness import Assistant
from tests.postgres import postgres_database_or_skip
from tools.databases import for_rasa
from tools.stack import isolated_settings, seed_demo_cdp, start_action_server, start_rasa
from tools.training import train


def _databases(backend: str, stack: ExitStack, tmp: Path) -> tuple[str, str]:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'cdp.sqlite3'}", f"sqlite:///{tmp / 'tracker.sqlite3'}"
    cdp_url = stack.enter_context(postgres_database_or_skip("e2e_cdp"))
    tracker_url = stack.enter_context(postgres_database_or_skip("e2e_tracker"))
    return cdp_url, for_rasa(tracker_url)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def assistant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Assistant]:
    model = train()
    tmp = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with ExitStack() as stack:
        cdp_url, tracker_url = _databases(request.param, stack, tmp)
        settings = isolated_settings(model, cdp_url, tracker_url, tmp)
        seed_demo_cdp(settings, quiet=True)
        servers = {"action-server": start_action_server(settings)}
        stack.callback(lambda: [server.stop() for server in servers.values()])
        servers["rasa"] = start_rasa(settings)
        yield Assistant(request.param, settings, servers)
