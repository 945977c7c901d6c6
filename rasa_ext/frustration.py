"""Frustration, whatever the intent: an NLU component marks it, a policy offers a person.

`FrustrationDetector` (pipeline) adds a `frustration` entity spanning the message when
`rasa_ext.frustration_signals.assess` finds clear frustration; the intent is left alone, so
"WHERE IS MY ORDER?!?!" is still `order_status`. `FrustrationPolicy` (policies) then predicts
`action_offer_person` once, before the message is answered (actions/fallback.py). Rules could
not do this: a rule needs the intent, and this must work for every intent. The entity does not
influence the other policies (domain: `influence_conversation: false`). Design and examples:
docs/conversation-design.md.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction, SupportedData
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_ext.frustration_signals import LISTEN, OFFER, assess, next_step

ENTITY = "frustration"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class FrustrationDetector(GraphComponent, EntityExtractorMixin):
    """Adds the `frustration` entity (value: the signals found) to a clearly frustrated message."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FrustrationDetector:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        # Nothing to learn, and training examples must keep their own annotations.
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            found = assess(text)
            if not found.is_frustrated:
                continue
            entity = {
                ENTITY_ATTRIBUTE_TYPE: ENTITY,
                ENTITY_ATTRIBUTE_VALUE: found.label,
                ENTITY_ATTRIBUTE_START: 0,
                ENTITY_ATTRIBUTE_END: len(text),
            }
            entities = [*message.get(ENTITIES, []), *self.add_extractor_name([entity])]
            message.set(ENTITIES, entities, add_to_output=True)
        return messages


def _frustrated(tracker: DialogueStateTracker) -> bool:
    latest = tracker.latest_message
    return latest is not None and any(
        entity.get(ENTITY_ATTRIBUTE_TYPE) == ENTITY for entity in latest.entities
    )


def _offers_since_messages(tracker: DialogueStateTracker, offer_action: str) -> list[bool]:
    """For the last two customer messages, newest first: was the person offered after it?

    Walks back over the raw events only as far as two messages, so a long conversation costs
    no more per turn than a short one.
    """
    offered: list[bool] = []
    seen_offer = False
    for event in reversed(tracker.events):
        if isinstance(event, ActionExecuted) and event.action_name == offer_action:
            seen_offer = True
        elif isinstance(event, UserUttered):
            offered.append(seen_offer)
            if len(offered) == 2:
                break
    return offered + [False] * (2 - len(offered))


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class FrustrationPolicy(Policy):
    """Offers a person after a frustrated message, then lets the other policies answer it.

    It outranks RulePolicy (priority 7 against 6) so the offer comes before the answer; a loop's
    own prediction ("no user" predictions, e.g. a form asking its next question) still wins.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "priority": 7,
            "offer_action": "action_offer_person",
            # The customer already asked for a person, or is answering the offer's follow-up.
            "no_offer_intents": ["human_handoff", "handoff_followup"],
            # Slot mirrored from the CDP while a person owns the conversation (docs/handoff.md).
            "handoff_slot": "handoff_state",
        }

    @staticmethod
    def supported_data() -> SupportedData:
        return SupportedData.ML_AND_RULE_DATA

    def train(
        self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any
    ) -> Resource:
        # Nothing to learn: the behaviour is the rule in rasa_ext.frustration_signals.
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        offer_action = self.config["offer_action"]
        offered_since_message, offered_before = _offers_since_messages(tracker, offer_action)
        latest = tracker.latest_message
        step = next_step(
            latest_action=tracker.latest_action_name,
            offer_action=offer_action,
            intent=latest.intent_name if latest else None,
            frustrated=_frustrated(tracker),
            offered_since_message=offered_since_message,
            offered_recently=offered_before,
            handoff_open=bool(tracker.get_slot(self.config["handoff_slot"])),
            no_offer_intents=frozenset(self.config["no_offer_intents"]),
        )
        probabilities = self._default_predictions(domain)
        if step == OFFER:
            probabilities[domain.index_for_action(offer_action)] = 1.0
        elif step == LISTEN:
            probabilities[domain.index_for_action("action_listen")] = 1.0
        return self._prediction(probabilities)
