"""Run liveness: the pid, its start time and a heartbeat, so a dead process's run is found.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pid_started", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", Time, nullable=True))
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_status"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid_started")
        batch.drop_column("pid")
