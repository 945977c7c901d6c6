"""What both caches of rasa_ext share: a bounded store of recently active conversations, and
the test that a conversation's events continue those seen before."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from rasa.shared.core.events import Event

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentItems(Generic[K, V]):
    """Least-recently-used items, at most the number in `size_env` (default `default_size`)."""

    def __init__(self, size_env: str, default_size: int) -> None:
        self.size = int(os.environ.get(size_env, default_size))
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: K, item: V) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def drop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def continues(seen: Sequence[Event], events: Sequence[Event]) -> bool:
    """True when `events` starts with the very event objects of `seen` (events only append)."""
    return len(events) >= len(seen) and all(a is b for a, b in zip(seen, events, strict=False))
