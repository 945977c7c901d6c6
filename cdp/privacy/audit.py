"""The audit log: every time a person (agent, operator) reads or changes someone's data."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdp.clock import utcnow
from cdp.errors import InvalidValue
from cdp.privacy.models import ACTOR_MAX_LENGTH, PURPOSE_MAX_LENGTH, AuditAction, AuditEntry
from cdp.validation import clean_text


def record_audit(
    session: Session,
    actor: str,
    action: AuditAction,
    customer_id: str,
    purpose: str,
    fields: Sequence[str] = (),
) -> AuditEntry:
    """Append one entry; actor and purpose are required so no access is anonymous."""
    entry = AuditEntry(
        at=utcnow(),
        actor=_required("actor", actor, ACTOR_MAX_LENGTH),
        action=action,
        customer_id=customer_id,
        purpose=_required("purpose", purpose, PURPOSE_MAX_LENGTH),
        fields=list(fields),
    )
    session.add(entry)
    session.flush()
    return entry


def audit_entries(session: Session, customer_id: str) -> list[AuditEntry]:
    """Every entry about a profile, oldest first."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.customer_id == customer_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )


def _required(name: str, value: object, max_length: int) -> str:
    try:
        return clean_text(value, max_length=max_length)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field=name) from None
