"""Human handoffs: packages, ownership state machine and its transitions, messages, agents.

Revision ID: 0004
Revises: 0003
Created: 2026-11-26

Written out in full, enum CHECKs included, so this revision stays as it is however the
models evolve.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
OPEN_STATES = "state IN ('requested', 'accepted')"


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("triage_score", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("routing", sa.JSON(), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=True),
        sa.Column("requested_at", UTC_DATETIME, nullable=False),
        sa.Column("deadline_at", UTC_DATETIME, nullable=False),
        sa.Column("accepted_at", UTC_DATETIME, nullable=True),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("bot_notified_at", UTC_DATETIME, nullable=True),
        sa.Column("followup", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
        sa.CheckConstraint(
            _one_of("state", ["requested", "accepted", "resolved", "returned", "abandoned"]),
            name=op.f("ck_handoffs_handoff_state"),
        ),
        sa.CheckConstraint(
            _one_of(
                "reason",
                [
                    "user_requested",
                    "nlu_fallback",
                    "low_confidence",
                    "negative_sentiment",
                    "policy",
                    "bot_error",
                ],
            ),
            name=op.f("ck_handoffs_handoff_reason"),
        ),
    )
    op.create_index(
        "uq_handoffs_open_conversation",
        "handoffs",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_STATES),
        postgresql_where=sa.text(OPEN_STATES),
    )
    op.create_index("ix_handoffs_state_team", "handoffs", ["state", "team"])

    op.create_table(
        "handoff_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_events")),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_handoff_events_handoff_id_handoffs"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        op.f("ix_handoff_events_handoff_id"), "handoff_events", ["handoff_id"], unique=False
    )

    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=32), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("delivery", sa.String(length=32), nullable=True),
        sa.Column("delivery_error", sa.String(length=500), nullable=True),
        sa.Column("relayed_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_messages")),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_handoff_messages_handoff_id_handoffs"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            _one_of("author", ["customer", "agent", "note"]),
            name=op.f("ck_handoff_messages_message_author"),
        ),
        sa.CheckConstraint(
            _one_of("delivery", ["pending", "sent", "failed"]),
            name=op.f("ck_handoff_messages_message_delivery"),
        ),
    )
    op.create_index(
        "ix_handoff_messages_handoff_id_created_at",
        "handoff_messages",
        ["handoff_id", "created_at"],
    )

    op.create_table(
        "agents",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_agents")),
        sa.CheckConstraint(
            _one_of("role", ["agent", "supervisor"]), name=op.f("ck_agents_agent_role")
        ),
    )


def downgrade() -> None:
    op.drop_table("agents")
    op.drop_index("ix_handoff_messages_handoff_id_created_at", table_name="handoff_messages")
    op.drop_table("handoff_messages")
    op.drop_index(op.f("ix_handoff_events_handoff_id"), table_name="handoff_events")
    op.drop_table("handoff_events")
    op.drop_index("ix_handoffs_state_team", table_name="handoffs")
    op.drop_index("uq_handoffs_open_conversation", table_name="handoffs")
    op.drop_table("handoffs")
