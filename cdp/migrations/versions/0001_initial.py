"""Initial schema: profiles, identities, orders, order_lines, events.

Revision ID: 0001
Revises:
Created: 2026-11-25

Written out in full, enum CHECKs included, so this revision stays as it is however the
models evolve.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Surrogate keys: 64-bit, except that SQLite only auto-increments INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
MONEY = sa.Numeric(precision=12, scale=2)


def _address_columns(prefix: str) -> list[sa.Column[str]]:
    return [
        sa.Column(f"{prefix}_line1", sa.String(length=200), nullable=True),
        sa.Column(f"{prefix}_line2", sa.String(length=200), nullable=True),
        sa.Column(f"{prefix}_city", sa.String(length=100), nullable=True),
        sa.Column(f"{prefix}_region", sa.String(length=100), nullable=True),
        sa.Column(f"{prefix}_postal_code", sa.String(length=20), nullable=True),
        sa.Column(f"{prefix}_country", sa.String(length=2), nullable=True),
    ]


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        *_address_columns("address"),
        sa.Column("custom", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_profiles")),
    )

    op.create_table(
        "identities",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["profiles.customer_id"],
            name=op.f("fk_identities_customer_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("type", "value", name=op.f("uq_identities_type_value")),
        sa.CheckConstraint(
            _one_of(
                "type",
                [
                    "phone",
                    "email",
                    "messenger_psid",
                    "web_customer_id",
                    "member_id",
                    "twilio_sender",
                    "socketio_sender",
                ],
            ),
            name=op.f("ck_identities_identity_type"),
        ),
        sa.CheckConstraint(
            _one_of("source", ["import", "conversation", "agent", "api"]),
            name=op.f("ck_identities_identity_source"),
        ),
    )
    op.create_index(op.f("ix_identities_customer_id"), "identities", ["customer_id"])

    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("placed_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        *_address_columns("delivery"),
        sa.Column("reorder_of", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["profiles.customer_id"],
            name=op.f("fk_orders_customer_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reorder_of"],
            ["orders.order_id"],
            name=op.f("fk_orders_reorder_of_orders"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("total >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.CheckConstraint(
            _one_of("status", ["placed", "paid", "shipped", "delivered", "cancelled", "returned"]),
            name=op.f("ck_orders_order_status"),
        ),
    )
    op.create_index(op.f("ix_orders_customer_id_placed_at"), "orders", ["customer_id", "placed_at"])

    op.create_table(
        "order_lines",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.order_id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("order_id", "line_no", name=op.f("uq_order_lines_order_id_line_no")),
        sa.CheckConstraint("line_no > 0", name=op.f("ck_order_lines_line_no_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_order_lines_unit_price_not_negative")),
    )

    op.create_table(
        "events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["profiles.customer_id"],
            name=op.f("fk_events_customer_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_index(
        op.f("ix_events_customer_id_occurred_at"), "events", ["customer_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("order_lines")
    op.drop_table("orders")
    op.drop_table("identities")
    op.drop_table("profiles")
