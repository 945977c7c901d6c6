"""Run inside the Rasa venv by test_state.py: the connectors' shared state and background
queues, on a real Redis and in memory. Prints one JSON line with what it saw."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets

from rasa_ext.channels.background import SenderQueues
from rasa_ext.channels.messenger import valid_signature
from rasa_ext.channels.render import Choice
from rasa_ext.channels.state import MemoryState, state_from_environment

CHOICES = [Choice("Yes", "/affirm"), Choice("No", "/deny")]


async def exercise(state: object) -> dict[str, object]:
    key = secrets.token_hex(8)
    first = [await state.first_delivery(f"test:{key}") for _ in range(3)]
    await state.remember_choices(f"test:{key}", CHOICES)
    recalled = await state.recall_choices(f"test:{key}")
    await state.remember_choices(f"test:{key}", [])
    forgotten = await state.recall_choices(f"test:{key}")
    return {
        "type": type(state).__name__,
        "first": first,
        "recalled": [[c.title, c.payload] for c in recalled],
        "forgotten": forgotten,
    }


async def shared_between_replicas() -> list[bool]:
    """Two Redis-backed states (two replicas) racing on one delivery id: exactly one wins."""
    key = f"test:{secrets.token_hex(8)}"
    replicas = [state_from_environment() for _ in range(2)]
    return list(await asyncio.gather(*(r.first_delivery(key) for r in replicas for _ in range(5))))


async def queue_order() -> dict[str, list[int]]:
    queues, seen = SenderQueues(), {"a": [], "b": []}

    def job(sender: str, n: int):
        async def run() -> None:
            await asyncio.sleep(0.01 * (5 - n))  # later jobs are quicker: order must still hold
            seen[sender].append(n)
            if n == 2:
                raise RuntimeError("a failing turn must not stop the next ones")

        return run

    for n in range(5):
        for sender in ("a", "b"):
            queues.submit(sender, job(sender, n))
    await queues.drain()
    return seen


async def memory_bound() -> int:
    state = MemoryState(max_keys=100)
    for n in range(1000):
        await state.first_delivery(str(n))
    return len(state._items)


async def main() -> None:
    memory = await exercise(MemoryState())
    os.environ["RASA_LOCK_STORE_TYPE"] = "redis"
    redis = await exercise(state_from_environment())
    race = await shared_between_replicas()
    order = await queue_order()
    body = b'{"object":"page"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    signatures = {
        "good": valid_signature("s3cret", body, good),
        "empty_secret": valid_signature("", body, "sha256="),
        "sha1": valid_signature("s3cret", body, "sha1=abc"),
        "missing": valid_signature("s3cret", body, None),
    }
    print(
        json.dumps(
            {
                "memory": memory,
                "redis": redis,
                "race": race,
                "order": order,
                "bound": await memory_bound(),
                "signatures": signatures,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
