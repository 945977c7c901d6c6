"""Run TED only when its prediction could change the chosen action.

Every policy predicts at every step and the ensemble keeps the best one by (confidence,
priority). When RulePolicy or MemoizationPolicy predicts an action with confidence 1.0, TED
cannot win: its confidences are at most 1.0 and its priority is the lowest, it never makes a
"no user" prediction, and, trained without end-to-end stories, never an end-to-end one. Yet TED
was more than half of a turn here (featurising the history, building model data, running the
graph). So TED hands the ensemble a deferred prediction, and the ensemble computes it only when
no higher-priority policy has already decided with full confidence, or when an action was just
rejected (Rasa then zeroes that action in every prediction, so confidences can drop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT

original_ted_predict = TEDPolicy.predict_action_probabilities
original_best_policy_prediction = DefaultPolicyPredictionEnsemble._best_policy_prediction

# The highest confidence any policy can give an action.
FULL_CONFIDENCE = 1.0


class DeferredPrediction(PolicyPrediction):
    """A policy's prediction that is computed only if the ensemble asks for it."""

    def __init__(
        self, compute: Callable[[], PolicyPrediction], policy_name: str, policy_priority: int
    ) -> None:
        super().__init__([], policy_name, policy_priority)
        self._compute = compute

    def resolve(self) -> PolicyPrediction:
        return self._compute()


def can_predict_end_to_end(policy: TEDPolicy) -> bool:
    """Whether TED was trained on user text, so its prediction may overrule intent-based ones."""
    return policy.only_e2e or TEXT in policy.fake_features


def deferred_ted_predict(
    self: TEDPolicy,
    tracker: DialogueStateTracker,
    domain: Domain,
    rule_only_data: dict[str, Any] | None = None,
    precomputations: Any = None,
    **kwargs: Any,
) -> PolicyPrediction:
    """`TEDPolicy.predict_action_probabilities`, deferred when it can only lose on confidence."""
    if self.model is None or can_predict_end_to_end(self):
        return original_ted_predict(
            self, tracker, domain, rule_only_data, precomputations, **kwargs
        )
    return DeferredPrediction(
        lambda: original_ted_predict(
            self, tracker, domain, rule_only_data, precomputations, **kwargs
        ),
        self.__class__.__name__,
        self.priority,
    )


def last_action_was_rejected(tracker: DialogueStateTracker) -> bool:
    for event in reversed(tracker.events):
        if isinstance(event, ActionExecutionRejected):
            return True
        if isinstance(event, ActionExecuted):
            return False
    return False


def decided_without(deferred: list[DeferredPrediction], computed: list[PolicyPrediction]) -> bool:
    """Whether a computed prediction beats anything the deferred ones could say.

    A deferred prediction is never "no user" nor end to end, so at best it competes with
    (full confidence, its priority); a computed one that is strictly better on
    (confidence, priority) wins whatever the deferred ones hold, or they are excluded anyway.
    """
    best_possible = max((FULL_CONFIDENCE, p.policy_priority) for p in deferred)
    return any(
        p.is_no_user_prediction or (p.max_confidence, p.policy_priority) > best_possible
        for p in computed
    )


def best_policy_prediction(
    predictions: list[PolicyPrediction], tracker: DialogueStateTracker, domain: Domain
) -> PolicyPrediction:
    """The ensemble's choice, computing deferred predictions only when they could win."""
    deferred = [p for p in predictions if isinstance(p, DeferredPrediction)]
    if deferred:
        computed = [p for p in predictions if not isinstance(p, DeferredPrediction)]
        if not last_action_was_rejected(tracker) and decided_without(deferred, computed):
            predictions = computed
        else:
            predictions = [
                p.resolve() if isinstance(p, DeferredPrediction) else p for p in predictions
            ]
    return original_best_policy_prediction(predictions, tracker, domain)
