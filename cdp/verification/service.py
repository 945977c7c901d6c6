"""Issuing and checking one-time codes, and linking the channel identity that asked.

The flow (docs/channels.md): a requester (the channel identity of a conversation) names a
phone or email; if it is on file for a profile, a code goes there, else a decoy row is made
and nothing is sent; both answer the same, so nobody can test which identifiers are on file.
The right code, in time and within the attempts, links the requester to the profile as a
verified identity and records an `identity_verified` event, in one transaction.

Race safety: every check first takes an attempt with one conditional UPDATE (`attempts_left
> 0`, still pending, not expired); success then moves the row from pending to verified with
another conditional UPDATE. On PostgreSQL a second check of the same row waits for the
first's row lock and then finds it no longer pending; SQLite serialises writers (BEGIN
IMMEDIATE). So two concurrent checks of one code never both succeed, and no attempt is lost.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from cdp import clock
from cdp.errors import CdpError, IdentityConflict, InvalidIdentifier
from cdp.events.models import EventIn
from cdp.events.service import record_event
from cdp.identities.models import IdentitySource, IdentityType
from cdp.identities.service import (
    canonical_profile,
    find_profile_by_identity,
    link_identity,
    mark_proven,
    normalise,
)
from cdp.identity_token import IDENTITY_SECRET_ENV
from cdp.profiles.models import Profile
from cdp.verification.models import CodeState, TargetType, VerificationCode
from cdp.verification.senders import CodeMessage

# The channel identities a connector reports (docs/channels.md) and the CDP identity a
# verified one becomes. The one table both the verification and the disclosure rules
# (actions/identity.py) read.
CHANNEL_IDENTITY_LINKS: dict[str, IdentityType] = {
    "twilio_sender": IdentityType.PHONE,
    "messenger_psid": IdentityType.MESSENGER_PSID,
    "socketio_session": IdentityType.SOCKETIO_SENDER,
    "rest_sender": IdentityType.REST_SENDER,
}
IDENTITY_VERIFIED_EVENT = "identity_verified"
CODE_DIGITS = 6
_CODE_SEPARATORS = re.compile(r"[\s\-.]")

TTL_ENV = "VERIFICATION_CODE_TTL_SECONDS"
ATTEMPTS_ENV = "VERIFICATION_MAX_ATTEMPTS"
SENDS_ENV = "VERIFICATION_MAX_CODES_PER_HOUR"
KEY_ENV = "VERIFICATION_CODE_KEY"
MESSAGE_ENV = "VERIFICATION_MESSAGE"
DEFAULT_TTL_SECONDS = 600
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_CODES_PER_HOUR = 3
DEFAULT_MESSAGE = (
    "Your verification code is {code}. It expires in {minutes} minutes. Never share it."
)
MIN_KEY_LENGTH = 16
SEND_WINDOW = timedelta(hours=1)
SESSION_DAYS_ENV = "VERIFIED_SESSION_DAYS"
DEFAULT_SESSION_DAYS = 30
# Conversation ids that no channel proves (a browser's chat session, a REST sender): a code
# links them to a profile for VERIFIED_SESSION_DAYS only, so a browser left signed in on a
# shared computer does not serve its owner's data forever.
SESSION_LINK_TYPES = frozenset({IdentityType.SOCKETIO_SENDER, IdentityType.REST_SENDER})


class VerificationMisconfigured(CdpError):
    """A verification setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Requester:
    """The channel identity that asks for a code and is linked when it is checked right."""

    kind: str
    value: str
    channel: str | None = None

    @classmethod
    def of(cls, kind: str, value: object, channel: str | None = None) -> Requester:
        """A checked requester; InvalidIdentifier for an unknown kind or a bad value."""
        link = CHANNEL_IDENTITY_LINKS.get(kind)
        if link is None:
            known = ", ".join(CHANNEL_IDENTITY_LINKS)
            raise InvalidIdentifier(f"channel identity type {kind!r} is not one of {known}")
        return cls(kind, normalise(link, value), channel)

    @property
    def identity_type(self) -> IdentityType:
        return CHANNEL_IDENTITY_LINKS[self.kind]


