"""Baselines (named aggregates for compare) and changes (deploys, config, LB changes).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "baselines",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baselines")),
        sa.UniqueConstraint("name", name=op.f("uq_baselines_name")),
    )
    op.create_table(
        "changes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("change_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
        sa.UniqueConstraint("change_id", name=op.f("uq_changes_change_id")),
    )
    op.create_index(op.f("ix_changes_at"), "changes", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_changes_at"), table_name="changes")
    op.drop_table("changes")
    op.drop_table("baselines")
