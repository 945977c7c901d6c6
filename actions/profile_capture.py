"""Contact details and marketing consent captured from the conversation.

A chat proves who is writing (the signed token) but not that they own a new email or phone:
those are written as unverified, except a phone the channel itself proved (an SMS or
WhatsApp message from that number). A verified value is never replaced silently: the
customer is told it was kept and how to change it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import channel_identity_of, identified_profile, verified_customer_id
from cdp.changes import Change
from cdp.clock import utcnow
from cdp.consents.models import ConsentChannel, ConsentIn, ConsentPurpose, ConsentStatus
from cdp.consents.service import clean_evidence, clean_source, consent_status, decide_consent
from cdp.errors import InvalidIdentifier
from cdp.identities.models import IdentityType
from cdp.profiles.contact import ContactOutcome, ContactUpdate, update_contact

logger = logging.getLogger(__name__)

CONTACT_SLOTS = ("contact_field", "new_email", "new_phone")
# Conversation channels (Rasa's input channel names) and the consent channel they are.
CONSENT_CHANNELS = {
    "rest": ConsentChannel.WEB,
    "socketio": ConsentChannel.WEB,
    "twilio": ConsentChannel.SMS,
    "whatsapp": ConsentChannel.SMS,
    "facebook": ConsentChannel.MESSENGER,
}


def consent_channel(input_channel: str | None) -> ConsentChannel:
    """The consent channel of a conversation; the web for channels not listed."""
    return CONSENT_CHANNELS.get(input_channel or "", ConsentChannel.WEB)


def message_time(tracker: Tracker) -> datetime:
    """When the latest user message arrived (Rasa's timestamp), else now."""
    for event in reversed(tracker.events):
        if event.get("event") == "user" and event.get("timestamp"):
            return datetime.fromtimestamp(float(event["timestamp"]), tz=timezone.utc)
    return utcnow()


def phone_proven_by_channel(tracker: Tracker, phone: str) -> bool:
    """True when this message came by SMS or WhatsApp from exactly this number."""
    metadata = (tracker.latest_message or {}).get("metadata")
    return channel_identity_of(metadata, tracker.sender_id) == ("twilio_sender", phone)


@dataclass(frozen=True)
class ContactResult:
    """`anonymous`, or the CDP's answer to the update."""

    update: ContactUpdate | None


def save_contact(
    session: Session, customer_id: str | None, kind: IdentityType, value: str, verified: bool
) -> ContactResult:
    profile = identified_profile(session, customer_id)
    if profile is None:
        return ContactResult(None)
    return ContactResult(
        update_contact(session, profile.customer_id, kind, value, verified=verified)
    )


class ActionSaveContact(Action):
    """Submit of the contact form: writes the new email or phone and says what happened."""

    def name(self) -> str:
        return "action_save_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        cleared = [SlotSet(slot, None) for slot in CONTACT_SLOTS]
        customer_id = verified_customer_id(tracker)
        field = tracker.get_slot("contact_field")
        value = tracker.get_slot("new_email" if field == "email" else "new_phone")
        if customer_id is None or field not in ("email", "phone") or not value:
            dispatcher.utter_message(response="utter_profile_needs_sign_in")
            return cleared
        kind = IdentityType.EMAIL if field == "email" else IdentityType.PHONE
        verified = kind is IdentityType.PHONE and phone_proven_by_channel(tracker, value)
        try:
            result = await in_cdp_transaction(
                lambda session: save_contact(session, customer_id, kind, value, verified)
            )
        except InvalidIdentifier:  # the form validated it; a changed rule would land here
            logger.exception("contact value refused by the CDP for %s", customer_id)
            dispatcher.utter_message(response="utter_contact_not_saved")
            return cleared
        update = result.update
        if update is None:
            dispatcher.utter_message(response="utter_profile_needs_sign_in")
            return cleared
        detail = "email address" if field == "email" else "phone number"
        variables = {"detail": detail, "value": update.requested, "current": update.current}
        if update.outcome is ContactOutcome.SAVED and update.verified:
            dispatcher.utter_message(response="utter_contact_saved_verified", **variables)
        elif update.outcome is ContactOutcome.SAVED:
            dispatcher.utter_message(response="utter_contact_saved_unverified", **variables)
        elif update.outcome is ContactOutcome.UNCHANGED:
            dispatcher.utter_message(response="utter_contact_unchanged", **variables)
        elif update.outcome is ContactOutcome.KEPT_VERIFIED:
            dispatcher.utter_message(response="utter_contact_kept_verified", **variables)
        else:
            dispatcher.utter_message(response="utter_contact_in_use", **variables)
        return [*cleared, SlotSet("conversation_outcome", "resolved_by_bot")]


@dataclass(frozen=True)
class SubscriptionAnswer:
    """`anonymous`, or the consent in force before and whether this decision changed it."""

    anonymous: bool
    before: ConsentStatus | None = None
    change: Change | None = None


def subscription(
    session: Session,
    customer_id: str | None,
    choice: str | None,
    channel: ConsentChannel,
    recorded_at: datetime,
    source: str,
    evidence: str,
) -> SubscriptionAnswer:
    """Read the marketing consent in force on the channel and, given a choice, record it.

    The decision covers every channel (`any`): "unsubscribe me" means all marketing.
    """
    profile = identified_profile(session, customer_id)
    if profile is None:
        return SubscriptionAnswer(anonymous=True)
    before = consent_status(session, profile.customer_id, ConsentPurpose.MARKETING, channel)
    if choice is None:
        return SubscriptionAnswer(anonymous=False, before=before)
    status = ConsentStatus.GRANTED if choice == "subscribe" else ConsentStatus.WITHDRAWN
    change = decide_consent(
        session,
        ConsentIn(
            customer_id=profile.customer_id,
            purpose=ConsentPurpose.MARKETING,
            channel=ConsentChannel.ANY,
            status=status,
            recorded_at=recorded_at,
            source=clean_source(source),
            evidence=clean_evidence(evidence),
        ),
    )
    return SubscriptionAnswer(anonymous=False, before=before, change=change)


class ActionManageSubscription(Action):
    """Subscribe or unsubscribe from marketing; without a choice, says where things stand
    and offers both (the buttons carry the choice as the `marketing_choice` entity)."""

    def name(self) -> str:
        return "action_manage_subscription"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        choice = tracker.get_slot("marketing_choice")
        if choice not in ("subscribe", "unsubscribe"):
            choice = None
        customer_id = verified_customer_id(tracker)
        input_channel = tracker.get_latest_input_channel()
        text = (tracker.latest_message or {}).get("text") or f"/{choice}"
        answer = await in_cdp_transaction(
            lambda session: subscription(
                session,
                customer_id,
                choice,
                consent_channel(input_channel),
                message_time(tracker),
                f"chat:{input_channel or 'unknown'}",
                f"Customer wrote in the chat: {text}",
            )
        )
        cleared = [SlotSet("marketing_choice", None)]
        if answer.anonymous:
            dispatcher.utter_message(response="utter_profile_needs_sign_in")
            return cleared
        if choice is None:
            if answer.before is ConsentStatus.GRANTED:
                dispatcher.utter_message(response="utter_subscription_status_subscribed")
            else:
                dispatcher.utter_message(response="utter_subscription_status_not_subscribed")
            return cleared
        if answer.change is Change.UNCHANGED and choice == "subscribe":
            dispatcher.utter_message(response="utter_subscription_already_subscribed")
        elif answer.change is Change.UNCHANGED:
            dispatcher.utter_message(response="utter_subscription_already_unsubscribed")
        elif choice == "subscribe":
            dispatcher.utter_message(response="utter_subscription_subscribed")
        else:
            dispatcher.utter_message(response="utter_subscription_unsubscribed")
        return [*cleared, SlotSet("conversation_outcome", "resolved_by_bot")]
