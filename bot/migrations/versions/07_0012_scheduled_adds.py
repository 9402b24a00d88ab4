"""Scheduled adds: when an operation runs, the zone it was read in, and when its run started.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("run_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("run_zone", sa.String(64), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_operations_state_run_at", ["state", "run_at"])


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_index("ix_operations_state_run_at")
        batch.drop_column("started_at")
        batch.drop_column("run_zone")
        batch.drop_column("run_at")
