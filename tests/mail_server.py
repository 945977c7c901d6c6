"""A real SMTP server (aiosmtpd) on a local port for tests that send email."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tools.stack import free_port


@dataclass
class MailHandler:
    """Accepts mail and keeps it; answers DATA with the next of `data_replies` (the last one
    repeated) and refuses the recipients in `refused`."""

    data_replies: list[str] = field(default_factory=lambda: ["250 OK"])
    refused: dict[str, str] = field(default_factory=dict)
    delivered: list[tuple[str, list[str], Message]] = field(default_factory=list)
    data_attempts: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.data_replies[min(self.data_attempts, len(self.data_replies) - 1)]
        self.data_attempts += 1
        if reply.startswith("250"):
            email = message_from_bytes(envelope.original_content)
            self.delivered.append((envelope.mail_from, list(envelope.rcpt_tos), email))
        return reply


@dataclass
class MailServer:
    handler: MailHandler
    port: int


def serve_mail(handler: MailHandler, **options: Any) -> Iterator[MailServer]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield MailServer(handler, port)
    finally:
        controller.stop()
