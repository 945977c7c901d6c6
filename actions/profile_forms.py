"""Forms of the customer flows: a reusable validation base class and the contact form.

`CustomerFormValidation` is what every form of the customer flows shares: a bad value is
rejected with a response that says which value and why, and forms that touch personal data
ask nothing of a visitor who is not signed in. The parsers below turn what a customer types
("it's Ana.D@Example.net", "+44 7700 900 123") into the CDP's normal form, with the CDP's
own rules (cdp.identities.service.normalise: lower-case email, E.164 phone).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.identity import verified_profile_id
from cdp.errors import InvalidIdentifier
from cdp.identities.models import IdentityType
from cdp.identities.service import normalise

# Intents that leave a form instead of answering it: the form is rejected and the rules for
# interruptions take over (docs/customer-flows.md).
LEAVING_INTENTS = frozenset({"goodbye", "human_handoff", "bot_challenge"})
_EMAIL_CANDIDATE = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+")
_PHONE_CANDIDATE = re.compile(r"(?:\+|00)?\d[\d\s().-]{5,}\d")
_EMAIL_WORDS = re.compile(r"\be-?mail|\bemail address", re.IGNORECASE)
_PHONE_WORDS = re.compile(r"\b(phone|mobile|cell|number|tel)", re.IGNORECASE)


def parse_email(text: str) -> str:
    """The email address in a message, normalised; InvalidIdentifier says what is wrong."""
    found = _EMAIL_CANDIDATE.search(text or "")
    if found is None:
        raise InvalidIdentifier(f"no email address in {text!r}")
    return normalise(IdentityType.EMAIL, found.group(0).rstrip("."))


def parse_phone(text: str) -> str:
    """The phone number in a message in E.164; a number without its country code is refused
    (the CDP cannot guess the country)."""
    found = _PHONE_CANDIDATE.search(text or "")
    if found is None:
        raise InvalidIdentifier(f"no phone number in {text!r}")
    return normalise(IdentityType.PHONE, found.group(0))


def contact_field_in(text: str, entities: list[dict[str, Any]]) -> str | None:
    """Which detail the customer wants to change: "email", "phone" or None if unclear."""
    names = {entity.get("entity") for entity in entities}
    for entity in entities:
        if entity.get("entity") == "contact_field" and entity.get("value") in ("email", "phone"):
            return str(entity["value"])
    if "email" in names or _EMAIL_CANDIDATE.search(text or ""):
        return "email"
    if "phone_number" in names or _PHONE_WORDS.search(text or ""):
        return "phone"
    if _EMAIL_WORDS.search(text or ""):
        return "email"
    return None


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


class CustomerFormValidation(FormValidationAction, ABC):
    """Base of the customer-flow forms.

    `needs_verified_customer`: the form collects or changes personal data, so for an
    anonymous visitor it requires no slot at all and ends at once; its submit action then
    explains how to sign in. `reject` sends the response explaining a bad value and clears
    the slot, so the form asks again.
    """

    needs_verified_customer = False

    @abstractmethod
    def name(self) -> str:
        """`validate_<form>`; abstract, so the action server does not register the base."""

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if self.needs_verified_customer and await verified_profile_id(tracker) is None:
            return []
        return await self.required_for_customer(domain_slots, tracker)

    async def required_for_customer(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        """The slots to fill for a customer allowed to use the form (default: the domain's)."""
        return domain_slots

    @staticmethod
    def reject(
        dispatcher: CollectingDispatcher, slot: str, *, response: str, **variables: Any
    ) -> dict[str, Any]:
        """Explain why the value was refused (the response names it) and ask again."""
        dispatcher.utter_message(response=response, **variables)
        return {slot: None}

    @staticmethod
    def is_leaving(tracker: Tracker) -> bool:
        """The customer wants out of the form (bye, a person...), not to answer it."""
        return latest_intent(tracker) in LEAVING_INTENTS


class ValidateContactForm(CustomerFormValidation):
    """Which contact detail to change, then the new email or phone, each validated."""

    needs_verified_customer = True

    def name(self) -> str:
        return "validate_contact_form"

    async def required_for_customer(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        field = tracker.get_slot("contact_field")
        if field == "email":
            return ["contact_field", "new_email"]
        if field == "phone":
            return ["contact_field", "new_phone"]
        return ["contact_field"]

    async def extract_contact_field(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("contact_field") is not None or self.is_leaving(tracker):
            return {}
        message = tracker.latest_message or {}
        text = message.get("text") or ""
        field = contact_field_in(text, message.get("entities") or [])
        if field:
            return {"contact_field": field}
        # Asked and answered with something else: validation explains what is possible.
        return (
            {"contact_field": text} if tracker.get_slot("requested_slot") == "contact_field" else {}
        )

    def validate_contact_field(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value in ("email", "phone"):
            return {"contact_field": value}
        return self.reject(dispatcher, "contact_field", response="utter_contact_field_unclear")

    async def extract_new_email(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._typed_value(tracker, "new_email", "email")

    async def extract_new_phone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._typed_value(tracker, "new_phone", "phone_number")

    def _typed_value(self, tracker: Tracker, slot: str, entity: str) -> dict[str, Any]:
        """The entity if the NLU found one, else the whole text when the form asked for it."""
        if self.is_leaving(tracker):
            return {}
        found = next(tracker.get_latest_entity_values(entity), None)
        if found:
            return {slot: found}
        if tracker.get_slot("requested_slot") == slot:
            return {slot: (tracker.latest_message or {}).get("text")}
        return {}

    def validate_new_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            return {"new_email": parse_email(str(value or ""))}
        except InvalidIdentifier:
            return self.reject(dispatcher, "new_email", response="utter_invalid_email", value=value)

    def validate_new_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            return {"new_phone": parse_phone(str(value or ""))}
        except InvalidIdentifier:
            return self.reject(dispatcher, "new_phone", response="utter_invalid_phone", value=value)
