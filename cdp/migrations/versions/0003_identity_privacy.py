"""Identity merges, consents, conversation refs, erasure tombstones, personal-data audit log.

Revision ID: 0003
Revises: 0002
Created: 2026-11-26

Written out in full, enum CHECKs included, so this revision stays as it is however the
models evolve. `profiles.merged_into` is added with a plain ADD COLUMN (no foreign key):
rebuilding `profiles` on SQLite would cascade-delete every row that references it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _profile_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        ["profiles.customer_id"],
        name=op.f(f"fk_{table}_{column}_profiles"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.add_column("profiles", sa.Column("merged_into", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_profiles_merged_into"), "profiles", ["merged_into"])

    op.create_table(
        "profile_merges",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("survivor_id", sa.String(length=64), nullable=False),
        sa.Column("merged_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("survivor_before", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("undone_at", UTC_DATETIME, nullable=True),
        sa.Column("undone_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_merges")),
        _profile_fk("profile_merges", "survivor_id"),
        _profile_fk("profile_merges", "merged_id"),
    )
    op.create_index(op.f("ix_profile_merges_survivor_id"), "profile_merges", ["survivor_id"])
    op.create_index(op.f("ix_profile_merges_merged_id"), "profile_merges", ["merged_id"])

    op.create_table(
        "merge_conflicts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("merge_id", BIG_ID, nullable=False),
        sa.Column("attribute", sa.String(length=100), nullable=False),
        sa.Column("kept_value", sa.JSON(), nullable=True),
        sa.Column("kept_from", sa.String(length=200), nullable=False),
        sa.Column("other_value", sa.JSON(), nullable=True),
        sa.Column("other_from", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_conflicts")),
        sa.ForeignKeyConstraint(
            ["merge_id"],
            ["profile_merges.id"],
            name=op.f("fk_merge_conflicts_merge_id_profile_merges"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_merge_conflicts_merge_id"), "merge_conflicts", ["merge_id"])

    op.create_table(
        "consents",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        _profile_fk("consents", "customer_id"),
        sa.CheckConstraint(
            _one_of("purpose", ["service_messages", "marketing"]),
            name=op.f("ck_consents_consent_purpose"),
        ),
        sa.CheckConstraint(
            _one_of("channel", ["email", "sms", "messenger", "web", "any"]),
            name=op.f("ck_consents_consent_channel"),
        ),
        sa.CheckConstraint(
            _one_of("status", ["granted", "withdrawn"]),
            name=op.f("ck_consents_consent_status"),
        ),
    )
    op.create_index(
        op.f("ix_consents_customer_id_purpose_channel_recorded_at"),
        "consents",
        ["customer_id", "purpose", "channel", "recorded_at"],
    )

    op.create_table(
        "conversation_refs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_refs")),
        _profile_fk("conversation_refs", "customer_id"),
        sa.UniqueConstraint(
            "channel", "sender_id", name=op.f("uq_conversation_refs_channel_sender_id")
        ),
    )
    op.create_index(op.f("ix_conversation_refs_customer_id"), "conversation_refs", ["customer_id"])

    op.create_table(
        "erasures",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_hmac", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("erased_at", UTC_DATETIME, nullable=False),
        sa.Column("profiles", sa.Integer(), nullable=False),
        sa.Column("identifiers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )

    op.create_table(
        "erased_identifiers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("erasure_id", BIG_ID, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value_hmac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_identifiers")),
        sa.ForeignKeyConstraint(
            ["erasure_id"],
            ["erasures.id"],
            name=op.f("fk_erased_identifiers_erasure_id_erasures"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "type", "value_hmac", name=op.f("uq_erased_identifiers_type_value_hmac")
        ),
    )
    op.create_index(op.f("ix_erased_identifiers_erasure_id"), "erased_identifiers", ["erasure_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.CheckConstraint(
            _one_of("action", ["read", "export", "erase", "merge", "unmerge"]),
            name=op.f("ck_audit_log_audit_action"),
        ),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_customer_id"), "audit_log", ["customer_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("erased_identifiers")
    op.drop_table("erasures")
    op.drop_table("conversation_refs")
    op.drop_table("consents")
    op.drop_table("merge_conflicts")
    op.drop_table("profile_merges")
    op.drop_index(op.f("ix_profiles_merged_into"), table_name="profiles")
    op.drop_column("profiles", "merged_into")
