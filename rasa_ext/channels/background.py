"""Turns run after the webhook has been acknowledged, one at a time per sender, in order.

Messenger and Twilio redeliver a webhook that is not answered quickly; acknowledging first
and running the turn afterwards stops the duplicate answers a slow action would cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class SenderQueues:
    """Runs jobs in the background; jobs of one sender run in the order they were submitted."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, sender: str, job: Callable[[], Awaitable[None]]) -> None:
        """Start `job` once the sender's earlier jobs are done; returns immediately."""
        lock = self._locks.setdefault(sender, asyncio.Lock())
        self._users[sender] = self._users.get(sender, 0) + 1
        task = asyncio.get_running_loop().create_task(self._run(sender, lock, job))
        self._tasks.add(task)  # a reference, so the task is not garbage-collected mid-run
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, sender: str, lock: asyncio.Lock, job: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            # asyncio.Lock wakes waiters first in, first out: submission order is kept.
            async with lock:
                await job()
        except Exception:
            logger.exception("a background turn for sender %s failed", sender)
        finally:
            self._users[sender] -= 1
            if self._users[sender] == 0:
                del self._users[sender]
                del self._locks[sender]

    async def drain(self) -> None:
        """Wait for every submitted job (used on shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
