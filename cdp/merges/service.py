"""Merging two profiles of one person, and undoing it.

Only a verified identifier may merge (link_verified_identity); an unverified one that
belongs to someone else stays an IdentityConflict. The older profile survives. Per
attribute, the rules are (docs/cdp.md, "Merges"):

- first_name, last_name: the survivor's, filled from the other profile only when empty;
- every other standard and custom attribute: a verified value beats an unverified one;
  with equal verification the more recently set value wins; on a tie the survivor's;
- free-form custom keys: the profile updated more recently wins the key.

Where both profiles had different values, the value set aside is kept in merge_conflicts
with the profile and provenance of each side. Identities, orders, events, consents,
conversation refs and handoffs are re-pointed to the survivor; the merged profile keeps its own
attribute values and is marked merged_into. The merge record lists every row moved and
the survivor's attributes before the merge, so unmerge restores both profiles exactly.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from cdp.addresses import Address
from cdp.attributes.definitions import STANDARD_ATTRIBUTES
from cdp.attributes.models import AttributeKind, AttributeValue
from cdp.attributes.service import attribute_rows
from cdp.changes import Change
from cdp.clock import isoformat_z, parse_timestamp, utcnow
from cdp.computed.service import recompute_profile
from cdp.consents.models import Consent
from cdp.conversations.models import ConversationRef
from cdp.errors import MergeNotFound, MergeRefused, ProfileNotFound
from cdp.events.models import Event
from cdp.handoff.models import Handoff
from cdp.identities.models import Identity, IdentitySource, IdentityType
from cdp.identities.service import (
    canonical_profile,
    link_identity,
    mark_proven,
    normalise,
    parse_identity_type,
)
from cdp.merges.models import MergeConflict, ProfileMerge
from cdp.orders.models import Order
from cdp.privacy.audit import record_audit
from cdp.privacy.models import AuditAction
from cdp.profiles.models import Profile

SURVIVOR_ATTRIBUTES = frozenset({"first_name", "last_name"})
SYSTEM_ACTOR = "system"

# Rows that follow the person: (key in ProfileMerge.moved, primary key, owner column).
_MOVED: tuple[tuple[str, InstrumentedAttribute[Any], InstrumentedAttribute[str]], ...] = (
    ("identities", Identity.id, Identity.customer_id),
    ("orders", Order.order_id, Order.customer_id),
    ("events", Event.id, Event.customer_id),
    ("consents", Consent.id, Consent.customer_id),
    ("conversations", ConversationRef.id, ConversationRef.customer_id),
    ("handoffs", Handoff.id, Handoff.customer_id),
)


@dataclass(frozen=True)
class LinkResult:
    """What linking a verified identifier did: the change, and the merge it caused, if any."""

    change: Change
    customer_id: str
    merge: ProfileMerge | None = None


@dataclass(frozen=True)
class _Candidate:
    """One side's value of an attribute, with what the merge rules weigh."""

    value: Any
    verified: bool
    set_at: datetime
    source: str
    customer_id: str

    def describe(self) -> str:
        verified = "verified" if self.verified else "unverified"
        return f"{self.customer_id} ({self.source}, {verified}, {isoformat_z(self.set_at)})"


