"""What the connectors share: HTTP replies for refused requests, one outgoing HTTP client."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from sanic import response
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

SEND_TIMEOUT = aiohttp.ClientTimeout(total=20)


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
        """POST and log a failure instead of raising: one lost reply must not stop the rest."""
        try:
            async with self.session().post(url, **kwargs) as reply:
                if reply.status >= 300:
                    body = await reply.text()
                    logger.error("%s failed: HTTP %s %s", what, reply.status, body[:500])
                    return False
                return True
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.error("%s failed: %r", what, error)
            return False
