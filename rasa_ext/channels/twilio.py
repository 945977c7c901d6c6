"""SMS and WhatsApp through Twilio: only requests Twilio signed reach Rasa.

Rasa 3.6's connector never checks `X-Twilio-Signature`, so anyone could post as any phone
number. Here the signature is checked with Twilio's own `RequestValidator` against the public
URL Twilio called (`public-url` in credentials.yml, since behind a proxy the host Rasa sees
differs), before anything is read. Choices go out as numbered text and a reply "1" is mapped
back to the first choice's payload; replies are sent through Twilio's REST API after the
webhook has been acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BasicAuth
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.twilio import TwilioInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from rasa_ext.channels.background import SenderQueues
from rasa_ext.channels.guard import channel_identity, text_problem, with_identity
from rasa_ext.channels.http import Sender, refuse
from rasa_ext.channels.render import choice_for_reply, choices_from_buttons, sms_bodies
from rasa_ext.channels.state import ChannelState, state_from_environment

logger = logging.getLogger(__name__)

DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"
WHATSAPP_PREFIX = "whatsapp:"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def sender_phone(sender: str) -> str:
    """The phone number of a Twilio `From`, without WhatsApp's "whatsapp:" prefix."""
    return sender.removeprefix(WHATSAPP_PREFIX)


class TwilioMessageOutput(OutputChannel):
    """Sends each response as numbered plain text, in parts of at most 1,600 characters."""

    @classmethod
    def name(cls) -> str:
        return "twilio"

    def __init__(
        self, settings: TwilioSettings, channel: str, sender: Sender, state: ChannelState
    ) -> None:
        self.settings = settings
        self.channel = channel
        self.http = sender
        self.state = state

    async def _send(self, recipient_id: str, body: dict[str, str]) -> None:
        sid = self.settings.account_sid
        await self.http.post(
            f"{self.settings.api_url}/2010-04-01/Accounts/{sid}/Messages.json",
            f"Twilio send ({self.channel})",
            auth=BasicAuth(sid, self.settings.auth_token),
            data={"To": recipient_id, "From": self.settings.number, **body},
        )

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        choices = choices_from_buttons(message.get("buttons") or message.get("quick_replies"))
        text = message.get("text") or ""
        if text or choices:
            for body in sms_bodies(text, choices):
                await self._send(recipient_id, {"Body": body})
        if choices:
            await self.state.remember_choices(f"{self.channel}:{recipient_id}", choices)
        if isinstance(message.get("image"), str):
            await self._send(recipient_id, {"MediaUrl": message["image"]})

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class TwilioSettings:
    """One Twilio sender: the account, the number replies come from, where Twilio calls us."""

    def __init__(self, credentials: dict[str, Any] | None, number_prefix: str = "") -> None:
        credentials = credentials or {}
        self.account_sid = str(credentials.get("account_sid") or "")
        self.auth_token = str(credentials.get("auth_token") or "")
        number = str(credentials.get("twilio_number") or "")
        self.number = number if number.startswith(number_prefix) else number_prefix + number
        self.api_url = str(credentials.get("api_url") or DEFAULT_TWILIO_API_URL).rstrip("/")
        self.public_url = str(credentials.get("public_url") or "").rstrip("/")


class TwilioSmsInput(TwilioInput):
    """credentials.yml: `rasa_ext.channels.twilio.TwilioSmsInput` with `account_sid`,
    `auth_token`, `twilio_number`, `public_url`, `api_url`; webhook /webhooks/twilio/webhook."""

    number_prefix = ""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls(TwilioSettings(credentials, cls.number_prefix))

    def __init__(self, settings: TwilioSettings) -> None:
        super().__init__(settings.account_sid, settings.auth_token, settings.number, False)
        if not settings.auth_token:
            logger.warning("%s has no auth token: every webhook will be refused", self.name())
        self.settings = settings
        self.http = Sender()
        self.state = state_from_environment()
        self.queues = SenderQueues()

    def get_output_channel(self) -> OutputChannel:
        return TwilioMessageOutput(self.settings, self.name(), self.http, self.state)

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public base URL (if set) + the path and query called."""
        if not self.settings.public_url:
            return request.url
        query = f"?{request.query_string}" if request.query_string else ""
        return f"{self.settings.public_url}{request.path}{query}"

    def is_signed(self, request: Request, form: Any) -> bool:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not self.settings.auth_token or not signature:
            return False
        validator = RequestValidator(self.settings.auth_token)
        return bool(validator.validate(self.signed_url(request), form, signature))

    async def _turn(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]], sender: str, text: str
    ) -> None:
        output = self.get_output_channel()
        problem = text_problem(text)
        if problem:
            await output.send_text_message(sender, problem)
            return
        # Offered choices answer only the next message: taken now, the reply offers new ones.
        offered = await self.state.recall_choices(f"{self.name()}:{sender}")
        await self.state.remember_choices(f"{self.name()}:{sender}", [])
        chosen = choice_for_reply(text, offered)
        identity = channel_identity("twilio_sender", sender_phone(sender), proven=True)
        await on_new_message(
            UserMessage(
                chosen or text,
                output,
                sender,
                input_channel=self.name(),
                metadata=with_identity(None, identity),
            )
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"{self.name()}_signed_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                form = request.form
            except (UnicodeDecodeError, ValueError):
                return refuse(400, "the body is not a valid form")
            if not self.is_signed(request, form):
                return refuse(403, f"missing or wrong {SIGNATURE_HEADER}")
            sender, text, message_sid = (form.get(k) for k in ("From", "Body", "MessageSid"))
            if not sender or not message_sid:
                return refuse(400, "From and MessageSid are required")
            if not await self.state.first_delivery(f"{self.name()}:{message_sid}"):
                logger.info("Twilio redelivered %s; already handled", message_sid)
            else:
                body = text if isinstance(text, str) else ""
                self.queues.submit(sender, lambda: self._turn(on_new_message, sender, body))
            return response.text(EMPTY_TWIML, content_type="text/xml")

        return webhook


class TwilioWhatsAppInput(TwilioSmsInput):
    """The same for WhatsApp (`From` is "whatsapp:+..."); webhook /webhooks/whatsapp/webhook."""

    number_prefix = WHATSAPP_PREFIX

    @classmethod
    def name(cls) -> str:
        return "whatsapp"
