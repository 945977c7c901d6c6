"""Custom and computed attributes, value provenance, product catalogue.

Revision ID: 0002
Revises: 0001
Created: 2026-11-26

Written out in full, enum CHECKs included, so this revision stays as it is however the
models evolve.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
MONEY = sa.Numeric(precision=12, scale=2)


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _profile_key(table: str) -> list[sa.Column[str] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["profiles.customer_id"],
            name=op.f(f"fk_{table}_customer_id_profiles"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))

    op.create_table(
        "attribute_values",
        *_profile_key("attribute_values"),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("value_type", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("set_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "name", name=op.f("pk_attribute_values")),
        sa.CheckConstraint(
            _one_of("kind", ["standard", "custom"]), name=op.f("ck_attribute_values_attribute_kind")
        ),
        sa.CheckConstraint(
            _one_of("source", ["import", "conversation", "agent", "api"]),
            name=op.f("ck_attribute_values_attribute_source"),
        ),
    )

    op.create_table(
        "attribute_types",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("registered_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_attribute_types")),
    )

    op.create_table(
        "products",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_not_negative")),
    )
    op.create_index(op.f("ix_products_name_key"), "products", ["name_key"])

    op.create_table(
        "computed_state",
        *_profile_key("computed_state"),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("spec_hash", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "name", name=op.f("pk_computed_state")),
    )

    op.create_table(
        "computed_parts",
        *_profile_key("computed_parts"),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "name", "key", name=op.f("pk_computed_parts")),
    )


def downgrade() -> None:
    op.drop_table("computed_parts")
    op.drop_table("computed_state")
    op.drop_index(op.f("ix_products_name_key"), table_name="products")
    op.drop_table("products")
    op.drop_table("attribute_types")
    op.drop_table("attribute_values")
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("timezone")