def link_verified_identity(
    session: Session,
    customer_id: str,
    identity_type: IdentityType | str,
    value: object,
    source: IdentitySource = IdentitySource.CONVERSATION,
    actor: str = SYSTEM_ACTOR,
) -> LinkResult:
    """Link an identifier the customer has just proven, merging if another profile owns it.

    Unowned: linked as verified. Owned by this profile: marked verified. Owned by another:
    the two profiles merge (the older survives) and the identifier ends up verified on the
    survivor. The result names the surviving customer_id. A customer_id that was merged
    away acts for its survivor.
    """
    kind = parse_identity_type(identity_type)
    normalised = normalise(kind, value)
    found = session.get(Profile, customer_id)
    if found is None:
        raise ProfileNotFound(customer_id)
    profile = canonical_profile(session, found)
    customer_id = profile.customer_id
    owner_id = session.scalar(
        select(Identity.customer_id).where(Identity.type == kind, Identity.value == normalised)
    )
    if owner_id is None or owner_id == customer_id:
        change = link_identity(session, customer_id, kind, normalised, True, source)
        mark_proven(session, kind, normalised)
        return LinkResult(change, customer_id)
    owner = session.get(Profile, owner_id)
    assert owner is not None  # the foreign key guarantees it
    survivor, merged = sorted((profile, owner), key=lambda p: (p.created_at, p.customer_id))
    merge = merge_profiles(
        session,
        survivor.customer_id,
        merged.customer_id,
        reason=f"verified {kind.value} links {customer_id} and {owner_id}",
        actor=actor,
        verify=(kind, normalised),
    )
    return LinkResult(Change.UPDATED, survivor.customer_id, merge)


def merge_profiles(
    session: Session,
    survivor_id: str,
    merged_id: str,
    *,
    reason: str,
    actor: str = SYSTEM_ACTOR,
    verify: tuple[IdentityType, str] | None = None,
) -> ProfileMerge:
    """Merge `merged_id` into `survivor_id` in the caller's transaction (module docstring).

    `verify` names the identifier that proved the link; it is marked verified (and put back
    as it was by unmerge). Refused (MergeRefused) for one profile, or one already merged.
    """
    if survivor_id == merged_id:
        raise MergeRefused(f"cannot merge {survivor_id} into itself")
    survivor = _locked_profile(session, survivor_id)
    merged = _locked_profile(session, merged_id)
    for profile in (survivor, merged):
        if profile.merged_into is not None:
            raise MergeRefused(
                f"{profile.customer_id} was already merged into {profile.merged_into}"
            )
    survivor_rows = attribute_rows(session, survivor_id)
    merged_rows = attribute_rows(session, merged_id)
    before = _snapshot(survivor, survivor_rows)
    verified_identities = _verified_identities(session, survivor_id, merged_id)
    conflicts = _merge_standard(
        session, survivor, merged, survivor_rows, merged_rows, verified_identities
    )
    conflicts += _merge_custom_rows(session, survivor, merged, survivor_rows, merged_rows)
    conflicts += _merge_free_form(survivor, merged)
    moved: dict[str, Any] = {}
    for key, primary_key, owner in _MOVED:
        ids = list(session.scalars(select(primary_key).where(owner == merged_id)))
        if key == "identities":
            flags = dict(
                session.execute(select(Identity.id, Identity.verified).where(Identity.id.in_(ids)))
                .tuples()
                .all()
            )
            moved[key] = [[identity_id, flags[identity_id]] for identity_id in ids]
        else:
            moved[key] = ids
        if ids:
            session.execute(
                update(primary_key.class_)
                .where(primary_key.in_(ids))
                .values({owner.key: survivor_id}),
                execution_options={"synchronize_session": "fetch"},
            )
    moved["verified"] = _verify(session, verify)
    merged.merged_into = survivor_id
    if _columns(survivor) != before["columns"]:
        survivor.updated_at = utcnow()
    record = ProfileMerge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason,
        actor=actor,
        moved=moved,
        survivor_before=before,
        created_at=utcnow(),
        conflicts=conflicts,
    )
    session.add(record)
    session.flush()
    record_audit(session, actor, AuditAction.MERGE, survivor_id, reason, [merged_id])
    _recompute(session, survivor_id, merged_id)
    return record


