"""Fixtures shared by the whole suite: a fresh, migrated CDP database per test.

`cdp_url` runs a test on SQLite and on PostgreSQL. PostgreSQL comes from
CDP_TEST_POSTGRES_URL (an admin URL; each test gets its own throwaway database). When the
server can't be reached the PostgreSQL variant is skipped with the reason, except in CI
(CI=true), where it fails: CI must never pass without running them (see tests/postgres.py).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdp.db import make_engine, migrate
from tests.postgres import postgres_database_or_skip


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cdp_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database that exists for this test only."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cdp.sqlite3'}"
        return
    with postgres_database_or_skip() as url:
        yield url


@pytest.fixture
def cdp_engine(cdp_url: str) -> Iterator[Engine]:
    """An engine on the test's database with the schema migrated to head."""
    engine = make_engine(cdp_url)
    migrate(engine)
    yield engine
    engine.dispose()
