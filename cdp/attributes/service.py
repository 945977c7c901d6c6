"""Writing attribute values under the provenance rule, and checking definitions against data.

The rule: an unverified value never replaces a different verified one. Such a write is
refused with UnverifiedOverwrite and nothing of it is stored (the caller's transaction
rolls back); the caller can ask the customer to verify, or hand over to an agent.
"""

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from cdp.attributes.definitions import CustomAttribute, CustomDefinitions
from cdp.attributes.errors import AttributeTypeChanged, UnknownAttribute, UnverifiedOverwrite
from cdp.attributes.models import AttributeKind, AttributeTypeInUse, AttributeValue
from cdp.attributes.types import clean_typed_value
from cdp.errors import InvalidValue
from cdp.identities.models import IdentitySource


def attribute_rows(session: Session, customer_id: str) -> dict[str, AttributeValue]:
    """Every provenance/value row of a profile, by attribute name (one indexed query)."""
    rows = session.scalars(_attribute_rows_statement(), {"customer_id": customer_id})
    return {row.name: row for row in rows}


@cache
def _attribute_rows_statement() -> Select[tuple[AttributeValue]]:
    # Built once: part of every profile read, where building the statement cost as much as
    # running it.
    return select(AttributeValue).where(AttributeValue.customer_id == bindparam("customer_id"))


def clean_custom_value(definition: CustomAttribute, value: object) -> Any:
    """The value in stored form; InvalidValue names the attribute, expected type and got."""
    try:
        cleaned = clean_typed_value(definition.type, value)
    except InvalidValue as error:
        raise InvalidValue(error.reason, field=definition.name) from None
    if definition.allowed and cleaned not in definition.allowed:
        raise InvalidValue(
            f"expected one of {', '.join(definition.allowed)}, got {cleaned!r}",
            field=definition.name,
        )
    return cleaned


def record_value(
    session: Session,
    rows: dict[str, AttributeValue],
    customer_id: str,
    name: str,
    *,
    kind: AttributeKind,
    value: Any,
    value_type: str | None,
    source: IdentitySource,
    verified: bool,
    now: datetime,
    changed: bool,
) -> bool:
    """Record a write of `name`; True if anything stored changed.

    `changed` says whether the value differs from the stored one (for standard attributes
    the caller compares the profile column). A verified rewrite of the same value upgrades
    the stored provenance; an unverified rewrite of the same value changes nothing.
    """
    row = rows.get(name)
    if row is not None and changed and row.verified and not verified:
        raise UnverifiedOverwrite(customer_id, name, row.source.value)
    if row is None:
        row = AttributeValue(customer_id=customer_id, name=name, kind=kind)
        session.add(row)
        rows[name] = row
    elif not changed and (row.verified or not verified):
        return False
    row.value = value
    row.value_type = value_type
    row.source = source
    row.verified = verified
    row.set_at = now
    return True


def set_custom_attributes(
    session: Session,
    rows: dict[str, AttributeValue],
    customer_id: str,
    values: dict[str, Any],
    definitions: CustomDefinitions,
    *,
    source: IdentitySource,
    verified: bool,
    now: datetime,
) -> bool:
    """Validate and store declared custom values; True if any stored value changed.

    A null value clears the attribute (subject to the same provenance rule).
    """
    changed_any = False
    for name, raw in values.items():
        definition = definitions.attributes.get(name)
        if definition is None:
            raise UnknownAttribute(name)
        value = None if raw is None else clean_custom_value(definition, raw)
        row = rows.get(name)
        if row is None:
            register_type(session, definition)
        elif row.value_type != definition.type.value:
            raise AttributeTypeChanged(name, str(row.value_type), definition.type.value)
        stored = row.value if row is not None else None
        changed_any |= record_value(
            session,
            rows,
            customer_id,
            name,
            kind=AttributeKind.CUSTOM,
            value=value,
            value_type=definition.type.value,
            source=source,
            verified=verified,
            now=now,
            changed=stored != value,
        )
    return changed_any


def register_type(session: Session, definition: CustomAttribute) -> None:
    """Remember the type of an attribute's first stored value; refuse a different one later."""
    known = session.get(AttributeTypeInUse, definition.name)
    if known is None:
        session.add(AttributeTypeInUse(name=definition.name, type=definition.type.value))
        session.flush()
    elif known.type != definition.type.value:
        raise AttributeTypeChanged(definition.name, known.type, definition.type.value)


def check_definitions_against_data(session: Session, definitions: CustomDefinitions) -> None:
    """Refuse definitions that change the type of, or drop, an attribute with stored values.

    Reads the small attribute_types registry, not the values themselves.
    """
    for known in session.scalars(select(AttributeTypeInUse).order_by(AttributeTypeInUse.name)):
        definition = definitions.attributes.get(known.name)
        if definition is None:
            raise AttributeTypeChanged(known.name, known.type, "undefined (definition removed)")
        if definition.type.value != known.type:
            raise AttributeTypeChanged(known.name, known.type, definition.type.value)
