"""Handing a message (a one-time code, an invoice copy) to its configured sender."""

from __future__ import annotations

import asyncio
import logging

from actions.cdp_access import cdp_engine
from cdp.errors import CdpError
from cdp.verification.senders import CodeMessage, DeliveryFailed, sender_for

logger = logging.getLogger(__name__)


async def deliver(message: CodeMessage) -> bool:
    """Send through the sender of the message's target type (the outbox in development, Twilio
    or SMTP in production), off the event loop; False, logged, when it could not be delivered."""
    try:
        sender = sender_for(message.target_type, cdp_engine())
        await asyncio.to_thread(sender.send, message)
        return True
    except (DeliveryFailed, CdpError):
        logger.exception("%s was not delivered", message.label)
        return False
