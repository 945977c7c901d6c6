"""Recording consent decisions and reading the current state.

History is append-only: a decision is a new row, never an update. The current state of a
(purpose, channel) is its latest record by recorded_at (then id). A record for channel
`any` applies to every channel; whichever of it and the channel's own record is later wins.
No record means no consent.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.changes import Change
from cdp.consents.models import (
    EVIDENCE_MAX_LENGTH,
    SOURCE_MAX_LENGTH,
    Consent,
    ConsentChannel,
    ConsentIn,
    ConsentPurpose,
    ConsentStatus,
)
from cdp.errors import InvalidValue, ProfileNotFound
from cdp.profiles.models import Profile
from cdp.validation import clean_text

E = TypeVar("E", bound=Enum)


def parse_purpose(value: object) -> ConsentPurpose:
    """A ConsentPurpose from its name; InvalidValue naming the known ones otherwise."""
    return _parse_enum(ConsentPurpose, value, "purpose")


def parse_channel(value: object) -> ConsentChannel:
    """A ConsentChannel from its name (email, sms, messenger, web, any)."""
    return _parse_enum(ConsentChannel, value, "channel")


def parse_status(value: object) -> ConsentStatus:
    """granted or withdrawn."""
    return _parse_enum(ConsentStatus, value, "status")


def clean_source(value: object) -> str:
    """Where the decision was captured, e.g. web_signup_form or agent:jane."""
    return clean_text(value, max_length=SOURCE_MAX_LENGTH)


def clean_evidence(value: object) -> str:
    """Free text proving the decision (wording shown, form version, message quoted)."""
    return clean_text(value, max_length=EVIDENCE_MAX_LENGTH)


def record_consent(session: Session, incoming: ConsentIn) -> Change:
    """Append a decision; UNCHANGED when the very same decision (purpose, channel, status,
    time and source) is already stored, so redelivered imports and API calls add nothing."""
    if session.get(Profile, incoming.customer_id) is None:
        raise ProfileNotFound(incoming.customer_id)
    duplicate = session.scalar(
        select(Consent.id).where(
            Consent.customer_id == incoming.customer_id,
            Consent.purpose == incoming.purpose,
            Consent.channel == incoming.channel,
            Consent.status == incoming.status,
            Consent.recorded_at == incoming.recorded_at,
            Consent.source == incoming.source,
        )
    )
    if duplicate is not None:
        return Change.UNCHANGED
    session.add(
        Consent(
            customer_id=incoming.customer_id,
            purpose=incoming.purpose,
            channel=incoming.channel,
            status=incoming.status,
            recorded_at=incoming.recorded_at,
            source=incoming.source,
            evidence=incoming.evidence,
        )
    )
    session.flush()
    return Change.CREATED


def consent_history(session: Session, customer_id: str) -> list[Consent]:
    """Every decision of the customer, oldest first."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.customer_id == customer_id)
            .order_by(Consent.recorded_at, Consent.id)
        )
    )


@dataclass(frozen=True)
class ConsentState:
    """The decision currently in force for one (purpose, channel)."""

    purpose: ConsentPurpose
    channel: ConsentChannel
    status: ConsentStatus
    recorded_at: datetime
    source: str


def current_consents(session: Session, customer_id: str) -> list[ConsentState]:
    """The latest record per (purpose, channel) that has any, sorted by purpose then channel."""
    latest: dict[tuple[ConsentPurpose, ConsentChannel], Consent] = {}
    for record in consent_history(session, customer_id):
        latest[(record.purpose, record.channel)] = record
    return [
        ConsentState(
            record.purpose, record.channel, record.status, record.recorded_at, record.source
        )
        for _, record in sorted(
            latest.items(), key=lambda item: (item[0][0].value, item[0][1].value)
        )
    ]


def has_consent(
    session: Session, customer_id: str, purpose: ConsentPurpose, channel: ConsentChannel
) -> bool:
    """True when the latest decision covering this purpose on this channel is a grant."""
    channels = {channel, ConsentChannel.ANY}
    decisive = session.scalar(
        select(Consent)
        .where(
            Consent.customer_id == customer_id,
            Consent.purpose == purpose,
            Consent.channel.in_(channels),
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    )
    return decisive is not None and decisive.status is ConsentStatus.GRANTED


def _parse_enum(enum_class: type[E], value: object, name: str) -> E:
    text = clean_text(value, max_length=32)
    try:
        return enum_class(text)
    except ValueError:
        known = ", ".join(member.value for member in enum_class)
        raise InvalidValue(f"unknown {name} {text!r}; expected one of {known}") from None


def consent_status(
    session: Session, customer_id: str, purpose: ConsentPurpose, channel: ConsentChannel
) -> ConsentStatus | None:
    """The decision in force for this purpose on this channel; None when never asked."""
    decisive = session.scalar(
        select(Consent.status)
        .where(
            Consent.customer_id == customer_id,
            Consent.purpose == purpose,
            Consent.channel.in_({channel, ConsentChannel.ANY}),
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    )
    return decisive


def decide_consent(session: Session, incoming: ConsentIn) -> Change:
    """Record a decision the customer just made, unless it is already the one in force.

    Saying "unsubscribe me" twice (or a redelivered message) adds no second record: the
    history keeps only real changes of mind. A decision for `any` is already in force only
    when no channel has a later, different decision. Returns CREATED or UNCHANGED.
    """
    if session.get(Profile, incoming.customer_id) is None:
        raise ProfileNotFound(incoming.customer_id)
    if _in_force(session, incoming):
        return Change.UNCHANGED
    return record_consent(session, incoming)


def _in_force(session: Session, incoming: ConsentIn) -> bool:
    in_force = consent_status(session, incoming.customer_id, incoming.purpose, incoming.channel)
    if in_force is not incoming.status or incoming.channel is not ConsentChannel.ANY:
        return in_force is incoming.status
    latest_any = session.scalar(
        select(Consent.recorded_at)
        .where(
            Consent.customer_id == incoming.customer_id,
            Consent.purpose == incoming.purpose,
            Consent.channel == ConsentChannel.ANY,
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    )
    overriding = session.scalar(
        select(Consent.id)
        .where(
            Consent.customer_id == incoming.customer_id,
            Consent.purpose == incoming.purpose,
            Consent.channel != ConsentChannel.ANY,
            Consent.status != incoming.status,
            Consent.recorded_at >= latest_any,
        )
        .limit(1)
    )
    return overriding is None
