"""Baseline: the operations table as the first release created it.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("library_id", sa.String(64), nullable=True),
        sa.Column("library_name", sa.Text, nullable=True),
        sa.Column("requested_ids", sa.JSON, nullable=False),
        sa.Column("new_ids", sa.JSON, nullable=False),
        sa.Column("present_ids", sa.JSON, nullable=False),
        sa.Column("missing_ids", sa.JSON, nullable=False),
        sa.Column("added_ids", sa.JSON, nullable=False),
        sa.Column("failed_ids", sa.JSON, nullable=False),
        sa.Column("removed_ids", sa.JSON, nullable=False),
        sa.Column("outcome", sa.JSON, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("response_url", sa.Text, nullable=True),
        sa.Column("summary_channel", sa.String(64), nullable=True),
        sa.Column("summary_ts", sa.String(32), nullable=True),
        sa.Column("notify_channel", sa.String(64), nullable=True),
        sa.Column("notify_ts", sa.String(32), nullable=True),
        sa.Column("confirmed_by", sa.String(64), nullable=True),
        sa.Column("undone_by", sa.String(64), nullable=True),
        sa.Column("denial_reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_operations_state", "operations", ["state"])
    op.create_index("ix_operations_user_created", "operations", ["user_id", "created_at"])
    op.create_index("ix_operations_library_created", "operations", ["library_id", "created_at"])


def downgrade() -> None:
    op.drop_table("operations")
