"""Run in the Rasa venv with a trained model: the frustration component and policy at work.

Parses messages with the model's real pipeline and lets its real policies predict the actions
of one turn (tests/model_turns.py). Prints one JSON line.
"""

import asyncio
import json
import sys

from rasa.core.agent import Agent

from tests.model_turns import predicted_turn

MESSAGES = [
    "WHERE IS MY ORDER?!?! THIS IS RIDICULOUS",
    "how long does delivery take",
    "how long does delivery take?!?! this is ridiculous",
    "this useless bot, let me talk to a real person",
    "ARGH WTF?!?!",
]


async def main(model_path: str) -> None:
    agent = Agent.load(model_path)
    parsed = {text: await agent.parse_message(text) for text in MESSAGES}

    def frustration_of(parse_data: dict) -> str | None:
        return next(
            (e["value"] for e in parse_data["entities"] if e["entity"] == "frustration"), None
        )

    not_understood = dict(parsed["ARGH WTF?!?!"])
    not_understood["intent"] = {"name": "nlu_fallback", "confidence": 0.6}
    report = {
        "parsed": {
            text: {"intent": data["intent"]["name"], "frustration": frustration_of(data)}
            for text, data in parsed.items()
        },
        "frustrated_faq": predicted_turn(
            agent, parsed["how long does delivery take?!?! this is ridiculous"]
        ),
        "calm_faq": predicted_turn(agent, parsed["how long does delivery take"]),
        "frustrated_fallback": predicted_turn(agent, not_understood),
        "frustrated_handoff": predicted_turn(
            agent, parsed["this useless bot, let me talk to a real person"]
        ),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
