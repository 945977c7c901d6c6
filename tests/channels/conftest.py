"""Fixtures of the channel tests: the demo CDP for identity checks (unit level); the running
stack with every channel configured lives in stack.py (end to end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from actions import cdp_access
from cdp.db import transaction
from cdp.importer import import_file
from tests.channels.stack import ChannelStack, channel_stack

DEMO_FILE = Path(__file__).resolve().parents[2] / "cdp" / "seed" / "demo_customers.jsonl"
SECRET = "channel-tests-identity-secret-of-a-decent-length"


@pytest.fixture
def demo_cdp(cdp_url: str, cdp_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The demo customers in this test's database, which the actions' engine points at."""
    with transaction(cdp_engine) as session:
        import_file(session, DEMO_FILE)
    monkeypatch.setenv("CDP_DATABASE_URL", cdp_url)
    monkeypatch.setenv("CDP_IDENTITY_SECRET", SECRET)
    cdp_access.cdp_engine.cache_clear()
    yield cdp_engine
    cdp_access.cdp_engine().dispose()
    cdp_access.cdp_engine.cache_clear()


@pytest.fixture(scope="session")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelStack]:
    """Action server + Rasa with every channel of credentials.yml configured (SQLite stores,
    Redis for the connectors' shared state), replies captured by a local recorder."""
    with channel_stack(tmp_path_factory.mktemp("channels")) as stack:
        yield stack
