"""Actions run against a real CDP (SQLite and PostgreSQL) seeded with the demo customers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from actions import cdp_access
from cdp.db import transaction
from cdp.importer import import_file
from tests.actions.trackers import SECRET

DEMO_FILE = Path(__file__).resolve().parents[2] / "cdp" / "seed" / "demo_customers.jsonl"


@pytest.fixture
def demo_cdp(cdp_url: str, cdp_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The demo customers in the test database, which the actions' engine points at."""
    with transaction(cdp_engine) as session:
        import_file(session, DEMO_FILE)
    monkeypatch.setenv("CDP_DATABASE_URL", cdp_url)
    monkeypatch.setenv("CDP_IDENTITY_SECRET", SECRET)
    cdp_access.cdp_engine.cache_clear()
    yield cdp_engine
    cdp_access.cdp_engine().dispose()
    cdp_access.cdp_engine.cache_clear()