def unmerge(session: Session, merge_id: int, actor: str = SYSTEM_ACTOR) -> ProfileMerge:
    """Undo a merge: rows moved go back, the survivor's attributes are restored exactly
    as before the merge, and the merged profile is active again.

    Merges are undone last-first: refused while a later merge into the survivor is still
    in place, or while the survivor itself is merged into another profile. Anything the
    survivor gained after the merge (new orders, events) stays with it.
    """
    record = session.get(ProfileMerge, merge_id, with_for_update=True)
    if record is None:
        raise MergeNotFound(merge_id)
    if record.undone_at is not None:
        raise MergeRefused(
            f"merge {merge_id} was already undone at {isoformat_z(record.undone_at)}"
        )
    survivor = _locked_profile(session, record.survivor_id)
    merged = _locked_profile(session, record.merged_id)
    if survivor.merged_into is not None:
        raise MergeRefused(
            f"{survivor.customer_id} is merged into {survivor.merged_into}; undo that merge first"
        )
    later = session.scalar(
        select(ProfileMerge.id).where(
            ProfileMerge.survivor_id == record.survivor_id,
            ProfileMerge.id > record.id,
            ProfileMerge.undone_at.is_(None),
        )
    )
    if later is not None:
        raise MergeRefused(f"merge {later} into {record.survivor_id} came later; undo it first")
    for key, primary_key, owner in _MOVED:
        entries = record.moved.get(key, [])
        ids = [entry[0] for entry in entries] if key == "identities" else entries
        if ids:
            session.execute(
                update(primary_key.class_)
                .where(primary_key.in_(ids), owner == record.survivor_id)
                .values({owner.key: record.merged_id}),
                execution_options={"synchronize_session": "fetch"},
            )
    for identity_id, verified, *proven in record.moved.get("identities", []) + record.moved.get(
        "verified", []
    ):
        values: dict[str, Any] = {"verified": verified}
        if proven:  # merges recorded before verified_at existed have no third item
            values["verified_at"] = parse_timestamp(proven[0]) if proven[0] else None
        session.execute(
            update(Identity).where(Identity.id == identity_id).values(values),
            execution_options={"synchronize_session": "fetch"},
        )
    _restore(session, survivor, record.survivor_before)
    merged.merged_into = None
    record.undone_at = utcnow()
    record.undone_by = actor
    session.flush()
    record_audit(
        session,
        actor,
        AuditAction.UNMERGE,
        record.survivor_id,
        f"undo merge {merge_id}",
        [record.merged_id],
    )
    _recompute(session, record.survivor_id, record.merged_id)
    return record


def merges_of(session: Session, customer_id: str) -> list[ProfileMerge]:
    """Merges a profile took part in, on either side, oldest first."""
    return list(
        session.scalars(
            select(ProfileMerge)
            .where(
                (ProfileMerge.survivor_id == customer_id) | (ProfileMerge.merged_id == customer_id)
            )
            .order_by(ProfileMerge.id)
        )
    )


def merge_document(record: ProfileMerge) -> dict[str, Any]:
    """A merge as JSON: who, when, why, what moved and every conflict set aside."""
    return {
        "merge_id": record.id,
        "survivor_id": record.survivor_id,
        "merged_id": record.merged_id,
        "reason": record.reason,
        "actor": record.actor,
        "created_at": isoformat_z(record.created_at),
        "undone_at": isoformat_z(record.undone_at) if record.undone_at else None,
        "undone_by": record.undone_by,
        "moved": record.moved,
        "conflicts": [
            {
                "attribute": conflict.attribute,
                "kept_value": conflict.kept_value,
                "kept_from": conflict.kept_from,
                "other_value": conflict.other_value,
                "other_from": conflict.other_from,
                "rule": conflict.rule,
            }
            for conflict in record.conflicts
        ],
    }


def _locked_profile(session: Session, customer_id: str) -> Profile:
    profile = session.get(Profile, customer_id, with_for_update=True)
    if profile is None:
        raise ProfileNotFound(customer_id)
    return profile


def _verified_identities(session: Session, *customer_ids: str) -> dict[tuple[str, str, str], bool]:
    """(customer_id, type, value) -> verified, to weigh email and phone without provenance."""
    rows = session.execute(
        select(Identity.customer_id, Identity.type, Identity.value, Identity.verified).where(
            Identity.customer_id.in_(customer_ids)
        )
    ).tuples()
    return {(owner, kind.value, value): verified for owner, kind, value, verified in rows}


