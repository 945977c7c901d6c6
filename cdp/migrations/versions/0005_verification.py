"""One-time verification codes and the development outbox; `rest_sender` identities.

Revision ID: 0005
Revises: 0004
Created: 2026-11-26

Written out in full, enum CHECKs included, so this revision stays as it is however the
models evolve. The identity-type CHECK gains `rest_sender` (a REST conversation linked by a
code): PostgreSQL swaps the constraint; SQLite rebuilds `identities` (batch mode), which
nothing references, so no cascade can fire.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
IDENTITY_TYPES = [
    "phone",
    "email",
    "messenger_psid",
    "web_customer_id",
    "member_id",
    "twilio_sender",
    "socketio_sender",
]
TARGET_TYPES = ["phone", "email"]
CODE_STATES = ["pending", "verified", "exhausted", "superseded", "refused", "undelivered"]


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _identity_types(values: Sequence[str]) -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_constraint(op.f("ck_identities_identity_type"), type_="check")
        batch.create_check_constraint(op.f("ck_identities_identity_type"), _one_of("type", values))


def upgrade() -> None:
    _identity_types([*IDENTITY_TYPES, "rest_sender"])
    op.create_table(
        "verification_codes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("requester_type", sa.String(length=32), nullable=False),
        sa.Column("requester_value", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("attempts_left", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_codes")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["profiles.customer_id"],
            name=op.f("fk_verification_codes_customer_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            _one_of("target_type", TARGET_TYPES),
            name=op.f("ck_verification_codes_verification_target_type"),
        ),
        sa.CheckConstraint(
            _one_of("state", CODE_STATES),
            name=op.f("ck_verification_codes_verification_code_state"),
        ),
    )
    op.create_index(
        op.f("ix_verification_codes_customer_id"), "verification_codes", ["customer_id"]
    )
    op.create_index(
        op.f("ix_verification_codes_requester_type_requester_value_created_at"),
        "verification_codes",
        ["requester_type", "requester_value", "created_at"],
    )
    op.create_index(
        op.f("ix_verification_codes_target_hash_created_at"),
        "verification_codes",
        ["target_hash", "created_at"],
    )
    op.create_table(
        "verification_outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("code_id", BIG_ID, nullable=True),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_outbox")),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["verification_codes.id"],
            name=op.f("fk_verification_outbox_code_id_verification_codes"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            _one_of("target_type", TARGET_TYPES),
            name=op.f("ck_verification_outbox_verification_target_type"),
        ),
    )
    op.create_index(op.f("ix_verification_outbox_code_id"), "verification_outbox", ["code_id"])
    op.create_index(op.f("ix_verification_outbox_recipient"), "verification_outbox", ["recipient"])


def downgrade() -> None:
    op.drop_table("verification_outbox")
    op.drop_table("verification_codes")
    op.execute(sa.text("DELETE FROM identities WHERE type = 'rest_sender'"))
    _identity_types(IDENTITY_TYPES)
