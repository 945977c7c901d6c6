"""Runs in the Rasa venv (called by test_patches.py): with TED deferred, every conversation gets
the same actions, from the same policies, with the same confidences as with Rasa's ensemble."""

import asyncio
import json
import sys

from rasa.core.agent import Agent
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.utils.tensorflow.models import RasaModel

from rasa_ext import deferred_ted
from rasa_ext.fast_load import load_for_prediction

# Happy and unhappy paths, repeats, and messages outside the stories so that TED must decide.
CONVERSATIONS = [
    ["hi there", "same as last time please", "yes", "thanks", "bye"],
    ["hello", "reorder my last order", "no", "i want to talk to a human", "are you a bot"],
    ["what's 2+2", "asdf qwer", "reorder", "yes", "yes", "no", "reorder my last order"],
    ["same as last time", "are you a bot", "no", "no", "thank you", "hi", "human please"],
    ["hey", "yes", "no", "bye", "reorder", "are you real?", "ok", "what's the weather"],
]
TED_CALLS = {"computed": 0}


def counting(resolve):
    def wrapped(self):
        TED_CALLS["computed"] += 1
        return resolve(self)

    return wrapped


async def conversation(agent, sender, messages):
    for text in messages:
        await agent.handle_text(text, sender_id=sender)
    tracker = await agent.tracker_store.retrieve(sender)
    return [
        [event.action_name, event.policy, round(event.confidence or 0, 5)]
        for event in tracker.events
        if event.type_name == "action"
    ]


async def main(model):
    RasaModel.load = classmethod(load_for_prediction)  # checked on its own in check_tf_predict
    agent = Agent.load(model)
    expected = [
        await conversation(agent, f"original-{i}", messages)
        for i, messages in enumerate(CONVERSATIONS)
    ]
    TEDPolicy.predict_action_probabilities = deferred_ted.deferred_ted_predict
    DefaultPolicyPredictionEnsemble._best_policy_prediction = staticmethod(
        deferred_ted.best_policy_prediction
    )
    deferred_ted.DeferredPrediction.resolve = counting(deferred_ted.DeferredPrediction.resolve)
    agent = Agent.load(model)  # graph nodes bind the policy methods when they are built
    got = [
        await conversation(agent, f"deferred-{i}", messages)
        for i, messages in enumerate(CONVERSATIONS)
    ]
    predictions = sum(len(actions) for actions in got)
    ted_won = sum(1 for actions in got for _, policy, _ in actions if "TEDPolicy" in (policy or ""))
    print(
        json.dumps(
            {
                "same": got == expected,
                "predictions": predictions,
                "ted_computed": TED_CALLS["computed"],
                "ted_won": ted_won,
            }
        )
    )


asyncio.run(main(sys.argv[1]))
