"""When an identifier was last proven: `identities.verified_at`.

Revision ID: 0006
Revises: 0005
Created: 2026-11-26

A web chat session or REST sender linked by a one-time code counts only for a limited time
after the code (VERIFIED_SESSION_DAYS); this column holds that time. Existing verified rows
take their creation time, which for a code-linked session is the moment of the code.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE identities SET verified_at = created_at WHERE verified")


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("verified_at")
