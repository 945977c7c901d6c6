"""Small shared state of the connectors: delivery ids already seen, choices last offered.

With `RASA_LOCK_STORE_TYPE=redis` it lives in the same Redis as Rasa's locks, so every replica
sees a redelivery or a "1" reply to choices another replica sent. Otherwise it is kept in
this process, bounded. Keys expire, so neither grows without limit.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

from rasa_ext.channels.render import Choice

KEY_PREFIX = "northwind:channels"
# Messenger and Twilio redeliver within hours; a day is ample and bounds Redis memory.
SEEN_TTL_SECONDS = 24 * 3600
CHOICES_TTL_SECONDS = 24 * 3600
MEMORY_MAX_KEYS = 50_000


class ChannelState(Protocol):
    async def first_delivery(self, delivery_id: str) -> bool:
        """True the first time an id is seen (and marks it); False for every redelivery."""

    async def remember_choices(self, sender: str, choices: list[Choice]) -> None:
        """Keep the choices last offered to a sender (an empty list forgets them)."""

    async def recall_choices(self, sender: str) -> list[Choice]:
        """The choices last offered to a sender, if still kept."""


class MemoryState:
    """One process only: a bounded map of keys to (expiry, value), oldest dropped first."""

    def __init__(self, max_keys: int = MEMORY_MAX_KEYS) -> None:
        self._max_keys = max_keys
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def _get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return item[1]

    def _set(self, key: str, value: str, ttl: float) -> None:
        self._items[key] = (time.monotonic() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_keys:
            self._items.popitem(last=False)

    async def first_delivery(self, delivery_id: str) -> bool:
        key = f"seen:{delivery_id}"
        if self._get(key) is not None:
            return False
        self._set(key, "1", SEEN_TTL_SECONDS)
        return True

    async def remember_choices(self, sender: str, choices: list[Choice]) -> None:
        if choices:
            self._set(f"choices:{sender}", _dump(choices), CHOICES_TTL_SECONDS)
        else:
            self._items.pop(f"choices:{sender}", None)

    async def recall_choices(self, sender: str) -> list[Choice]:
        return _load(self._get(f"choices:{sender}"))


class RedisState:
    """Shared by every replica; SET NX makes "first delivery" atomic across them."""

    def __init__(self, client: Redis) -> None:
        self._redis = client

    async def first_delivery(self, delivery_id: str) -> bool:
        key = f"{KEY_PREFIX}:seen:{delivery_id}"
        return bool(await self._redis.set(key, "1", nx=True, ex=SEEN_TTL_SECONDS))

    async def remember_choices(self, sender: str, choices: list[Choice]) -> None:
        key = f"{KEY_PREFIX}:choices:{sender}"
        if choices:
            await self._redis.set(key, _dump(choices), ex=CHOICES_TTL_SECONDS)
        else:
            await self._redis.delete(key)

    async def recall_choices(self, sender: str) -> list[Choice]:
        raw = await self._redis.get(f"{KEY_PREFIX}:choices:{sender}")
        return _load(raw.decode() if isinstance(raw, bytes) else raw)


def _dump(choices: list[Choice]) -> str:
    return json.dumps([[c.title, c.payload] for c in choices])


def _load(raw: str | None) -> list[Choice]:
    return [Choice(title, payload) for title, payload in json.loads(raw)] if raw else []


def state_from_environment() -> ChannelState:
    """Redis when the lock store is Redis (same host, port, password and db), else memory."""
    if os.environ.get("RASA_LOCK_STORE_TYPE", "").strip().lower() != "redis":
        return MemoryState()
    client = Redis(
        host=os.environ.get("RASA_REDIS_HOST") or "localhost",
        port=int(os.environ.get("RASA_REDIS_PORT") or 6379),
        password=os.environ.get("RASA_REDIS_PASSWORD") or None,
        db=int(os.environ.get("RASA_REDIS_DB") or 1),
    )
    return RedisState(client)
