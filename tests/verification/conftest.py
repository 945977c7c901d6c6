"""Fixtures of the verification tests: the demo customers in a fresh database (SQLite and
PostgreSQL), the settings with a test key, and a clock the tests can move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdp import clock
from cdp.db import transaction
from cdp.importer import import_file
from cdp.verification.service import VerificationSettings

DEMO_FILE = Path(__file__).resolve().parents[2] / "cdp" / "seed" / "demo_customers.jsonl"


@pytest.fixture
def demo(cdp_engine: Engine) -> Engine:
    """The demo customers: Ana (C-1001) with an unverified phone and email on file, Marcus
    (C-1005) with a verified phone and Messenger PSID."""
    with transaction(cdp_engine) as session:
        import_file(session, DEMO_FILE)
    return cdp_engine


@pytest.fixture
def settings() -> VerificationSettings:
    return VerificationSettings(key=b"verification-tests-key-0123456789")


class MovableClock:
    """Stands in for cdp.clock.utcnow: starts at the real time, moves when told."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def moving_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[MovableClock]:
    movable = MovableClock()
    monkeypatch.setattr(clock, "utcnow", movable)
    yield movable
