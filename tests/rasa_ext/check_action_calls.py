"""Runs in the Rasa venv (called by test_patches.py): the action-call payload is Rasa's, with the
events of the last turns of the current session only, user events without their rankings (the
latest message keeps them); the client session stays open."""

import asyncio
import json
import os

from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from rasa_ext.action_calls import action_call_format, shared_session

DOMAIN = Domain.from_yaml("version: '3.1'\nslots:\n  customer_id:\n    type: any\n    mappings: []")
original_format = RemoteAction._action_call_format


RANKED = {
    "intent_ranking": [{"name": "greet", "confidence": 0.9}, {"name": "faq", "confidence": 0.1}],
    "response_selector": {"faq": {"ranking": [{"intent_response_key": "faq/hours"}]}},
}


def turn(n):
    intent = {"name": "greet", "confidence": 0.9}
    entities = [{"entity": "order_id", "value": f"O-{n}", "start": 0, "end": 1}]
    parse_data = {"intent": intent, "entities": entities, "text": f"message {n}", **RANKED}
    return [
        ActionExecuted("action_listen"),
        UserUttered(f"message {n}", intent, entities, parse_data),
        ActionExecuted("utter_greet"),
        BotUttered(f"reply {n}"),
    ]


def tracker(sessions, turns_per_session):
    events = []
    for session in range(sessions):
        events += [ActionExecuted("action_session_start"), SessionStarted()]
        events.append(SlotSet("customer_id", f"C-{session}"))
        for n in range(turns_per_session):
            events += turn(n)
    return DialogueStateTracker.from_events("someone", events, DOMAIN.slots)


def payload_checks():
    action = RemoteAction("action_check", EndpointConfig("http://localhost:1"))
    results = {}
    for name, (sessions, turns, window) in {
        "long session": (1, 40, 10),
        "short session after a long one": (2, 3, 10),
        "one turn window": (1, 5, 1),
    }.items():
        os.environ["RASA_ACTION_TRACKER_TURNS"] = str(window)
        t = tracker(sessions, turns)
        full = original_format(action, t, DOMAIN)
        got = action_call_format(action, t, DOMAIN)
        all_events = full["tracker"].pop("events")
        events = got["tracker"].pop("events")
        session_start = max(i for i, e in enumerate(all_events) if e["event"] == "session_started")
        user_positions = [i for i, e in enumerate(all_events) if e["event"] == "user"]
        start = max(session_start, user_positions[-window] if len(user_positions) >= window else 0)
        unranked = [
            {**e, "parse_data": {k: v for k, v in e["parse_data"].items() if k not in RANKED}}
            if e["event"] == "user"
            else e
            for e in all_events[start:]
        ]
        results[name] = (
            got == full
            and events == unranked
            and all(e["parse_data"]["entities"] for e in events if e["event"] == "user")
            and got["tracker"]["latest_message"]["intent_ranking"] == RANKED["intent_ranking"]
            and got["tracker"]["latest_message"]["response_selector"] == RANKED["response_selector"]
        )
    return results


async def session_checks():
    peers = []

    async def handle(request):
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"echo": await request.json()})

    app = web.Application()
    app.router.add_post("/webhook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    EndpointConfig.session = shared_session
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
    answers = [await endpoint.request(json={"n": n, "text": "héllo/😀"}) for n in range(3)]
    async with endpoint.session() as session:
        await session.close()
    await runner.cleanup()
    return {
        "answers": answers == [{"echo": {"n": n, "text": "héllo/😀"}} for n in range(3)],
        "one connection": len(peers) == 3 and len(set(peers)) == 1,
    }


print(json.dumps({**payload_checks(), **asyncio.run(session_checks())}))
