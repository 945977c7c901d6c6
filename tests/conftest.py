"""Fixtures shared by the whole suite: a fresh, migrated CDP database per test.

`cdp_url` runs a test on SQLite and on PostgreSQL. PostgreSQL comes from
CDP_TEST_POSTGRES_URL (an admin URL; each test gets its own throwaway database). When the
server can't be reached the PostgreSQL variant is skipped with the reason, except in CI
(CI=true), where it fails: CI must never pass without running them (see tests/postgres.py).
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import Engine

from cdp.db import make_engine, migrate
from tests.postgres import postgres_database_or_skip

# Folders whose modules share session-scoped servers (tests/e2e/conftest.py's stacks, the
# channel stack): run on one worker under `make test`'s two (xdist --dist loadgroup), so each
# stack starts once. Every other module is a group of its own, so module-scoped fixtures
# (a module's own stack, a CDP API server) start once too.
SHARED_STACK_FOLDERS = ("e2e", "channels")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.parent.name
        group = folder if folder in SHARED_STACK_FOLDERS else item.path.stem + "@" + folder
        item.add_marker(pytest.mark.xdist_group(group))


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


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Debian Chromium for the tests of web pages (installed by `make browser`)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "Debian's chromium and chromium-driver are needed: "
            "make browser (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
