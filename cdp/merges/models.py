"""The profile_merges and merge_conflicts tables: what a merge moved, so it can be undone."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cdp.clock import utcnow
from cdp.column_types import BIG_ID
from cdp.db import Base
from cdp.profiles.models import Profile

ACTOR_MAX_LENGTH = 100
REASON_MAX_LENGTH = 200
ATTRIBUTE_MAX_LENGTH = 100
RULE_MAX_LENGTH = 64
SOURCE_MAX_LENGTH = 200


class ProfileMerge(Base):
    """One merge of `merged_id` into `survivor_id`.

    `moved` lists the row ids re-pointed per table (and each identity's previous verified
    flag); `survivor_before` is the survivor's attributes before the merge. Together they let
    unmerge restore both profiles exactly.
    """

    __tablename__ = "profile_merges"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    survivor_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), index=True
    )
    merged_id: Mapped[str] = mapped_column(
        ForeignKey(Profile.customer_id, ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(REASON_MAX_LENGTH))
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX_LENGTH))
    moved: Mapped[dict[str, Any]] = mapped_column(JSON)
    survivor_before: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(ACTOR_MAX_LENGTH))

    conflicts: Mapped[list["MergeConflict"]] = relationship(
        order_by="MergeConflict.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )


class MergeConflict(Base):
    """An attribute both profiles had with different values: the one kept and the one set
    aside, with the profile each came from and the rule that decided."""

    __tablename__ = "merge_conflicts"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    merge_id: Mapped[int] = mapped_column(
        ForeignKey(ProfileMerge.id, ondelete="CASCADE"), index=True
    )
    attribute: Mapped[str] = mapped_column(String(ATTRIBUTE_MAX_LENGTH))
    kept_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    kept_from: Mapped[str] = mapped_column(String(SOURCE_MAX_LENGTH))
    other_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    other_from: Mapped[str] = mapped_column(String(SOURCE_MAX_LENGTH))
    rule: Mapped[str] = mapped_column(String(RULE_MAX_LENGTH))
