"""Personalised offers for verified customers with marketing consent, from
`cdp/definitions/offers.yml`; the customer's yes or no is a CDP event.

An anonymous visitor never gets an offer, nor hears why not beyond "sign in": eligibility
reads personal data. The offer id waits in `pending_offer_id` for the yes or no (rules).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.cdp_access import in_cdp_transaction
from actions.identity import identified_profile, verified_customer_id
from actions.profile_capture import consent_channel
from cdp.consents.models import ConsentChannel
from cdp.errors import InvalidValue
from cdp.profiles.offers import MadeOffer, load_offers, offer_for, record_offer_answer

logger = logging.getLogger(__name__)

PENDING_SLOT = "pending_offer_id"


def find_offer(
    session: Session, customer_id: str | None, channel: ConsentChannel
) -> tuple[bool, MadeOffer | None]:
    """(known customer, their offer or None)."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return False, None
    return True, offer_for(session, profile.customer_id, channel)


class ActionPresentOffer(Action):
    """Makes the first offer the customer qualifies for, or says there is none today."""

    def name(self) -> str:
        return "action_present_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        customer_id = verified_customer_id(tracker)
        channel = consent_channel(tracker.get_latest_input_channel())
        known, offer = await in_cdp_transaction(
            lambda session: find_offer(session, customer_id, channel)
        )
        if not known:
            dispatcher.utter_message(response="utter_offers_need_sign_in")
        elif offer is None:
            dispatcher.utter_message(response="utter_no_offer")
        else:
            dispatcher.utter_message(response="utter_offer", offer_text=offer.text)
        return [SlotSet(PENDING_SLOT, offer.offer_id if offer else None)]


def answer_offer(
    session: Session,
    customer_id: str | None,
    offer_id: str,
    accepted: bool,
    event_id: str,
    channel: str | None,
) -> str | None:
    """Record the answer; the accepted wording, or None when the customer is not verified."""
    profile = identified_profile(session, customer_id)
    if profile is None:
        return None
    record_offer_answer(
        session,
        profile.customer_id,
        offer_id,
        accepted=accepted,
        event_id=event_id,
        channel=channel,
    )
    return next(o.accepted_text for o in load_offers() if o.offer_id == offer_id)


class _AnswerOffer(Action, ABC):
    """Yes or no to the pending offer, recorded once per answering message."""

    accepted: bool

    @abstractmethod
    def name(self) -> str:
        """Abstract, so the action server registers only the two answers."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        offer_id = tracker.get_slot(PENDING_SLOT)
        customer_id = verified_customer_id(tracker)
        if not offer_id or customer_id is None:
            dispatcher.utter_message(response="utter_offers_need_sign_in")
            return [SlotSet(PENDING_SLOT, None)]
        # One event per answering message: a redelivered or retried "yes" is stored once.
        message_id = (tracker.latest_message or {}).get("message_id") or "none"
        event_id = f"offer:{offer_id}:{tracker.sender_id}:{message_id}"
        channel = tracker.get_latest_input_channel()
        try:
            accepted_text = await in_cdp_transaction(
                lambda session: answer_offer(
                    session, customer_id, offer_id, self.accepted, event_id, channel
                )
            )
        except InvalidValue:  # the offer was removed from offers.yml meanwhile
            logger.warning("answer to offer %s, which offers.yml no longer has", offer_id)
            dispatcher.utter_message(response="utter_offer_expired")
            return [SlotSet(PENDING_SLOT, None)]
        if accepted_text is None:
            dispatcher.utter_message(response="utter_offers_need_sign_in")
        elif self.accepted:
            dispatcher.utter_message(response="utter_offer_accepted", accepted_text=accepted_text)
        else:
            dispatcher.utter_message(response="utter_offer_declined")
        return [SlotSet(PENDING_SLOT, None), SlotSet("conversation_outcome", "resolved_by_bot")]


class ActionAcceptOffer(_AnswerOffer):
    """Yes to the pending offer."""

    accepted = True

    def name(self) -> str:
        return "action_accept_offer"


class ActionDeclineOffer(_AnswerOffer):
    """No to the pending offer."""

    accepted = False

    def name(self) -> str:
        return "action_decline_offer"
