"""Workflow Builder step executions: one operation per function_execution_id (SPEC 13).

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_steps",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("operation_id", sa.String(32), nullable=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("token", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("success", sa.Integer, nullable=True),
        sa.Column("outputs", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_workflow_steps_operation_id", "workflow_steps", ["operation_id"])
    op.create_index("ix_workflow_steps_state", "workflow_steps", ["state"])


def downgrade() -> None:
    op.drop_index("ix_workflow_steps_state", table_name="workflow_steps")
    op.drop_index("ix_workflow_steps_operation_id", table_name="workflow_steps")
    op.drop_table("workflow_steps")
