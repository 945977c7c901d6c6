"""In-process fan-out of console events to every open browser (server-sent events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

QUEUE_LIMIT = 500


class Hub:
    """Each subscriber gets every event; a subscriber that stops reading is dropped."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str]] = set()

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        frame = f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
