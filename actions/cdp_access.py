"""One CDP engine per action-server process and one transaction per action.

The CDP calls are blocking (SQLAlchemy, psycopg 3, sqlite3), so they run in a worker thread:
an action waiting on the database must not stall every other conversation on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cdp.db import make_engine, run_in_transaction

T = TypeVar("T")


@lru_cache(maxsize=1)
def cdp_engine() -> Engine:
    """The process-wide connection pool, created on first use from `CDP_DATABASE_URL`."""
    return make_engine()


async def in_cdp_transaction(work: Callable[[Session], T]) -> T:
    """Run `work(session)` in one CDP transaction on a worker thread and return its result.

    `work` only touches the database: it runs again if the first try found the pooled
    connection dropped (see cdp.db.run_in_transaction).
    """
    return await asyncio.to_thread(run_in_transaction, cdp_engine(), work)
