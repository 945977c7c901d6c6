"""One read for the actions: a profile's standard, custom and computed attributes and
identifiers, in four indexed queries (profile, attribute rows, computed state and parts,
identities)."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from cdp.attributes.definitions import STANDARD_ATTRIBUTES
from cdp.attributes.models import AttributeKind, Provenance
from cdp.attributes.service import attribute_rows
from cdp.clock import isoformat_z, utcnow
from cdp.computed.definitions import load_computed_definitions
from cdp.computed.service import evaluate_computed, load_computed_rows
from cdp.identities.service import list_identities
from cdp.profiles.service import resolve_ref


@dataclass(frozen=True)
class AttributeView:
    """One attribute value with where it came from (provenance None: set before it was
    recorded, or never set)."""

    value: Any
    provenance: Provenance | None


@dataclass(frozen=True)
class IdentityView:
    """One identifier of the profile."""

    type: str
    value: str
    verified: bool
    source: str
    created_at: datetime


@dataclass(frozen=True)
class ProfileContext:
    """What the assistant knows about a customer, read at one moment.

    `custom` holds declared custom attributes (typed), `extra` the free-form undeclared
    ones. `computed_times` gives the time of first/last values; `computed_stale` names
    aggregates whose state predates their definition (run `python -m cdp recompute`).
    """

    customer_id: str
    standard: dict[str, AttributeView]
    custom: dict[str, AttributeView]
    extra: dict[str, Any]
    computed: dict[str, Any]
    computed_times: dict[str, datetime]
    computed_stale: frozenset[str]
    identities: tuple[IdentityView, ...]
    created_at: datetime
    updated_at: datetime


def profile_context(
    session: Session, ref: str, *, now: datetime | None = None
) -> ProfileContext | None:
    """The context of the profile `ref` names (customer id or type:value), None if none."""
    profile = resolve_ref(session, ref)
    if profile is None:
        return None
    definitions = load_computed_definitions()
    moment = now or utcnow()
    rows = attribute_rows(session, profile.customer_id)
    aggregates = load_computed_rows(session, profile.customer_id, definitions, moment.date())
    computed = evaluate_computed(definitions, profile, rows.values(), aggregates, moment)

    def provenance(name: str) -> Provenance | None:
        row = rows.get(name)
        if row is None:
            return None
        return Provenance(source=row.source.value, verified=row.verified, set_at=row.set_at)

    address = profile.address
    standard = {
        name: AttributeView(
            value=(address.as_dict() if address else None)
            if name == "address"
            else getattr(profile, name),
            provenance=provenance(name),
        )
        for name in STANDARD_ATTRIBUTES
    }
    custom = {
        name: AttributeView(value=row.value, provenance=provenance(name))
        for name, row in sorted(rows.items())
        if row.kind is AttributeKind.CUSTOM and row.value is not None
    }
    return ProfileContext(
        customer_id=profile.customer_id,
        standard=standard,
        custom=custom,
        extra=dict(profile.custom or {}),
        computed=computed.values,
        computed_times=computed.times,
        computed_stale=computed.stale,
        identities=tuple(
            IdentityView(
                type=identity.type.value,
                value=identity.value,
                verified=identity.verified,
                source=identity.source.value,
                created_at=identity.created_at,
            )
            for identity in list_identities(session, profile.customer_id)
        ),
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


def json_value(value: Any) -> Any:
    """A computed or typed value in JSON form: whole numbers as int, other numbers as float,
    times as ISO 8601 (UTC with Z), dates as YYYY-MM-DD."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return isoformat_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [json_value(item) for item in value]
    return value


def _attribute_json(view: AttributeView) -> dict[str, Any]:
    provenance = view.provenance
    return {
        "value": view.value,
        "source": provenance.source if provenance else None,
        "verified": provenance.verified if provenance else None,
        "set_at": isoformat_z(provenance.set_at) if provenance else None,
    }


def context_document(context: ProfileContext) -> dict[str, Any]:
    """The attribute part of the profile JSON: standard and custom values with provenance,
    computed values (first/last as {value, at})."""
    computed: dict[str, Any] = {}
    for name, value in context.computed.items():
        if name in context.computed_times:
            computed[name] = {
                "value": json_value(value),
                "at": isoformat_z(context.computed_times[name]),
            }
        else:
            computed[name] = json_value(value)
    return {
        "standard_attributes": {
            name: _attribute_json(view) for name, view in context.standard.items()
        },
        "custom_attributes": {name: _attribute_json(view) for name, view in context.custom.items()},
        "computed": computed,
        "computed_stale": sorted(context.computed_stale),
    }
