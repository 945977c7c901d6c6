"""Runs in the Rasa venv (called by test_patches.py): DIET and TED predict the same through the
concrete graph as through Rasa's tf.function call, and loaded for prediction (without tracing
the training step) as loaded by Rasa."""

import asyncio
import json
import sys

from rasa.core.agent import Agent
from rasa.utils.tensorflow.models import RasaModel

from rasa_ext.fast_load import load_for_prediction
from rasa_ext.tf_predict import original_rasa_predict, rasa_predict_on_concrete_graph

MESSAGES = ["hi there", "same as last time please", "yes", "are you a bot", "what's 2+2", "no"]


async def conversation(agent, sender):
    """Intent ranking of each message and the action predictions with their confidences."""
    parsed = []
    for text in MESSAGES:
        parse = await agent.parse_message(text)
        parsed.append([[i["name"], round(i["confidence"], 5)] for i in parse["intent_ranking"]])
        await agent.handle_text(text, sender_id=sender)
    tracker = await agent.tracker_store.retrieve(sender)
    actions = [
        [event.action_name, event.policy, round(event.confidence or 0, 5)]
        for event in tracker.events
        if event.type_name == "action"
    ]
    return parsed, actions


async def main(model):
    agent = Agent.load(model)
    RasaModel._rasa_predict = original_rasa_predict
    expected = await conversation(agent, "original")
    RasaModel._rasa_predict = rasa_predict_on_concrete_graph
    got = await conversation(agent, "patched")
    RasaModel.load = classmethod(load_for_prediction)
    loaded_for_prediction = await conversation(Agent.load(model), "loaded for prediction")
    print(
        json.dumps(
            {
                "same": got == expected,
                "same_when_loaded_for_prediction": loaded_for_prediction == expected,
                "actions": len(got[1]),
            }
        )
    )


asyncio.run(main(sys.argv[1]))
