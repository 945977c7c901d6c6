"""Export everything about a person, erase them, and read a profile with an audit entry.

A person is a profile together with every profile merged into it: export and erasure
cover them all, since they are the same customer.
"""

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cdp.attributes.service import attribute_rows
from cdp.clock import isoformat_z, utcnow
from cdp.consents.service import consent_history
from cdp.conversations.service import list_conversations
from cdp.errors import InvalidValue, ProfileNotFound
from cdp.events.models import Event
from cdp.handoff.models import Handoff
from cdp.identities.models import Identity
from cdp.identities.service import list_identities
from cdp.merges.service import merge_document, merges_of
from cdp.orders.models import Order
from cdp.privacy.audit import audit_entries, record_audit
from cdp.privacy.keys import erasure_key, keyed_hash
from cdp.privacy.models import AuditAction, ErasedIdentifier, Erasure
from cdp.profiles.models import Profile
from cdp.profiles.service import profile_document, resolve_ref
from cdp.validation import clean_text

EXPORT_FORMAT = "northwind-cdp-person/1"
REASON_MAX_LENGTH = 2000


def person_profiles(session: Session, ref: str) -> list[Profile]:
    """The surviving profile for `ref` first, then every profile merged into it (at any
    depth); ProfileNotFound when `ref` matches nobody."""
    root = resolve_ref(session, ref)
    if root is None:
        raise ProfileNotFound(ref.strip())
    profiles = [root]
    frontier = [root.customer_id]
    while frontier:
        merged = list(
            session.scalars(
                select(Profile)
                .where(Profile.merged_into.in_(frontier))
                .order_by(Profile.customer_id)
            )
        )
        profiles.extend(merged)
        frontier = [profile.customer_id for profile in merged]
    return profiles


def export_person(session: Session, ref: str) -> dict[str, Any]:
    """Everything stored about the person as JSON-ready data: each profile with its
    attribute values and provenance, identities, orders with lines, events, consent
    history and conversations, then the merges and the log of who accessed the data."""
    profiles = person_profiles(session, ref)
    ids = [profile.customer_id for profile in profiles]
    merges: dict[int, dict[str, Any]] = {}
    for customer_id in ids:
        for record in merges_of(session, customer_id):
            merges[record.id] = merge_document(record)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": isoformat_z(utcnow()),
        "customer_id": ids[0],
        "profiles": [_profile_export(session, profile) for profile in profiles],
        "merges": [merges[merge_id] for merge_id in sorted(merges)],
        "access_log": [
            {
                "at": isoformat_z(entry.at),
                "actor": entry.actor,
                "action": entry.action.value,
                "customer_id": entry.customer_id,
                "purpose": entry.purpose,
                "fields": entry.fields,
            }
            for customer_id in ids
            for entry in audit_entries(session, customer_id)
        ],
    }


def _profile_export(session: Session, profile: Profile) -> dict[str, Any]:
    customer_id = profile.customer_id
    document = profile_document(session, profile)
    document["merged_into"] = profile.merged_into
    document["identities"] = [
        {
            "type": identity.type.value,
            "value": identity.value,
            "verified": identity.verified,
            "source": identity.source.value,
            "created_at": isoformat_z(identity.created_at),
        }
        for identity in list_identities(session, customer_id)
    ]
    document["attribute_values"] = [
        {
            "name": row.name,
            "kind": row.kind.value,
            "value": row.value,
            "source": row.source.value,
            "verified": row.verified,
            "set_at": isoformat_z(row.set_at),
        }
        for _, row in sorted(attribute_rows(session, customer_id).items())
    ]
    document["orders"] = [_order_export(order) for order in _orders(session, customer_id)]
    document["events"] = [
        {
            "event_id": event.event_id,
            "type": event.type,
            "at": isoformat_z(event.occurred_at),
            "channel": event.channel,
            "properties": event.properties,
        }
        for event in session.scalars(
            select(Event)
            .where(Event.customer_id == customer_id)
            .order_by(Event.occurred_at, Event.id)
        )
    ]
    document["consents"] = [
        {
            "purpose": consent.purpose.value,
            "channel": consent.channel.value,
            "status": consent.status.value,
            "at": isoformat_z(consent.recorded_at),
            "source": consent.source,
            "evidence": consent.evidence,
        }
        for consent in consent_history(session, customer_id)
    ]
    document["conversations"] = [
        {
            "channel": ref.channel,
            "sender_id": ref.sender_id,
            "first_seen_at": isoformat_z(ref.first_seen_at),
            "last_seen_at": isoformat_z(ref.last_seen_at),
        }
        for ref in list_conversations(session, customer_id)
    ]
    return document


