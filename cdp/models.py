"""Every CDP table in one import, so the metadata is complete for migrations and tests."""

from cdp.attributes.models import AttributeTypeInUse, AttributeValue
from cdp.catalogue.models import Product
from cdp.computed.models import ComputedPart, ComputedState
from cdp.consents.models import Consent
from cdp.conversations.models import ConversationRef
from cdp.db import Base
from cdp.events.models import Event
from cdp.handoff.models import Agent, Handoff, HandoffEvent, HandoffMessage
from cdp.identities.models import Identity
from cdp.merges.models import MergeConflict, ProfileMerge
from cdp.orders.models import Order, OrderLine
from cdp.privacy.models import AuditEntry, ErasedIdentifier, Erasure
from cdp.profiles.models import Profile
from cdp.verification.models import OutboxMessage, VerificationCode

__all__ = [
    "Agent",
    "AttributeTypeInUse",
    "AttributeValue",
    "AuditEntry",
    "Base",
    "ComputedPart",
    "ComputedState",
    "Consent",
    "ConversationRef",
    "ErasedIdentifier",
    "Erasure",
    "Event",
    "Handoff",
    "HandoffEvent",
    "HandoffMessage",
    "Identity",
    "MergeConflict",
    "Order",
    "OrderLine",
    "OutboxMessage",
    "Product",
    "Profile",
    "ProfileMerge",
    "VerificationCode",
]
