"""The console's HTTP server (Sanic): login, queues, conversation, actions, live events.

Database work runs in worker threads, one transaction per request; Rasa is called through its
HTTP API. The watchdog task (`scan`) makes sure nothing gets stuck: handoffs nobody accepted
in time go back to the bot, and the bot is told about every handoff that ended until Rasa
confirms, across restarts of any process (the state lives in the database).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import jwt
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, file, json
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cdp.db import make_engine, run_in_transaction
from cdp.handoff.models import Agent, HandoffState, MessageAuthor
from cdp.handoff.service import (
    HandoffConflict,
    HandoffError,
    authenticate,
    bot_not_told,
    get_handoff,
    open_handoff,
    overdue,
    transition,
)
from console import desk, rasa
from console.helpdesk.chatwoot import ChatwootDesk, sync_handoff
from console.live import Hub
from console.settings import ConsoleSettings

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "console_session"
T = TypeVar("T")
ERRORS: list[tuple[type[Exception], int]] = [
    (HandoffConflict, 409),
    (desk.Forbidden, 403),
    (desk.NotFound, 404),
    (HandoffError, 400),
    (rasa.RasaError, 502),
]


class Console:
    """Process-wide state: settings, the database, the event hub, per-conversation locks."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url)
        self.hub = Hub()
        self.locks: dict[str, asyncio.Lock] = {}
        self.chatwoot = ChatwootDesk(settings.chatwoot) if settings.chatwoot else None

    async def db(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(run_in_transaction, self.engine, work)

    def lock(self, conversation_id: str) -> asyncio.Lock:
        return self.locks.setdefault(conversation_id, asyncio.Lock())

    async def rasa_execute(self, conversation_id: str, action: str) -> None:
        await asyncio.to_thread(
            rasa.execute,
            self.settings.rasa_url,
            self.settings.rasa_token,
            conversation_id,
            action,
        )

    async def tell_bot_it_ended(self, conversation_id: str) -> None:
        """Run action_handoff_ended; on failure the watchdog retries (bot_notified_at)."""
        try:
            async with self.lock(conversation_id):
                await self.rasa_execute(conversation_id, "action_handoff_ended")
        except rasa.RasaError as error:
            logger.warning("bot not told yet, will retry: %s", error)

    async def deliver(self, handoff_id: str, conversation_id: str) -> list[dict[str, Any]]:
        """Relay pending agent replies through Rasa and record each one's outcome."""
        error: str | None = None
        async with self.lock(conversation_id):
            try:
                await self.rasa_execute(conversation_id, "action_handoff_relay")
            except rasa.RasaError as failure:
                error = str(failure)
        changed = await self.db(lambda s: desk.delivery_outcome(s, handoff_id, error))
        for message in changed:
            self.hub.publish("message", message)
        return changed


def session_token(settings: ConsoleSettings, username: str) -> str:
    expires = int(time.time() + settings.session_hours * 3600)
    return jwt.encode({"sub": username, "exp": expires}, settings.secret, algorithm="HS256")


def _agent_of(request: Request, console: Console) -> str | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims = jwt.decode(token, console.settings.secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return str(claims.get("sub"))


async def current_agent(request: Request) -> Agent | None:
    console: Console = request.app.ctx.console
    username = _agent_of(request, console)
    if username is None:
        return None
    return await console.db(lambda s: s.get(Agent, username))


def internal_allowed(request: Request, console: Console) -> bool:
    given = request.headers.get("X-Handoff-Token", "")
    return hmac.compare_digest(given, console.settings.internal_token)


def error_response(error: Exception) -> HTTPResponse:
    for kind, status in ERRORS:
        if isinstance(error, kind):
            return json({"error": str(error)}, status=status)
    raise error


async def scan(console: Console, seen: dict[str, str]) -> None:
    """One watchdog pass: time out waiting handoffs, tell the bot, refresh the queues."""
    now = datetime.now(timezone.utc)
    for handoff in await console.db(lambda s: overdue(s, now)):
        try:
            await console.db(
                lambda s, h=handoff: transition(
                    s,
                    h.id,
                    HandoffState.ABANDONED,
                    "timeout",
                    now,
                    {"why": "nobody accepted in time"},
                )
            )
        except HandoffConflict:
            continue  # claimed in the meantime
        console.hub.publish("handoff", {"id": handoff.id, "state": "abandoned"})
    for handoff in await console.db(bot_not_told):
        await console.tell_bot_it_ended(handoff.conversation_id)
    states = await console.db(
        lambda s: {h.id: h.state.value for h in desk.queue(s, None, desk.OPEN_STATES)}
    )
    if states != seen:
        seen.clear()
        seen.update(states)
        console.hub.publish("queue", {"open": len(states)})


async def watchdog(console: Console) -> None:
    seen: dict[str, str] = {}
    while True:
        try:
            await scan(console, seen)
        except Exception:  # the watchdog must outlive any one failure
            logger.exception("watchdog pass failed")
        await asyncio.sleep(console.settings.scan_seconds)


def create_app(settings: ConsoleSettings, name: str = "agent_console") -> Sanic:
    app = Sanic(name)
    app.config.RESPONSE_TIMEOUT = 24 * 3600  # SSE streams stay open
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 2.0  # ...so don't wait for them to end on stop
    app.ctx.console = Console(settings)

    @app.after_server_start
    async def start_watchdog(app: Sanic, _loop: Any) -> None:
        app.ctx.watchdog = asyncio.get_running_loop().create_task(watchdog(app.ctx.console))

    @app.before_server_stop
    async def stop_watchdog(app: Sanic, _loop: Any) -> None:
        app.ctx.watchdog.cancel()

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        return await file(STATIC / "index.html")

    app.static("/static", str(STATIC))

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.post("/api/login")
    async def login(request: Request) -> HTTPResponse:
        body = request.json or {}
        username, password = str(body.get("username", "")), str(body.get("password", ""))
        console: Console = request.app.ctx.console
        agent = await console.db(lambda s: authenticate(s, username, password))
        if agent is None:
            return json({"error": "wrong username or password"}, status=401)
        response = json(desk.agent_json(agent))
        response.cookies[COOKIE] = session_token(console.settings, agent.username)
        response.cookies[COOKIE]["httponly"] = True
        response.cookies[COOKIE]["samesite"] = "Strict"
        return response

    @app.post("/api/logout")
    async def logout(request: Request) -> HTTPResponse:
        response = json({"ok": True})
        del response.cookies[COOKIE]
        return response

    def with_agent(handler: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(request: Request, **kwargs: Any) -> HTTPResponse:
            agent = await current_agent(request)
            if agent is None:
                return json({"error": "log in first"}, status=401)
            try:
                return await handler(request, agent, **kwargs)
            except Exception as error:  # mapped to a status, or re-raised
                return error_response(error)

        wrapped.__name__ = handler.__name__
        return wrapped

    @app.get("/api/me")
    @with_agent
    async def me(request: Request, agent: Agent) -> HTTPResponse:
        return json(desk.agent_json(agent))

    @app.get("/api/queue")
    @with_agent
    async def agent_queue(request: Request, agent: Agent) -> HTTPResponse:
        now = datetime.now(timezone.utc)
        return json(await request.app.ctx.console.db(lambda s: desk.agent_queues(s, agent, now)))

    @app.get("/api/handoffs/<handoff_id>")
    @with_agent
    async def view(request: Request, agent: Agent, handoff_id: str) -> HTTPResponse:
        console: Console = request.app.ctx.console
        await reconcile(console, handoff_id)
        return json(await console.db(lambda s: desk.conversation_view(s, handoff_id, agent)))

    @app.post("/api/handoffs/<handoff_id>/claim")
    @with_agent
    async def claim(request: Request, agent: Agent, handoff_id: str) -> HTTPResponse:
        console: Console = request.app.ctx.console
        handoff = await console.db(lambda s: desk.claim(s, handoff_id, agent))
        console.hub.publish("handoff", {"id": handoff_id, "state": handoff.state.value})
        console.hub.publish("queue", {})
        return json({"id": handoff_id, "state": handoff.state.value, "agent": handoff.agent})

    async def close(
        request: Request, agent: Agent, handoff_id: str, to: HandoffState
    ) -> HTTPResponse:
        console: Console = request.app.ctx.console
        handoff = await console.db(lambda s: desk.close(s, handoff_id, agent, to))
        console.hub.publish("handoff", {"id": handoff_id, "state": handoff.state.value})
        console.hub.publish("queue", {})
        await console.tell_bot_it_ended(handoff.conversation_id)
        return json({"id": handoff_id, "state": handoff.state.value})

    @app.post("/api/handoffs/<handoff_id>/handback")
    @with_agent
    async def handback(request: Request, agent: Agent, handoff_id: str) -> HTTPResponse:
        return await close(request, agent, handoff_id, HandoffState.RETURNED)

    @app.post("/api/handoffs/<handoff_id>/resolve")
    @with_agent
    async def resolve(request: Request, agent: Agent, handoff_id: str) -> HTTPResponse:
        return await close(request, agent, handoff_id, HandoffState.RESOLVED)

    async def write(
        request: Request, agent: Agent, handoff_id: str, author: MessageAuthor
    ) -> HTTPResponse:
        console: Console = request.app.ctx.console
        body = request.json or {}
        message, created = await console.db(
            lambda s: desk.write(s, handoff_id, agent, body.get("key"), body.get("text"), author)
        )
        if created:
            console.hub.publish("message", message)
        unsent = author is MessageAuthor.AGENT and message["delivery"] != "sent"
        if unsent and (created or body.get("retry")):
            handoff = await console.db(lambda s: get_handoff(s, handoff_id))
            changed = await console.deliver(handoff_id, handoff.conversation_id)
            message = next((m for m in changed if m["id"] == message["id"]), message)
        return json(message, status=201 if created else 200)

    @app.post("/api/handoffs/<handoff_id>/reply")
    @with_agent
    async def reply(request: Request, agent: Agent, handoff_id: str) -> HTTPResponse:
        return await write(request, agent, handoff_id, MessageAuthor.AGENT)

    @app.post("/api/handoffs/<handoff_id>/note")
    @with_agent
    async def note(request: Request, agent: Agent, handoff_id: str) -> HTTPResponse:
        return await write(request, agent, handoff_id, MessageAuthor.NOTE)

    @app.get("/api/stream")
    async def stream(request: Request) -> HTTPResponse | None:
        if await current_agent(request) is None:
            return json({"error": "log in first"}, status=401)
        console: Console = request.app.ctx.console
        response = await request.respond(
            content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
        queue = console.hub.subscribe()
        try:
            await response.send(": connected\n\n")
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), timeout=15)
                except asyncio.TimeoutError:
                    frame = ": keep-alive\n\n"
                await response.send(frame)
        finally:
            console.hub.unsubscribe(queue)
        return None

    @app.post("/api/internal/messages")
    async def inbound(request: Request) -> HTTPResponse:
        console: Console = request.app.ctx.console
        if not internal_allowed(request, console):
            return json({"error": "bad X-Handoff-Token"}, status=401)
        body = request.json or {}
        conversation_id, message_id = body.get("conversation_id"), body.get("message_id")
        text = body.get("text")
        if not all(isinstance(v, str) and v for v in (conversation_id, message_id, text)):
            return json(
                {"error": "message: fields conversation_id, message_id, text must be strings"},
                status=400,
            )
        stamp = body.get("timestamp")
        at = datetime.fromtimestamp(stamp, timezone.utc) if stamp else datetime.now(timezone.utc)
        stored = await console.db(
            lambda s: desk.store_customer_message(s, conversation_id, message_id, text, at)
        )
        if stored is not None:
            console.hub.publish("message", stored)
        elif await console.db(lambda s: open_handoff(s, conversation_id)) is None:
            # Rasa still thinks a person owns it, but nobody does: give it back to the bot.
            request.app.add_task(console.tell_bot_it_ended(conversation_id))
        return json({"stored": stored is not None})

    @app.post("/api/internal/handoffs/<handoff_id>/notify")
    async def notify(request: Request, handoff_id: str) -> HTTPResponse:
        console: Console = request.app.ctx.console
        if not internal_allowed(request, console):
            return json({"error": "bad X-Handoff-Token"}, status=401)
        console.hub.publish("queue", {"new": handoff_id})
        if console.chatwoot is not None:
            request.app.add_task(sync_handoff(console, console.chatwoot, handoff_id))
        return json({"ok": True})

    @app.post("/api/chatwoot/webhook")
    async def chatwoot_webhook(request: Request) -> HTTPResponse:
        console: Console = request.app.ctx.console
        if console.chatwoot is None:
            return json({"error": "Chatwoot is not configured"}, status=404)
        if not console.chatwoot.webhook_allowed(request.args.get("token", "")):
            return json({"error": "bad token"}, status=401)
        change = console.chatwoot.ownership_change(request.json or {})
        if change is None:
            return json({"ignored": True})
        handoff_id, to_state = change
        now = datetime.now(timezone.utc)
        try:
            handoff = await console.db(
                lambda s: transition(s, handoff_id, to_state, "chatwoot", now, {"via": "webhook"})
            )
        except HandoffError as error:
            return json({"ignored": True, "why": str(error)})
        console.hub.publish("queue", {})
        await console.tell_bot_it_ended(handoff.conversation_id)
        return json({"id": handoff_id, "state": handoff.state.value})

    return app


async def reconcile(console: Console, handoff_id: str) -> None:
    """Store customer messages Rasa logged but never managed to forward."""
    handoff = await console.db(lambda s: get_handoff(s, handoff_id))
    if handoff is None or handoff.state not in desk.OPEN_STATES:
        return
    try:
        found = await asyncio.to_thread(
            rasa.customer_messages_since,
            console.settings.rasa_url,
            console.settings.rasa_token,
            handoff.conversation_id,
            handoff.requested_at,
        )
    except rasa.RasaError as error:
        logger.warning("could not reconcile %s: %s", handoff_id, error)
        return
    for message in found:
        stored = await console.db(
            lambda s, m=message: desk.store_customer_message(
                s, handoff.conversation_id, m["message_id"], m["text"], m["at"]
            )
        )
        if stored is not None:
            console.hub.publish("message", stored)
