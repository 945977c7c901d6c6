"""Verification by one-time code: links this conversation's channel identity to a profile.

The entry point is the intent `verify_identity` (also the `/verify_identity` payload of the
"Verify me" buttons any flow can offer, such as the anonymous repeat-order answer), which
activates `verification_form`:

1. `verification_contact`: the phone or email on the account. A code goes there only if it
   is on file (cdp/verification); the answer is the same either way, naming the value the
   customer typed, masked.
2. `verification_code`: the code. Wrong: how many tries are left. Expired, out of tries or
   none pending: the form ends and offers a new code. Right: the channel identity becomes a
   verified identity of the profile, and `actions/identity.py` recognises this
   conversation from the next message on (that module alone decides disclosure).

"No" ends the form at either step; asking for a person leaves it (a rule hands over).

`verification_status` records how it ended, for `action_finish_verification` to say so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.delivery import deliver
from actions.identity import channel_requester, identified_profile, verified_customer_id
from cdp.errors import CdpError, InvalidIdentifier
from cdp.profiles.models import Profile
from cdp.verification.models import TargetType
from cdp.verification.service import (
    CheckOutcome,
    CheckResult,
    IssuedCode,
    IssueOutcome,
    Requester,
    VerificationSettings,
    check_code,
    issue_code,
    mark_undelivered,
)

logger = logging.getLogger(__name__)

FORM = "verification_form"
CONTACT_SLOT = "verification_contact"
CODE_SLOT = "verification_code"
STATUS_SLOT = "verification_status"
# Said while the form asks: not read as a contact or a code, so the form steps aside and the
# rules answer (a person is reachable at any time).
ESCAPE_INTENTS = frozenset({"human_handoff"})
# Said while the form asks: "no", "stop": the form ends, nothing more is sent.
CANCEL_INTENT = "deny"

_EMAIL = re.compile(r"[^@\s<>\"'(),;:]+@[^@\s<>\"'(),;:]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+|00)?\d[\d\s().\-]{6,}\d")
_CODE = re.compile(r"(?<!\d)\d(?:[\s\-]?\d){5}(?!\d)")


class Status(str, Enum):
    """How the verification stands; every value but SENT ends the form."""

    SENT = "sent"
    VERIFIED = "verified"
    ALREADY_VERIFIED = "already_verified"
    RATE_LIMITED = "rate_limited"
    UNDELIVERABLE = "undeliverable"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    NO_CODE = "no_code"
    LINKED_ELSEWHERE = "linked_elsewhere"
    UNAVAILABLE = "unavailable"
    CANCELLED = "cancelled"


CHECK_STATUSES = {
    CheckOutcome.EXHAUSTED: Status.EXHAUSTED,
    CheckOutcome.EXPIRED: Status.EXPIRED,
    CheckOutcome.NO_CODE: Status.NO_CODE,
    CheckOutcome.LINKED_ELSEWHERE: Status.LINKED_ELSEWHERE,
}


def find_contact(text: str) -> tuple[TargetType, str] | None:
    """The email, else the phone number, written in a message ("it's ana@x.com")."""
    if email := _EMAIL.search(text):
        return TargetType.EMAIL, email.group(0)
    if phone := _PHONE.search(text):
        return TargetType.PHONE, phone.group(0)
    return None


def masked_contact(kind: TargetType, value: str) -> str:
    """Enough to recognise what was typed, not to learn it: `a***@example.com`,
    `the number ending in 0001`."""
    if kind is TargetType.EMAIL:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"the number ending in {value[-4:]}"


def find_code(text: str) -> str:
    """Six digits, also typed as `123 456` or `123-456`; else the text itself (refused later
    as not a code)."""
    found = _CODE.search(text)
    return found.group(0) if found else text


def _latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def _activating(tracker: Tracker) -> bool:
    """The validation call that comes with the form's activation (the loop isn't set yet)."""
    return (tracker.active_loop or {}).get("name") != FORM


def _asked_for(tracker: Tracker, slot: str) -> bool:
    return (
        not _activating(tracker)
        and tracker.get_slot("requested_slot") == slot
        and _latest_intent(tracker) not in ESCAPE_INTENTS
    )


def _ended(status: Status, **slots: Any) -> dict[str, Any]:
    return {CONTACT_SLOT: None, CODE_SLOT: None, STATUS_SLOT: status.value, **slots}


async def _deliver(issued: IssuedCode) -> bool:
    """Hand the code to its sender; False (and the code is dead) when delivery failed."""
    message = issued.message
    if message is None:  # not on file: nothing to send, and nobody can tell
        return True
    if await deliver(message):
        return True
    await in_cdp_transaction(lambda session: mark_undelivered(session, message.code_id))
    return False


@dataclass(frozen=True)
class Known:
    """A customer already identified; only the name the reply needs leaves the transaction."""

    first_name: str | None


def _known(session: Session, customer_id: str | None) -> Known | None:
    """The customer this message already identifies (token or verified link), if any."""
    profile = identified_profile(session, customer_id)
    return Known(profile.first_name) if profile else None


def _checked(
    session: Session, requester: Requester, code: str, settings: VerificationSettings
) -> tuple[CheckResult, str | None]:
    """The check, and the first name of the customer it verified (for the thanks)."""
    result = check_code(session, requester, code, settings)
    profile = session.get(Profile, result.customer_id) if result.customer_id else None
    return result, profile.first_name if profile else None


class ValidateVerificationForm(FormValidationAction):
    """Reads the contact and the code from the customer's words and acts on them."""

    def name(self) -> str:
        return "validate_verification_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        status = tracker.get_slot(STATUS_SLOT)
        return [] if status and status != Status.SENT.value else domain_slots

    async def extract_verification_contact(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = (tracker.latest_message or {}).get("text") or ""
        # At activation the triggering message is read too ("verify me, it's ana@x.com"),
        # which also starts every run afresh.
        if _activating(tracker) or _asked_for(tracker, CONTACT_SLOT):
            return {CONTACT_SLOT: text or "-"}
        return {}

    async def extract_verification_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if _asked_for(tracker, CODE_SLOT):
            return {CODE_SLOT: (tracker.latest_message or {}).get("text") or "-"}
        return {}

    async def validate_verification_contact(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        activating = _activating(tracker)
        if not activating and _latest_intent(tracker) == CANCEL_INTENT:
            return _ended(Status.CANCELLED)
        if activating:
            customer_id = verified_customer_id(tracker)
            known = await in_cdp_transaction(lambda session: _known(session, customer_id))
            if known is not None:
                return _ended(Status.ALREADY_VERIFIED, first_name=known.first_name)
        requester = channel_requester(tracker)
        if requester is None:
            return _ended(Status.UNAVAILABLE)
        found = find_contact(str(slot_value))
        if found is None:
            if not activating:
                dispatcher.utter_message(response="utter_verification_contact_invalid")
            return {CONTACT_SLOT: None, CODE_SLOT: None, STATUS_SLOT: None}
        kind, value = found
        try:
            settings = VerificationSettings.from_env()
            issued = await in_cdp_transaction(
                lambda session: issue_code(session, requester, kind, value, settings)
            )
        except InvalidIdentifier:
            dispatcher.utter_message(response="utter_verification_contact_invalid")
            return {CONTACT_SLOT: None, CODE_SLOT: None, STATUS_SLOT: None}
        except CdpError:
            logger.exception("verification is not configured")
            return _ended(Status.UNAVAILABLE)
        if issued.outcome is IssueOutcome.RATE_LIMITED:
            return _ended(Status.RATE_LIMITED)
        if not await _deliver(issued):
            return _ended(Status.UNDELIVERABLE)
        shown = masked_contact(kind, value.strip().lower() if kind is TargetType.EMAIL else value)
        minutes = int(settings.ttl.total_seconds() // 60)
        dispatcher.utter_message(
            response="utter_verification_code_sent", masked_contact=shown, minutes=minutes
        )
        return {CONTACT_SLOT: shown, CODE_SLOT: None, STATUS_SLOT: Status.SENT.value}

    async def validate_verification_code(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if _latest_intent(tracker) == CANCEL_INTENT:
            return _ended(Status.CANCELLED)
        if _latest_intent(tracker) == "verify_identity" and not _CODE.search(str(slot_value)):
            # "send me a new code": start again from the contact
            return {CONTACT_SLOT: None, CODE_SLOT: None, STATUS_SLOT: None}
        requester = channel_requester(tracker)
        if requester is None:
            return _ended(Status.UNAVAILABLE)
        code = find_code(str(slot_value))
        try:
            settings = VerificationSettings.from_env()
            result, first_name = await in_cdp_transaction(
                lambda session: _checked(session, requester, code, settings)
            )
        except CdpError:
            logger.exception("verification is not configured")
            return _ended(Status.UNAVAILABLE)
        if result.outcome is CheckOutcome.VERIFIED:
            return _ended(Status.VERIFIED, customer_id=result.customer_id, first_name=first_name)
        if result.outcome is CheckOutcome.WRONG:
            dispatcher.utter_message(
                response="utter_verification_code_wrong", attempts_left=result.attempts_left
            )
            return {CODE_SLOT: None}
        if result.outcome is CheckOutcome.MALFORMED:
            dispatcher.utter_message(response="utter_verification_code_malformed")
            return {CODE_SLOT: None}
        return _ended(CHECK_STATUSES[result.outcome])


def say_how_it_ended(
    dispatcher: CollectingDispatcher, status: Status, first_name: str | None
) -> None:
    """The closing message for each way the form can end."""
    if status is Status.VERIFIED:
        dispatcher.utter_message(response="utter_verification_done", first_name=first_name)
    elif status is Status.ALREADY_VERIFIED:
        dispatcher.utter_message(response="utter_verification_already", first_name=first_name)
    elif status is Status.RATE_LIMITED:
        dispatcher.utter_message(response="utter_verification_rate_limited")
    elif status is Status.UNDELIVERABLE:
        dispatcher.utter_message(response="utter_verification_undeliverable")
    elif status is Status.EXHAUSTED:
        dispatcher.utter_message(response="utter_verification_exhausted")
    elif status is Status.EXPIRED:
        dispatcher.utter_message(response="utter_verification_expired")
    elif status is Status.NO_CODE:
        dispatcher.utter_message(response="utter_verification_no_code")
    elif status is Status.LINKED_ELSEWHERE:
        dispatcher.utter_message(response="utter_verification_linked_elsewhere")
    elif status is Status.CANCELLED:
        dispatcher.utter_message(response="utter_verification_cancelled")
    else:
        dispatcher.utter_message(response="utter_verification_unavailable")


class ActionFinishVerification(Action):
    """Says how the verification ended and clears its slots, so it can run again."""

    def name(self) -> str:
        return "action_finish_verification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        raw = tracker.get_slot(STATUS_SLOT)
        status = Status(raw) if raw in {s.value for s in Status} else Status.UNAVAILABLE
        say_how_it_ended(dispatcher, status, tracker.get_slot("first_name"))
        return [SlotSet(CONTACT_SLOT, None), SlotSet(CODE_SLOT, None), SlotSet(STATUS_SLOT, None)]


class ActionAskVerificationContact(Action):
    """The form's question for the contact. Asked by a custom action rather than through
    Rasa's `utter_ask_` naming, so the data checks (`tools.validate_data`, which accept a
    response only when a story, a rule or action code sends it) see it in use."""

    def name(self) -> str:
        return "action_ask_verification_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_ask_verification_contact")
        return []


class ActionAskVerificationCode(Action):
    """The form's question for the code."""

    def name(self) -> str:
        return "action_ask_verification_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_ask_verification_code")
        return []
