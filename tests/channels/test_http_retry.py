"""Outgoing messages (Twilio, Messenger) are retried on transient failures only, against a
real local HTTP server that answers as scripted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from rasa_ext.channels import http
from rasa_ext.channels.http import Sender


class ScriptedApi:
    """Answers each request with the next scripted step: a status, or "slow" (too late)."""

    def __init__(self, steps: list[int | str]) -> None:
        self.steps = steps
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        step = self.steps[min(len(self.bodies), len(self.steps)) - 1]
        if step == "slow":
            await asyncio.sleep(1)
            return web.json_response({"ok": True})
        return web.json_response({"status": step}, status=int(step))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "SEND_TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    monkeypatch.setattr(http, "RETRY_DELAYS_S", (0.01, 0.02))


@asynccontextmanager
async def serve(api: ScriptedApi) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/send", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/send"
    finally:
        await runner.cleanup()


async def send(steps: list[int | str]) -> tuple[bool, ScriptedApi]:
    api = ScriptedApi(steps)
    sender = Sender()
    async with serve(api) as url:
        try:
            delivered = await sender.post(url, "test send", data={"Body": "hello"})
        finally:
            await sender.session().close()
    return delivered, api


@pytest.mark.parametrize(
    ("steps", "delivered", "attempts"),
    [
        ([200], True, 1),
        ([503, 500, 201], True, 3),
        ([429, 200], True, 2),
        ([502, 503, 504], False, 3),  # bounded: three attempts, then given up
        ([400], False, 1),  # the provider refused this message: retrying can't help
        ([403], False, 1),
        (["slow", 200], True, 2),  # a timeout is retried
    ],
)
async def test_transient_failures_are_retried_and_others_are_not(
    steps: list[int | str], delivered: bool, attempts: int
) -> None:
    result, api = await send(steps)
    assert result is delivered
    assert len(api.bodies) == attempts
    assert set(api.bodies) == {b"Body=hello"}  # the same message every time


async def test_an_unreachable_api_is_given_up_after_the_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with_no_server = "http://127.0.0.1:9/send"  # the discard port: nothing listens
    sender = Sender()
    started = asyncio.get_running_loop().time()
    try:
        assert await sender.post(with_no_server, "test send", data={"Body": "x"}) is False
    finally:
        await sender.session().close()
    assert asyncio.get_running_loop().time() - started < 5
    failures = [r.getMessage() for r in caplog.records if "test send failed" in r.getMessage()]
    assert [f.split("(")[1].split(")")[0] for f in failures] == [
        "attempt 1 of 3",
        "attempt 2 of 3",
        "attempt 3 of 3",
    ]
