"""Fencing and the batch journal: run token, database-clock lease, undo state, batches table.

Revision ID: 0002
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("run_token", sa.String(32), nullable=True))
        batch.add_column(sa.Column("lease_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("undo_from", sa.String(16), nullable=True))
    op.create_table(
        "operation_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.String(32), nullable=False),
        sa.Column("run_token", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("asset_ids", sa.JSON, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_operation_batches_operation_id", "operation_batches", ["operation_id"])


def downgrade() -> None:
    op.drop_table("operation_batches")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("undo_from")
        batch.drop_column("lease_at")
        batch.drop_column("run_token")