def _verify(session: Session, verify: tuple[IdentityType, str] | None) -> list[list[Any]]:
    if verify is None:
        return []
    kind, value = verify
    identity = session.scalar(
        select(Identity).where(Identity.type == kind, Identity.value == value)
    )
    if identity is None:
        return []
    # [id, verified, verified_at] as they were, for unmerge to put back.
    before = [identity.id, identity.verified, _iso_or_none(identity.verified_at)]
    identity.verified = True
    identity.verified_at = utcnow()  # just proven, whether or not it was verified before
    return [before]


def _iso_or_none(moment: datetime | None) -> str | None:
    return isoformat_z(moment) if moment is not None else None


def _standard_value(profile: Profile, name: str) -> Any:
    if name == "address":
        address = profile.address
        return address.as_dict() if address else None
    return getattr(profile, name)


def _standard_candidate(
    profile: Profile,
    rows: dict[str, AttributeValue],
    name: str,
    verified_identities: dict[tuple[str, str, str], bool],
) -> _Candidate:
    value = _standard_value(profile, name)
    row = rows.get(name)
    if row is not None:
        return _Candidate(value, row.verified, row.set_at, row.source.value, profile.customer_id)
    verified = verified_identities.get((profile.customer_id, name, str(value)), False)
    return _Candidate(value, verified, profile.updated_at, "profile", profile.customer_id)


def _row_candidate(customer_id: str, row: AttributeValue) -> _Candidate:
    return _Candidate(row.value, row.verified, row.set_at, row.source.value, customer_id)


def _pick(name: str, mine: _Candidate, theirs: _Candidate) -> tuple[_Candidate, str]:
    """The winner between the survivor's (mine) and the other profile's value, and why."""
    if name in SURVIVOR_ATTRIBUTES:
        return mine, "names_from_survivor"
    if mine.verified != theirs.verified:
        return (mine if mine.verified else theirs), "verified_beats_unverified"
    if theirs.set_at > mine.set_at:
        return theirs, "newer_beats_older"
    if mine.set_at > theirs.set_at:
        return mine, "newer_beats_older"
    return mine, "survivor_on_tie"


def _conflict(name: str, winner: _Candidate, loser: _Candidate, rule: str) -> MergeConflict:
    return MergeConflict(
        attribute=name,
        kept_value=winner.value,
        kept_from=winner.describe(),
        other_value=loser.value,
        other_from=loser.describe(),
        rule=rule,
    )


def _merge_standard(
    session: Session,
    survivor: Profile,
    merged: Profile,
    survivor_rows: dict[str, AttributeValue],
    merged_rows: dict[str, AttributeValue],
    verified_identities: dict[tuple[str, str, str], bool],
) -> list[MergeConflict]:
    conflicts = []
    for name in STANDARD_ATTRIBUTES:
        mine = _standard_candidate(survivor, survivor_rows, name, verified_identities)
        theirs = _standard_candidate(merged, merged_rows, name, verified_identities)
        if theirs.value is None or theirs.value == mine.value:
            continue
        if mine.value is None:
            winner = theirs
        else:
            winner, rule = _pick(name, mine, theirs)
            loser = theirs if winner is mine else mine
            conflicts.append(_conflict(name, winner, loser, rule))
        if winner is theirs:
            if name == "address":
                survivor.address = merged.address
            else:
                setattr(survivor, name, getattr(merged, name))
            source_row = merged_rows.get(name)
            if source_row is not None:
                _copy_row(session, survivor_rows, survivor.customer_id, source_row)
    return conflicts


