"""The web chat (socket.io, plus the page that embeds it) and REST for development and tests.

Neither channel can prove who is writing: the conversation id is the client's choice. So both
mark their identity as not proven and replace any `channel_identity` a client sends; only the
signed `customer_token` in the metadata identifies a customer (checked by the actions).
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from rasa_ext.channels.guard import (
    MAX_MESSAGE_CHARS,
    REPLY_NOT_TEXT,
    channel_identity,
    is_client_conversation_id,
    text_problem,
    with_identity,
)
from rasa_ext.channels.http import refuse

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
WEB_DIR = REPO / "web"
# The browser library comes from npm (package.json), served as installed, never copied here.
SOCKETIO_CLIENT = REPO / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
MAX_REST_SENDER_CHARS = 128
REPLY_BAD_SESSION = "This chat session is not valid any more. Please reload the page."


class DevRestInput(RestInput):
    """`rasa_ext.channels.web.DevRestInput`: Rasa's REST webhook with its input checked.

    Development and tests only (credentials.yml); the production credentials leave it out.
    Bad JSON, a missing sender or text, or a message over 10,000 characters get a 4xx that
    says why; the client cannot choose the input channel or claim a channel identity.
    """

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        webhook = Blueprint("dev_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                payload = json.loads(request.body or b"")
            except (UnicodeDecodeError, json.JSONDecodeError):
                return refuse(400, "the body is not valid UTF-8 JSON")
            if not isinstance(payload, dict):
                return refuse(400, "the body must be a JSON object")
            sender, text = payload.get("sender"), payload.get("message")
            metadata = payload.get("metadata")
            if not isinstance(sender, str) or not 0 < len(sender) <= MAX_REST_SENDER_CHARS:
                return refuse(400, f"sender must be a string of 1-{MAX_REST_SENDER_CHARS} chars")
            if metadata is not None and not isinstance(metadata, dict):
                return refuse(400, "metadata must be a JSON object")
            problem = text_problem(text)
            if problem:
                too_long = isinstance(text, str) and len(text) > MAX_MESSAGE_CHARS
                return refuse(413 if too_long else 400, f"message: {problem}")
            identity = channel_identity("rest_sender", sender, proven=False)
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    text,
                    collector,
                    sender,
                    input_channel=self.name(),
                    metadata=with_identity(metadata, identity),
                )
            )
            return response.json(collector.messages)

        return webhook


class WebChatBlueprint(SocketBlueprint):
    """The socket.io server, plus the web chat page at /webchat on the same host."""

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        super().register(app, options)
        app.add_route(_webchat_page, "/webchat", methods=["GET"], name="webchat_page")
        app.add_route(_webchat_asset, "/webchat/<asset:str>", methods=["GET"], name="webchat_asset")


WEBCHAT_ASSETS = {
    "widget.js": WEB_DIR / "widget.js",
    "widget.css": WEB_DIR / "widget.css",
    "socket.io.min.js": SOCKETIO_CLIENT,
}


async def _webchat_page(_: Request) -> HTTPResponse:
    return await response.file(WEB_DIR / "index.html")


async def _webchat_asset(_: Request, asset: str) -> HTTPResponse:
    path = WEBCHAT_ASSETS.get(asset)
    if path is None or not path.exists():
        return response.json({"error": f"no web chat file {asset!r}"}, status=404)
    return await response.file(path)


class WebChatInput(SocketIOInput):
    """`rasa_ext.channels.web.WebChatInput`: socket.io for the web chat, with checked input.

    Session ids must be random-looking (16-64 of A-Z a-z 0-9 _ -) so one visitor cannot fall
    into another's conversation by a guessable id; a client sends messages only to the session
    it joined. Bad messages get a clear bot reply instead of reaching Rasa.
    """

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            bool(credentials.get("session_persistence", True)),
            credentials.get("socketio_path", "/socket.io"),
            None,
            "HS256",
            credentials.get("metadata_key", "metadata"),
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        webhook = WebChatBlueprint(sio, self.socketio_path, "webchat_socketio", __name__)
        self.sio = sio

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def reply(room: str, text: str) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=room)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: object) -> None:
            wanted = data.get("session_id") if isinstance(data, dict) else None
            session_id = wanted if is_client_conversation_id(wanted) else uuid.uuid4().hex
            entered = sio.enter_room(sid, session_id)
            if inspect.isawaitable(entered):  # python-socketio 5.10+ made it a coroutine
                await entered
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: object) -> None:
            if not isinstance(data, dict):
                await reply(sid, REPLY_NOT_TEXT)
                return
            session_id = data.get("session_id")
            if not is_client_conversation_id(session_id) or session_id not in sio.rooms(sid):
                await reply(sid, REPLY_BAD_SESSION)
                return
            text = data.get("message")
            problem = text_problem(text)
            if problem or not isinstance(text, str):
                await reply(session_id, problem or REPLY_NOT_TEXT)
                return
            metadata = data.get(self.metadata_key)
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except json.JSONDecodeError:
                    metadata = None
            identity = channel_identity("socketio_session", session_id, proven=False)
            await on_new_message(
                UserMessage(
                    text,
                    SocketIOOutput(sio, self.bot_message_evt),
                    session_id,
                    input_channel=self.name(),
                    metadata=with_identity(metadata, identity),
                )
            )

        return webhook
