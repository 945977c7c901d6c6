"""The base of every form validation that needs the CDP: one transaction, identity first.

Rasa calls `validate_<form>` after each answer. Subclasses say what to read (`load`, run
once per call in one CDP transaction, with the values to validate in hand) and validate
each slot from what was read, without further queries. A visitor who is not verified gets
no questions at all: `required_slots` is empty, so the form ends at once and the action
after it gives the one anonymous answer (actions.anonymous).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, verified_customer_id
from cdp.profiles.models import Profile


@dataclass(frozen=True)
class FormContext:
    """What every form knows about the writer; subclasses add what their slots need."""

    customer_id: str | None

    @property
    def verified(self) -> bool:
        return self.customer_id is not None


ContextT = TypeVar("ContextT", bound=FormContext)
# Per request (each action-server request runs in its own task), never shared between
# conversations the way an attribute on the action instance would be.
_CONTEXT: ContextVar[FormContext] = ContextVar("form_context")


class CdpFormValidationAction(FormValidationAction, ABC, Generic[ContextT]):
    """A form validation reading the CDP once per call; anonymous visitors are asked nothing."""

    @abstractmethod
    def load(
        self,
        session: Session,
        profile: Profile | None,
        candidates: dict[str, Any],
        tracker: Tracker,
    ) -> ContextT:
        """Read what validating `candidates` needs; `profile` is None for a visitor."""

    def slots_to_ask(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        """The slots a verified customer is asked, in order (default: the domain's list)."""
        return domain_slots

    @property
    def context(self) -> ContextT:
        return _CONTEXT.get()  # type: ignore[return-value]

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        candidates = tracker.slots_to_validate()

        def read(session: Session) -> ContextT:
            return self.load(session, identified_profile(session, customer_id), candidates, tracker)

        token = _CONTEXT.set(await in_cdp_transaction(read))
        try:
            return await super().run(dispatcher, tracker, domain)
        finally:
            _CONTEXT.reset(token)

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if not self.context.verified:
            return []
        return self.slots_to_ask(domain_slots, tracker)

    @staticmethod
    def reject(
        dispatcher: CollectingDispatcher, slot: str, response: str, **variables: Any
    ) -> dict[str, Any]:
        """Say why the answer is not usable and ask for the slot again."""
        dispatcher.utter_message(response=response, **variables)
        return {slot: None}
