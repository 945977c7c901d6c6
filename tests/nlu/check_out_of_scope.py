"""Run in the Rasa venv with a trained model: what off-topic messages make the bot do.

Reads the held-out `out_of_scope` examples of tests/nlu/heldout_faq.yml, parses each with the
model's pipeline and lets its policies predict the turn (tests/model_turns.py). Prints one
JSON line: per message, the intent and the predicted actions.
"""

import asyncio
import json
import sys
from pathlib import Path

import yaml
from rasa.core.agent import Agent

from tests.model_turns import predicted_turn

HELDOUT = Path(__file__).with_name("heldout_faq.yml")


def out_of_scope_examples() -> list[str]:
    block = next(
        item["examples"]
        for item in yaml.safe_load(HELDOUT.read_text())["nlu"]
        if item["intent"] == "out_of_scope"
    )
    return [line[2:].strip() for line in block.splitlines() if line.startswith("- ")]


async def main(model_path: str) -> None:
    agent = Agent.load(model_path)
    report = {}
    for text in out_of_scope_examples():
        parsed = await agent.parse_message(text)
        report[text] = {
            "intent": parsed["intent"]["name"],
            "actions": predicted_turn(agent, parsed),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
