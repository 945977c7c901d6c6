"""PostgreSQL for tests: a throwaway database, or a skip with the reason (a failure in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tools.databases import PostgresUnavailable, throwaway_postgres_database


@contextmanager
def postgres_database_or_skip(prefix: str = "cdp_test") -> Iterator[str]:
    """A fresh database's URL. Unreachable server: skip, except in CI (CI=true) where it fails."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres_database(prefix))
        except PostgresUnavailable as error:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{error} (CI must run the postgres tests)", pytrace=False)
            pytest.skip(str(error))
        yield url