@dataclass(frozen=True)
class VerificationSettings:
    """Limits and the key, from the environment (docs/configuration.md)."""

    key: bytes
    ttl: timedelta = timedelta(seconds=DEFAULT_TTL_SECONDS)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_codes_per_hour: int = DEFAULT_MAX_CODES_PER_HOUR
    message: str = DEFAULT_MESSAGE

    @classmethod
    def from_env(cls) -> VerificationSettings:
        message = os.environ.get(MESSAGE_ENV, "").strip() or DEFAULT_MESSAGE
        if "{code}" not in message:
            raise VerificationMisconfigured(f"{MESSAGE_ENV} must contain {{code}}")
        return cls(
            key=_code_key(),
            ttl=timedelta(seconds=_positive_int(TTL_ENV, DEFAULT_TTL_SECONDS)),
            max_attempts=_positive_int(ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS),
            max_codes_per_hour=_positive_int(SENDS_ENV, DEFAULT_MAX_CODES_PER_HOUR),
            message=message,
        )


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise VerificationMisconfigured(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


def session_link_lifetime() -> timedelta:
    """How long a code-linked session stays linked (VERIFIED_SESSION_DAYS, default 30)."""
    return timedelta(days=_positive_int(SESSION_DAYS_ENV, DEFAULT_SESSION_DAYS))


def _code_key() -> bytes:
    """VERIFICATION_CODE_KEY, or a key derived from CDP_IDENTITY_SECRET (domain-separated,
    so a code hash can't be mistaken for a token signature)."""
    own = os.environ.get(KEY_ENV, "").strip()
    if own:
        if len(own) < MIN_KEY_LENGTH:
            raise VerificationMisconfigured(f"{KEY_ENV} must be at least {MIN_KEY_LENGTH} chars")
        return own.encode()
    secret = os.environ.get(IDENTITY_SECRET_ENV, "").strip()
    if not secret:
        raise VerificationMisconfigured(f"set {KEY_ENV} or {IDENTITY_SECRET_ENV} to issue codes")
    return hmac.new(secret.encode(), b"northwind one-time codes", hashlib.sha256).digest()


def _digest(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


class IssueOutcome(str, Enum):
    SENT = "sent"  # also for a target not on file: nothing went out, and nobody can tell
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class IssuedCode:
    """What `issue_code` did. `message` is what to deliver; None for a decoy or a refusal."""

    outcome: IssueOutcome
    expires_at: datetime | None = None
    message: CodeMessage | None = None


def issue_code(
    session: Session,
    requester: Requester,
    target_type: TargetType | str,
    target_value: object,
    settings: VerificationSettings,
) -> IssuedCode:
    """A new code for the requester, to the phone or email `target_value` if it is on file.

    InvalidIdentifier for a malformed target (the customer is asked again). At most
    `max_codes_per_hour` codes go to one target in an hour, decoys included (RATE_LIMITED).
    A new code replaces the requester's pending one. The caller delivers `message` after
    this transaction commits (no network call while holding the database).
    """
    kind = TargetType(target_type)
    target = normalise(IdentityType(kind.value), target_value)
    target_hash = _digest(settings.key, "target", kind.value, target)
    _serialise_per_target(session, target_hash)
    now = clock.utcnow()
    recent = session.scalar(
        select(func.count())
        .select_from(VerificationCode)
        .where(
            VerificationCode.target_hash == target_hash,
            VerificationCode.created_at > now - SEND_WINDOW,
        )
    )
    if recent >= settings.max_codes_per_hour:
        return IssuedCode(IssueOutcome.RATE_LIMITED)
    owner = find_profile_by_identity(session, IdentityType(kind.value), target)
    customer_id = canonical_profile(session, owner).customer_id if owner else None
    session.execute(
        update(VerificationCode)
        .where(
            VerificationCode.requester_type == requester.kind,
            VerificationCode.requester_value == requester.value,
            VerificationCode.state == CodeState.PENDING,
        )
        .values(state=CodeState.SUPERSEDED, finished_at=now)
    )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    nonce = secrets.token_hex(16)
    row = VerificationCode(
        customer_id=customer_id,
        requester_type=requester.kind,
        requester_value=requester.value,
        channel=requester.channel,
        target_type=kind,
        target_hash=target_hash,
        nonce=nonce,
        code_hash=_digest(settings.key, "code", nonce, code),
        state=CodeState.PENDING,
        attempts_left=settings.max_attempts,
        created_at=now,
        expires_at=now + settings.ttl,
    )
    session.add(row)
    session.flush()
    if customer_id is None:
        return IssuedCode(IssueOutcome.SENT, row.expires_at)
    minutes = max(1, int(settings.ttl.total_seconds() // 60))
    body = settings.message.format(code=code, minutes=minutes)
    return IssuedCode(IssueOutcome.SENT, row.expires_at, CodeMessage(row.id, kind, target, body))


def _serialise_per_target(session: Session, target_hash: str) -> None:
    """Two requests for one target must not both pass the send limit: on PostgreSQL a
    transaction-scoped advisory lock on the target; SQLite already serialises writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(target_hash[:15], 16)}
        )


def mark_undelivered(session: Session, code_id: int) -> None:
    """The provider refused the code: it can never be checked right."""
    session.execute(
        update(VerificationCode)
        .where(VerificationCode.id == code_id, VerificationCode.state == CodeState.PENDING)
        .values(state=CodeState.UNDELIVERED, finished_at=clock.utcnow())
    )


class CheckOutcome(str, Enum):
    VERIFIED = "verified"
    WRONG = "wrong"  # attempts_left says how many remain
    EXHAUSTED = "exhausted"  # no attempt left: a new code is needed
    EXPIRED = "expired"
    NO_CODE = "no_code"  # nothing pending for this requester (never asked, or already used)
    MALFORMED = "malformed"  # not six digits: no attempt taken
    LINKED_ELSEWHERE = "linked_elsewhere"  # the channel identity belongs to another profile


@dataclass(frozen=True)
class CheckResult:
    outcome: CheckOutcome
    attempts_left: int = 0
    customer_id: str | None = None


def check_code(
    session: Session, requester: Requester, code_text: object, settings: VerificationSettings
) -> CheckResult:
    """Check a code typed in the requester's conversation against its latest code."""
    code = _CODE_SEPARATORS.sub("", code_text) if isinstance(code_text, str) else ""
    if not (len(code) == CODE_DIGITS and code.isascii() and code.isdigit()):
        return CheckResult(CheckOutcome.MALFORMED)
    latest = session.scalar(
        select(VerificationCode)
        .where(
            VerificationCode.requester_type == requester.kind,
            VerificationCode.requester_value == requester.value,
        )
        .order_by(VerificationCode.id.desc())
        .limit(1)
    )
    if latest is None:
        return CheckResult(CheckOutcome.NO_CODE)
    now = clock.utcnow()
    taken = session.execute(
        update(VerificationCode)
        .where(
            VerificationCode.id == latest.id,
            VerificationCode.state == CodeState.PENDING,
            VerificationCode.attempts_left > 0,
            VerificationCode.expires_at > now,
        )
        .values(attempts_left=VerificationCode.attempts_left - 1)
        .returning(VerificationCode.attempts_left)
        .execution_options(synchronize_session=False)
    ).first()
    if taken is None:
        return _why_not_checkable(session, latest.id, now)
    attempts_left = taken.attempts_left
    expected = _digest(settings.key, "code", latest.nonce, code)
    if latest.customer_id is not None and hmac.compare_digest(expected, latest.code_hash):
        return _verify(session, latest, requester, now)
    if attempts_left == 0:
        _finish(session, latest.id, CodeState.EXHAUSTED, now)
        return CheckResult(CheckOutcome.EXHAUSTED)
    return CheckResult(CheckOutcome.WRONG, attempts_left)


def _why_not_checkable(session: Session, code_id: int, now: datetime) -> CheckResult:
    state, expires_at = session.execute(
        select(VerificationCode.state, VerificationCode.expires_at).where(
            VerificationCode.id == code_id
        )
    ).one()
    if state is CodeState.PENDING and expires_at <= now:
        return CheckResult(CheckOutcome.EXPIRED)
    if state is CodeState.EXHAUSTED:
        return CheckResult(CheckOutcome.EXHAUSTED)
    return CheckResult(CheckOutcome.NO_CODE)


def _finish(session: Session, code_id: int, state: CodeState, now: datetime) -> bool:
    """Move a pending code to `state`; False when another check got there first."""
    result = session.execute(
        update(VerificationCode)
        .where(VerificationCode.id == code_id, VerificationCode.state == CodeState.PENDING)
        .values(state=state, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _verify(
    session: Session, code: VerificationCode, requester: Requester, now: datetime
) -> CheckResult:
    if not _finish(session, code.id, CodeState.VERIFIED, now):
        return CheckResult(CheckOutcome.NO_CODE)
    owner = session.get(Profile, code.customer_id)
    if owner is None:  # erased between issue and check (the row would be gone with it)
        return CheckResult(CheckOutcome.NO_CODE)
    profile = canonical_profile(session, owner)
    try:
        with session.begin_nested():
            # The person proved both the channel identity (the connector) and the contact on
            # file (the code): an explicit, verified link, allowed even for an identifier of
            # an erased person, who comes back of their own accord.
            link_identity(
                session,
                profile.customer_id,
                requester.identity_type,
                requester.value,
                verified=True,
                source=IdentitySource.CONVERSATION,
                allow_erased=True,
            )
            mark_proven(session, requester.identity_type, requester.value, now)
    except IdentityConflict:
        session.execute(
            update(VerificationCode)
            .where(VerificationCode.id == code.id)
            .values(state=CodeState.REFUSED)
            .execution_options(synchronize_session=False)
        )
        return CheckResult(CheckOutcome.LINKED_ELSEWHERE)
    record_event(
        session,
        EventIn(
            event_id=f"{IDENTITY_VERIFIED_EVENT}:{code.id}",
            customer_id=profile.customer_id,
            type=IDENTITY_VERIFIED_EVENT,
            occurred_at=now,
            channel=requester.channel,
            properties={
                "identity_type": requester.identity_type.value,
                "via": code.target_type.value,
            },
        ),
    )
    return CheckResult(CheckOutcome.VERIFIED, customer_id=profile.customer_id)
