"""Facebook Messenger: signed webhooks only, every event of a batch, each message once.

Rasa 3.6's connector handles only the first event of a batched delivery, answers the
webhook after the whole turn (Messenger then redelivers) and checks the old SHA-1 header.
This one checks `X-Hub-Signature-256` before reading anything, skips redelivered message
ids, acknowledges at once and runs the turns in the background, in order per sender.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa_ext.channels.background import SenderQueues
from rasa_ext.channels.guard import REPLY_NOT_TEXT, channel_identity, text_problem, with_identity
from rasa_ext.channels.http import Sender, refuse
from rasa_ext.channels.render import choice_for_reply, choices_from_buttons, messenger_messages
from rasa_ext.channels.state import ChannelState, state_from_environment

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com/v18.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"


def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """`header` is "sha256=" + the hex HMAC-SHA256 of the raw body with the app secret."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def incoming_text(event: dict[str, Any]) -> object:
    """The text Rasa should get for one messaging event: payload of a button, or typed text.

    Returns None for events that are not customer messages (echoes, deliveries, reads), and
    a non-string for a message without text (a sticker, an attachment).
    """
    message = event.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None
        quick_reply = message.get("quick_reply")
        if isinstance(quick_reply, dict) and isinstance(quick_reply.get("payload"), str):
            return quick_reply["payload"]
        return message.get("text", False)
    postback = event.get("postback")
    if isinstance(postback, dict):
        return postback.get("payload", False)
    return None


def delivery_id(event: dict[str, Any]) -> str | None:
    """The id Messenger keeps when it redelivers: the message id (`mid`)."""
    for key in ("message", "postback"):
        part = event.get(key)
        if isinstance(part, dict) and isinstance(part.get("mid"), str):
            return part["mid"]
    return None


class MessengerOutput(OutputChannel):
    """Sends responses through the Send API, shaped for Messenger by `render`."""

    @classmethod
    def name(cls) -> str:
        return "facebook"

    def __init__(self, graph_api_url: str, page_token: str, sender: Sender, state: ChannelState):
        self.url = f"{graph_api_url.rstrip('/')}/me/messages"
        self.page_token = page_token
        self.http = sender
        self.state = state

    async def _send(self, recipient_id: str, message: dict[str, Any]) -> None:
        body = {"recipient": {"id": recipient_id}, "messaging_type": "RESPONSE", "message": message}
        await self.http.post(
            self.url, "Messenger send", params={"access_token": self.page_token}, json=body
        )

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        choices = choices_from_buttons(message.get("quick_replies") or message.get("buttons"))
        text = message.get("text") or ""
        if text or choices:
            for part in messenger_messages(text, choices):
                await self._send(recipient_id, part)
        if choices:
            await self.state.remember_choices(f"facebook:{recipient_id}", choices)
        if isinstance(message.get("image"), str):
            image = {"type": "image", "payload": {"url": message["image"], "is_reusable": True}}
            await self._send(recipient_id, {"attachment": image})
        if isinstance(message.get("custom"), dict):
            await self._send(recipient_id, message["custom"])

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class MessengerInput(FacebookInput):
    """credentials.yml: `rasa_ext.channels.messenger.MessengerInput` with `verify`, `secret`,
    `page-access-token` and `graph-api-url`; webhook at /webhooks/facebook/webhook."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        return cls(
            str(credentials.get("verify") or ""),
            str(credentials.get("secret") or ""),
            str(credentials.get("page-access-token") or ""),
            str(credentials.get("graph-api-url") or DEFAULT_GRAPH_API_URL),
        )

    def __init__(self, verify: str, secret: str, page_token: str, graph_api_url: str) -> None:
        super().__init__(verify, secret, page_token)
        if not secret:
            logger.warning("Messenger has no app secret: every webhook will be refused (403)")
        self.graph_api_url = graph_api_url
        self.http = Sender()
        self.state = state_from_environment()
        self.queues = SenderQueues()

    def get_output_channel(self) -> OutputChannel:
        return MessengerOutput(self.graph_api_url, self.fb_access_token, self.http, self.state)

    async def _turn(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]], psid: str, text: object
    ) -> None:
        output = self.get_output_channel()
        problem = text_problem(text)
        if problem or not isinstance(text, str):
            await output.send_text_message(psid, problem or REPLY_NOT_TEXT)
            return
        # Offered choices answer only the next message: taken now, the reply offers new ones.
        offered = await self.state.recall_choices(f"facebook:{psid}")
        await self.state.remember_choices(f"facebook:{psid}", [])
        chosen = choice_for_reply(text, offered)
        identity = channel_identity("messenger_psid", psid, proven=True)
        await on_new_message(
            UserMessage(
                chosen or text,
                output,
                psid,
                input_channel=self.name(),
                metadata=with_identity(None, identity),
            )
        )

    async def _accept(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]], payload: object
    ) -> str | None:
        """Queue every customer message of a delivery; the reason if the payload is malformed."""
        if not isinstance(payload, dict) or payload.get("object") != "page":
            return 'the body must be a JSON object with "object": "page"'
        entries = payload.get("entry")
        if not isinstance(entries, list):
            return 'the body has no "entry" list'
        for entry in entries:
            events = entry.get("messaging") if isinstance(entry, dict) else None
            for event in events if isinstance(events, list) else ():
                sender = event.get("sender") if isinstance(event, dict) else None
                psid = sender.get("id") if isinstance(sender, dict) else None
                text = incoming_text(event) if isinstance(psid, str) and psid else None
                if text is None:
                    continue
                mid = delivery_id(event)
                if mid is not None and not await self.state.first_delivery(f"facebook:{mid}"):
                    logger.info("Messenger redelivered %s; already handled", mid)
                    continue
                self.queues.submit(
                    psid, lambda psid=psid, text=text: self._turn(on_new_message, psid, text)
                )
        return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("messenger_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            token = request.args.get("hub.verify_token")
            if self.fb_verify and token and hmac.compare_digest(token, self.fb_verify):
                return response.text(request.args.get("hub.challenge") or "")
            return refuse(403, "hub.verify_token does not match")

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.body or b""
            if not valid_signature(self.fb_secret, body, request.headers.get(SIGNATURE_HEADER)):
                return refuse(403, f"missing or wrong {SIGNATURE_HEADER}")
            try:
                payload = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError):
                return refuse(400, "the body is not valid JSON")
            problem = await self._accept(on_new_message, payload)
            if problem:
                return refuse(400, problem)
            return response.text("EVENT_RECEIVED")

        return webhook