def _merge_custom_rows(
    session: Session,
    survivor: Profile,
    merged: Profile,
    survivor_rows: dict[str, AttributeValue],
    merged_rows: dict[str, AttributeValue],
) -> list[MergeConflict]:
    conflicts = []
    for name, theirs_row in sorted(merged_rows.items()):
        if theirs_row.kind is not AttributeKind.CUSTOM or theirs_row.value is None:
            continue
        mine_row = survivor_rows.get(name)
        if mine_row is None or mine_row.value is None:
            _copy_row(session, survivor_rows, survivor.customer_id, theirs_row)
            continue
        if mine_row.value == theirs_row.value:
            continue
        mine = _row_candidate(survivor.customer_id, mine_row)
        theirs = _row_candidate(merged.customer_id, theirs_row)
        winner, rule = _pick(name, mine, theirs)
        conflicts.append(_conflict(name, winner, theirs if winner is mine else mine, rule))
        if winner is theirs:
            _copy_row(session, survivor_rows, survivor.customer_id, theirs_row)
    return conflicts


def _merge_free_form(survivor: Profile, merged: Profile) -> list[MergeConflict]:
    conflicts = []
    result = dict(survivor.custom)
    for key, value in sorted(merged.custom.items()):
        if key not in result:
            result[key] = value
            continue
        if result[key] == value:
            continue
        mine = _Candidate(result[key], False, survivor.updated_at, "profile", survivor.customer_id)
        theirs = _Candidate(value, False, merged.updated_at, "profile", merged.customer_id)
        winner, rule = _pick(f"custom.{key}", mine, theirs)
        conflicts.append(
            _conflict(f"custom.{key}", winner, theirs if winner is mine else mine, rule)
        )
        result[key] = winner.value
    if result != survivor.custom:
        survivor.custom = result
    return conflicts


def _copy_row(
    session: Session, rows: dict[str, AttributeValue], customer_id: str, source: AttributeValue
) -> None:
    row = rows.get(source.name)
    if row is None:
        row = AttributeValue(customer_id=customer_id, name=source.name, kind=source.kind)
        session.add(row)
        rows[source.name] = row
    row.kind = source.kind
    row.value = source.value
    row.value_type = source.value_type
    row.source = source.source
    row.verified = source.verified
    row.set_at = source.set_at


def _columns(profile: Profile) -> dict[str, Any]:
    columns = {name: _standard_value(profile, name) for name in STANDARD_ATTRIBUTES}
    columns["custom"] = dict(profile.custom)
    return columns


def _snapshot(profile: Profile, rows: dict[str, AttributeValue]) -> dict[str, Any]:
    """The survivor's attributes and their provenance rows, as JSON."""
    return {
        "columns": _columns(profile),
        "updated_at": isoformat_z(profile.updated_at),
        "attributes": [
            {
                "name": row.name,
                "kind": row.kind.value,
                "value": row.value,
                "value_type": row.value_type,
                "source": row.source.value,
                "verified": row.verified,
                "set_at": isoformat_z(row.set_at),
            }
            for row in sorted(rows.values(), key=lambda row: row.name)
        ],
    }


def _restore(session: Session, profile: Profile, snapshot: dict[str, Any]) -> None:
    columns = snapshot["columns"]
    for name in STANDARD_ATTRIBUTES:
        if name == "address":
            profile.address = Address(**columns[name]) if columns[name] else None
        else:
            setattr(profile, name, columns[name])
    profile.custom = dict(columns["custom"])
    profile.updated_at = parse_timestamp(snapshot["updated_at"])
    for row in attribute_rows(session, profile.customer_id).values():
        session.delete(row)
    session.flush()
    for saved in snapshot["attributes"]:
        session.add(
            AttributeValue(
                customer_id=profile.customer_id,
                name=saved["name"],
                kind=AttributeKind(saved["kind"]),
                value=saved["value"],
                value_type=saved["value_type"],
                source=IdentitySource(saved["source"]),
                verified=saved["verified"],
                set_at=parse_timestamp(saved["set_at"]),
            )
        )


def _recompute(session: Session, *customer_ids: str) -> None:
    """Computed attributes follow the orders and events that moved."""
    for customer_id in customer_ids:
        recompute_profile(session, customer_id)
