"""Troubleshooting a device that won't turn on: which model, then one step at a time, then a
person when no step helps. Models and steps are data (actions/content/troubleshooting.yml),
edited by the support team without touching code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, verified_customer_id
from actions.profile_forms import CustomerFormValidation
from cdp.clock import utcnow
from cdp.events.models import EventIn
from cdp.events.service import record_event

TROUBLESHOOTING_ENV = "TROUBLESHOOTING_GUIDE"
DEFAULT_GUIDE = Path(__file__).resolve().parent / "content" / "troubleshooting.yml"
FORM_SLOTS = ("device_model", "troubleshoot_step", "step_worked")


class GuideError(ValueError):
    """The troubleshooting file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Model:
    """A model the assistant recognises, and the words that name it."""

    model_id: str
    name: str
    family: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Guide:
    """Every model, and the steps per family."""

    models: tuple[Model, ...]
    steps: dict[str, tuple[str, ...]]
    labels: dict[str, str]

    def model(self, model_id: str | None) -> Model | None:
        return next((m for m in self.models if m.model_id == model_id), None)

    def model_names(self) -> str:
        """`Gooseneck kettle, 1 l; Burr grinder B20 ...` for the customer to pick from."""
        return "; ".join(m.name for m in self.models)


def guide_path() -> Path:
    """The guide in use: TROUBLESHOOTING_GUIDE or the shipped one."""
    configured = os.environ.get(TROUBLESHOOTING_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_GUIDE


def load_guide(path: Path | None = None) -> Guide:
    """The guide, read again whenever the file changes."""
    target = (path or guide_path()).resolve()
    try:
        modified = target.stat().st_mtime_ns
    except OSError as error:
        raise GuideError(f"cannot read {target}: {error.strerror}") from None
    return _load_cached(target, modified)


def _texts(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise GuideError(f"{where}: must be a non-empty list of texts")
    for number, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            raise GuideError(
                f"{where}[{number}]: must be non-empty text (quote it if it contains ': ')"
            )
    return tuple(" ".join(item.split()) for item in value)


@lru_cache(maxsize=4)
def _load_cached(path: Path, _modified: int) -> Guide:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise GuideError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    families = document.get("families") if isinstance(document, dict) else None
    if not isinstance(families, dict) or not families:
        raise GuideError(f"{path}: needs `families`, a mapping of family name to family")
    models: list[Model] = []
    steps: dict[str, tuple[str, ...]] = {}
    labels: dict[str, str] = {}
    for family, spec in families.items():
        where = f"{path}: {family}"
        if not isinstance(spec, dict):
            raise GuideError(f"{where}: must be a mapping with label, models and steps")
        labels[family] = str(spec.get("label") or family)
        steps[family] = _texts(f"{where}: steps", spec.get("steps"))
        entries = spec.get("models")
        if not isinstance(entries, list) or not entries:
            raise GuideError(f"{where}: models: must be a non-empty list")
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not entry.get("id") or not entry.get("name"):
                raise GuideError(f"{where}: models[{number}]: needs an id and a name")
            aliases = _texts(f"{where}: models[{number}]: aliases", entry.get("aliases") or ["-"])
            words = (str(entry["id"]), str(entry["name"]), *aliases)
            models.append(Model(str(entry["id"]), str(entry["name"]), str(family), _lowered(words)))
    ids = [m.model_id for m in models]
    if len(set(ids)) != len(ids):
        raise GuideError(f"{path}: a model id appears twice")
    return Guide(tuple(models), steps, labels)


def _lowered(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(word.lower() for word in words if word != "-")


def matching_models(guide: Guide, text: str) -> list[Model]:
    """The models a message names, longest match first wins (so "gooseneck kettle" beats
    "kettle"); every model of a family when only the family is named ("my kettle")."""
    lowered = " ".join((text or "").lower().split())
    scored = [
        (max(len(word) for word in model.words if word in lowered), model)
        for model in guide.models
        if any(word in lowered for word in model.words)
    ]
    if scored:
        best = max(score for score, _ in scored)
        return [model for score, model in scored if score == best]
    return [m for m in guide.models if guide.labels[m.family].split()[-1] in lowered]


class ValidateTroubleshootForm(CustomerFormValidation):
    """The model (recognised from the guide), then whether each step helped."""

    def name(self) -> str:
        return "validate_troubleshoot_form"

    async def extract_device_model(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("device_model") is not None or self.is_leaving(tracker):
            return {}
        text = (tracker.latest_message or {}).get("text") or ""
        if tracker.get_slot("requested_slot") == "device_model":
            return {"device_model": text}
        # The message that started the form may already name the model ("my B20 is dead").
        found = matching_models(load_guide(), text)
        return {"device_model": found[0].model_id} if len(found) == 1 else {}

    def validate_device_model(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        guide = load_guide()
        known = guide.model(value)
        found = [known] if known else matching_models(guide, str(value or ""))
        if len(found) == 1:
            return {"device_model": found[0].model_id, "troubleshoot_step": 0}
        if found:
            choices = " or ".join(model.name for model in found)
            return self.reject(
                dispatcher,
                "device_model",
                response="utter_troubleshoot_which_model",
                models=choices,
            )
        return self.reject(
            dispatcher,
            "device_model",
            response="utter_troubleshoot_unknown_model",
            value=value,
            models=guide.model_names(),
        )

    def validate_step_worked(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is True:
            return {"step_worked": True, "troubleshoot_outcome": "resolved"}
        guide = load_guide()
        model = guide.model(tracker.get_slot("device_model"))
        step = int(tracker.get_slot("troubleshoot_step") or 0)
        if model is not None and step + 1 < len(guide.steps[model.family]):
            return {"step_worked": None, "troubleshoot_step": step + 1}
        return {"step_worked": False, "troubleshoot_outcome": "escalate"}


class ActionAskDeviceModel(Action):
    """Asks which model, listing the ones the guide knows."""

    def name(self) -> str:
        return "action_ask_device_model"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(
            response="utter_ask_device_model", models=load_guide().model_names()
        )
        return []


class ActionAskStepWorked(Action):
    """Shows the current step and asks whether the device works now."""

    def name(self) -> str:
        return "action_ask_step_worked"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        guide = load_guide()
        model = guide.model(tracker.get_slot("device_model"))
        if model is None:  # the guide lost the model since it was chosen
            dispatcher.utter_message(response="utter_troubleshoot_unknown_model_now")
            return [SlotSet("step_worked", False), SlotSet("troubleshoot_outcome", "escalate")]
        steps = guide.steps[model.family]
        step = min(int(tracker.get_slot("troubleshoot_step") or 0), len(steps) - 1)
        dispatcher.utter_message(
            response="utter_troubleshoot_step",
            number=step + 1,
            total=len(steps),
            model=model.name,
            step=steps[step],
        )
        return []


def note_troubleshooting(
    session: Session,
    customer_id: str | None,
    event_id: str,
    model_id: str,
    outcome: str,
    steps_tried: int,
    channel: str | None,
) -> None:
    """A `troubleshooting_finished` event for a verified customer (the agent sees it)."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return
    record_event(
        session,
        EventIn(
            event_id=event_id,
            customer_id=profile.customer_id,
            type="troubleshooting_finished",
            occurred_at=utcnow(),
            channel=channel,
            properties={"model": model_id, "outcome": outcome, "steps_tried": steps_tried},
        ),
    )


class ActionTroubleshootResult(Action):
    """After the form: glad it works, or the steps failed and a person takes over (rules)."""

    def name(self) -> str:
        return "action_troubleshoot_result"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        outcome = tracker.get_slot("troubleshoot_outcome") or "escalate"
        model_id = tracker.get_slot("device_model") or "unknown"
        steps_tried = int(tracker.get_slot("troubleshoot_step") or 0) + 1
        customer_id = verified_customer_id(tracker)
        message_id = (tracker.latest_message or {}).get("message_id") or "none"
        event_id = f"troubleshoot:{tracker.sender_id}:{message_id}"
        channel = tracker.get_latest_input_channel()
        await in_cdp_transaction(
            lambda session: note_troubleshooting(
                session, customer_id, event_id, model_id, outcome, steps_tried, channel
            )
        )
        cleared = [SlotSet(slot, None) for slot in FORM_SLOTS]
        if outcome == "resolved":
            dispatcher.utter_message(response="utter_troubleshoot_resolved")
            return [
                *cleared,
                SlotSet("troubleshoot_outcome", "resolved"),
                SlotSet("conversation_outcome", "resolved_by_bot"),
            ]
        dispatcher.utter_message(response="utter_troubleshoot_escalate")
        return [
            *cleared,
            SlotSet("troubleshoot_outcome", "escalate"),
            SlotSet("conversation_outcome", "handed_off"),
        ]
