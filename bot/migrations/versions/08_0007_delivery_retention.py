"""Delivery from the database and retention (docs/SPEC.md §16): what a summary shows is stored
with the operation, a claim records when its Slack call started, and the indexes that history,
App Home, the outbox and the prune query.

Revision ID: 0007
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        # Nullable: an operation previewed before this revision has no stored library facts;
        # its summary shows the library's name only.
        batch.add_column(sa.Column("library_facts", sa.JSON, nullable=True))
        batch.add_column(sa.Column("summary_queued_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("calling_at", sa.DateTime(timezone=True), nullable=True))
    # A summary already queued or sent counts as queued: a resumed run does not queue another.
    op.execute(
        "UPDATE operations SET summary_queued_at = ("
        " SELECT min(outbox.created_at) FROM outbox"
        " WHERE outbox.operation_id = operations.id AND outbox.key = 'summary')"
        " WHERE EXISTS (SELECT 1 FROM outbox"
        " WHERE outbox.operation_id = operations.id AND outbox.key = 'summary')"
    )
    op.drop_index("ix_operations_user_created", table_name="operations")
    op.drop_index("ix_operations_library_created", table_name="operations")
    op.drop_index("ix_operations_state", table_name="operations")
    op.create_index("ix_operations_user_time", "operations", ["user_id", "created_at", "id"])
    op.create_index("ix_operations_library_time", "operations", ["library_id", "created_at", "id"])
    op.create_index("ix_operations_time", "operations", ["created_at", "id"])
    op.create_index("ix_operations_state_time", "operations", ["state", "created_at"])
    op.create_index("ix_operation_batches_started", "operation_batches", ["started_at"])
    op.create_index("ix_outbox_state_updated", "outbox", ["state", "updated_at"])
    op.drop_index("ix_outbox_state_due", table_name="outbox")
    op.create_index("ix_outbox_state_due", "outbox", ["state", "due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_due", table_name="outbox")
    op.create_index("ix_outbox_state_due", "outbox", ["state", "due_at"])
    op.drop_index("ix_outbox_state_updated", table_name="outbox")
    op.drop_index("ix_operation_batches_started", table_name="operation_batches")
    op.drop_index("ix_operations_state_time", table_name="operations")
    op.drop_index("ix_operations_time", table_name="operations")
    op.drop_index("ix_operations_library_time", table_name="operations")
    op.drop_index("ix_operations_user_time", table_name="operations")
    op.create_index("ix_operations_state", "operations", ["state"])
    op.create_index("ix_operations_library_created", "operations", ["library_id", "created_at"])
    op.create_index("ix_operations_user_created", "operations", ["user_id", "created_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("calling_at")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("summary_queued_at")
        batch.drop_column("library_facts")
