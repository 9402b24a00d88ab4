"""Approvals (docs/SPEC.md §7): awaiting_approval/rejected states, who denied, the requests.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Idempotent: a database that already has these (stamped as the baseline) keeps them.
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("operations")}
    with op.batch_alter_table("operations") as batch:
        # "awaiting_approval" is 17 characters.
        batch.alter_column(
            "state", existing_type=sa.String(16), type_=sa.String(32), existing_nullable=False
        )
        if "rejected_by" not in columns:
            batch.add_column(sa.Column("rejected_by", sa.String(64), nullable=True))
    if inspector.has_table("approval_requests"):
        return
    op.create_table(
        "approval_requests",
        sa.Column("operation_id", sa.String(32), primary_key=True),
        sa.Column("titles", sa.JSON, nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("requester_url", sa.Text, nullable=True),
    )
    op.create_table(
        "approvals",
        sa.Column("operation_id", sa.String(32), nullable=False),
        sa.Column("approver", sa.String(64), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("operation_id", "approver", name="pk_approvals"),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("approval_requests")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("rejected_by")
        batch.alter_column(
            "state", existing_type=sa.String(32), type_=sa.String(16), existing_nullable=False
        )
