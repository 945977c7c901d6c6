"""What the connectors share: HTTP replies for refused requests, one outgoing HTTP client."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from sanic import response
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

SEND_TIMEOUT = aiohttp.ClientTimeout(total=20)
# Outgoing messages: retries of transient failures (Sender.post).
SEND_ATTEMPTS = 3
RETRY_DELAYS_S = (0.5, 2.0)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def refuse(status: int, reason: str) -> HTTPResponse:
    """A clean 4xx with a JSON body that says why, logged once."""
    logger.warning("channel request refused (%s): %s", status, reason)
    return response.json({"error": reason}, status=status)


class Sender:
    """One aiohttp session per connector, created in the server's event loop on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=SEND_TIMEOUT)
        return self._session

    async def post(self, url: str, what: str, **kwargs: Any) -> bool:
        """POST one outgoing message; False (logged) when it could not be delivered.

        A transient failure (HTTP 429 or 5xx, a connection that failed, a timeout) is retried
        with the same request, at most SEND_ATTEMPTS times in all, waiting RETRY_DELAYS_S in
        between; any other answer >= 300 is final. Once an attempt is accepted (2xx) the
        message is never sent again. Neither Twilio's Messages API nor Messenger's Send API
        takes an idempotency key, so a timeout after the provider accepted a message can, in
        rare cases, deliver it twice: preferred to losing it. One lost reply never stops the
        rest of the turn.
        """
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                async with self.session().post(url, **kwargs) as reply:
                    if reply.status < 300:
                        return True
                    body = await reply.text()
                    logger.error(
                        "%s failed (attempt %s of %s): HTTP %s %s",
                        what,
                        attempt,
                        SEND_ATTEMPTS,
                        reply.status,
                        body[:500],
                    )
                    if reply.status not in TRANSIENT_STATUSES:
                        return False
            # asyncio.TimeoutError (aiohttp's timeouts) is not the builtin one before 3.11.
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.error(
                    "%s failed (attempt %s of %s): %r", what, attempt, SEND_ATTEMPTS, error
                )
            if attempt < SEND_ATTEMPTS:
                await asyncio.sleep(RETRY_DELAYS_S[attempt - 1])
        return False