def _orders(session: Session, customer_id: str) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(Order.placed_at, Order.order_id)
        )
    )


def _order_export(order: Order) -> dict[str, Any]:
    address = order.delivery_address
    return {
        "order_id": order.order_id,
        "placed_at": isoformat_z(order.placed_at),
        "status": order.status.value,
        "channel": order.channel,
        "currency": order.currency,
        "total": str(order.total),
        "delivery_address": address.as_dict() if address else None,
        "reorder_of": order.reorder_of,
        "items": [
            {
                "sku": line.sku,
                "name": line.name,
                "qty": line.quantity,
                "unit_price": str(line.unit_price),
                "options": line.options,
            }
            for line in order.lines
        ],
    }


def erase_person(session: Session, ref: str, actor: str, reason: str) -> Erasure:
    """Delete the person (every profile in person_profiles) and all that hangs off them.

    The foreign keys cascade from the profiles to identities, attribute values, computed
    state, orders with lines, events, consents, conversation refs and merge records;
    handoffs (with their messages) are deleted too; all in the caller's transaction. Each
    identifier is kept only as a keyed hash (CDP_ERASURE_KEY, checked before anything is
    deleted), so resolution refuses to bring the person back silently.
    The erasure itself and an audit entry record who, when and why.
    """
    reason = _required_text("reason", reason, REASON_MAX_LENGTH)
    key = erasure_key()
    profiles = person_profiles(session, ref)
    ids = [profile.customer_id for profile in profiles]
    identifiers = {
        (identity.type.value, identity.value)
        for identity in session.scalars(select(Identity).where(Identity.customer_id.in_(ids)))
    }
    erasure = Erasure(
        customer_hmac=keyed_hash(key, "customer_id", ids[0]),
        actor=actor,
        reason=reason,
        erased_at=utcnow(),
        profiles=len(ids),
        identifiers=len(identifiers),
    )
    session.add(erasure)
    session.flush()
    known = set(
        session.execute(select(ErasedIdentifier.type, ErasedIdentifier.value_hmac)).tuples().all()
    )
    for kind, value in sorted(identifiers):
        digest = (kind, keyed_hash(key, kind, value))
        if digest not in known:
            session.add(ErasedIdentifier(erasure_id=erasure.id, type=kind, value_hmac=digest[1]))
    # Handoffs keep their customer_id without a foreign key; their messages cascade.
    session.execute(
        delete(Handoff).where(Handoff.customer_id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        delete(Profile).where(Profile.customer_id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    session.expunge_all()
    record_audit(session, actor, AuditAction.ERASE, ids[0], reason, ids[1:])
    return erasure


def audited_profile_read(session: Session, ref: str, actor: str, purpose: str) -> dict[str, Any]:
    """The profile document for a person (agent console, CLI), with an audit entry naming
    the actor, the purpose and the fields shown."""
    profile = resolve_ref(session, ref)
    if profile is None:
        raise ProfileNotFound(ref.strip())
    document = profile_document(session, profile)
    record_audit(
        session,
        actor,
        AuditAction.READ,
        profile.customer_id,
        purpose,
        sorted(document),
    )
    return document


def _required_text(name: str, value: object, max_length: int) -> str:
    try:
        return clean_text(value, max_length=max_length)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field=name) from None
