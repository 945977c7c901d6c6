"""Talking to a running assistant from a test: send messages, mint tokens, restart Rasa."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from cdp.identity_token import mint_token
from tools.stack import RunningServer, StackSettings, start_rasa


@dataclass
class Assistant:
    """A running assistant and what a test needs to talk to it and inspect its CDP."""

    backend: str
    settings: StackSettings
    servers: dict[str, RunningServer]

    def token(self, customer_id: str, ttl_seconds: int = 600) -> str:
        return mint_token(customer_id, self.settings.identity_secret, ttl_seconds)

    def say(self, sender: str, text: str, token: str | None = None, **metadata: Any) -> list[dict]:
        if token is not None:
            metadata["customer_token"] = token
        reply = requests.post(
            f"{self.settings.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, "metadata": metadata},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return reply.json()

    def restart_rasa(self) -> None:
        self.servers["rasa"].stop()
        self.servers["rasa"] = start_rasa(self.settings)


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)
